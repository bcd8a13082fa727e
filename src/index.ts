/**
 * lmforge as a library: the same pieces the CLI drives, for scripts and notebooks that train, evaluate or plan
 * from code. `import { loadTrainConfig, Trainer, resolveModelConfig } from 'lmforge'`:
 *
 *   const tc = loadTrainConfig('config/cpu_tiny.yaml', ['steps=50']);
 *   const trainer = new Trainer(tc, resolveModelConfig(tc), 'runs/demo');
 *   await trainer.setup(false);
 *   const result = await trainer.run({ onStep: (r) => console.log(r.step, r.loss) });
 *   trainer.dispose();
 */
export type { ModelConfig } from './config/model.js';
export { getPreset, isPreset, PRESETS } from './config/presets.js';
export { loadModelConfig } from './config/load.js';
export { loadTrainConfig, type TrainConfig } from './config/train.js';
export { createBackend, type Backend, type DeviceName } from './engine/index.js';
export { loadTokenizer, Qwen3Tokenizer } from './data/tokenizer.js';
export { prepare, type PrepareOptions } from './data/prepare.js';
export { openModelSource, loadModelSpec, type ModelSource } from './io/model-dir.js';
export { Trainer, resolveModelConfig, type TrainHooks, type TrainResult, type StepReport } from './train/trainer.js';
export { plan, formatPlan, type Plan, type PlanInput } from './plan/plan.js';
