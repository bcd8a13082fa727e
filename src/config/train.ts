/**
 * The training configuration: one key table (types, defaults, validation and docs from the same definition),
 * loaded from a JSON/YAML file under config/ and `--set key=value` overrides. Model keys are set with
 * `--set model.KEY=VALUE` (or a `model_overrides:` mapping in the file) on top of the `model` preset/file.
 */
import { ConfigError, MODEL_KEYS, parseOverrides, validateRecord, type KeyTable, type RecordOf, type Scalar } from './schema.js';
import { readConfigFile } from './load.js';

export const TRAIN_KEYS = {
  model: { kind: 'string', default: 'cpu-tiny', help: 'model: a preset name, a model config file, or a Hugging Face directory' },
  init_from: { kind: 'string', default: '', help: 'start from these weights (Hugging Face directory or run directory); empty = random init' },
  data: { kind: 'string', default: 'bundled', help: "prepared data directory (lmforge prepare), or 'bundled' for the bundled English corpus" },
  run_dir: { kind: 'string', default: '', help: 'where checkpoints, metrics and plots go (default runs/<model>-<time>)' },
  device: { kind: 'enum', values: ['cpu', 'cuda', 'auto'] as const, default: 'cpu', help: 'compute backend' },
  threads: { kind: 'int', min: 0, default: 0, help: 'CPU threads (0 = all cores)' },
  seq: { kind: 'int', min: 2, default: 128, help: 'tokens per sequence' },
  micro_batch: { kind: 'int', min: 1, default: 8, help: 'sequences per forward/backward' },
  grad_accum: { kind: 'int', min: 1, default: 1, help: 'micro-batches per optimizer step (token batch = micro_batch x grad_accum x seq x world)' },
  steps: { kind: 'int', min: 1, default: 400, help: 'optimizer steps' },
  schedule: { kind: 'enum', values: ['cosine', 'wsd', 'constant'] as const, default: 'cosine', help: 'learning-rate schedule after warmup' },
  lr: { kind: 'number', min: 0, exclusiveMin: true, default: 5e-3, help: 'peak learning rate' },
  min_lr: { kind: 'number', min: 0, default: (r) => Number((Number(r.lr) / 10).toPrecision(12)), defaultHelp: 'lr / 10', help: 'final learning rate of cosine / WSD' },
  warmup_steps: { kind: 'int', min: 0, default: 30, help: 'linear warmup steps' },
  decay_fraction: { kind: 'number', min: 0, max: 1, default: 0.2, help: 'WSD: share of steps spent decaying' },
  beta1: { kind: 'number', min: 0, max: 1, default: 0.9, help: 'AdamW beta1' },
  beta2: { kind: 'number', min: 0, max: 1, default: 0.95, help: 'AdamW beta2' },
  eps: { kind: 'number', min: 0, exclusiveMin: true, default: 1e-8, help: 'AdamW epsilon' },
  weight_decay: { kind: 'number', min: 0, default: 0.1, help: 'decoupled weight decay on tensors of 2+ dimensions' },
  clip: { kind: 'number', min: 0, default: 1.0, help: 'global gradient-norm clip (0 = off)' },
  zero1: { kind: 'bool', default: false, help: 'shard the AdamW moments over data-parallel ranks (ZeRO-1); the --zero1 flag sets it' },
  seed: { kind: 'int', min: 0, default: 1337, help: 'seed for initialisation and data order' },
  scaled_residual_init: { kind: 'bool', default: true, help: 'scale residual projections\' init std by 1/sqrt(2 n_layer)' },
  eval_every: { kind: 'int', min: 0, default: 100, help: 'evaluate on the validation split every N steps (0 = only at the end)' },
  eval_batches: { kind: 'int', min: 1, default: 8, help: 'validation micro-batches per evaluation' },
  checkpoint_every: { kind: 'int', min: 0, default: 200, help: 'checkpoint every N steps (0 = only at the end)' },
  keep_checkpoints: { kind: 'int', min: 1, default: 2, help: 'checkpoints kept (oldest deleted first)' },
  log_every: { kind: 'int', min: 1, default: 1, help: 'write a metrics line every N steps' },
  max_bad_steps: { kind: 'int', min: 1, default: 5, help: 'consecutive NaN/Inf steps tolerated (skipped) before the run stops' },
  peak_flops: { kind: 'number', min: 0, default: 0, help: 'peak FLOP/s for MFU (0 = from the device table)' },
  sample_prompt: { kind: 'string', default: 'The', help: 'prompt of the sample printed at the end' },
  sample_tokens: { kind: 'int', min: 0, default: 48, help: 'tokens generated for the final sample (0 = none)' },
} satisfies KeyTable;

export type TrainConfig = RecordOf<typeof TRAIN_KEYS> & {
  /** Model keys set on top of `model` (validated when the model config is resolved). */
  model_overrides: Record<string, Scalar>;
};

/** Loads a train config: file (JSON/YAML) or none, then `key=value` overrides; `model.KEY=VALUE` go to model_overrides. */
export function loadTrainConfig(file: string | undefined, sets: readonly string[]): TrainConfig {
  let raw: Record<string, unknown> = {};
  const source = file ?? '--set';
  if (file) {
    const parsed = readConfigFile(file);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError(`${file}: expected a mapping of key: value pairs at the top level`);
    raw = { ...(parsed as Record<string, unknown>) };
  }
  let modelOverrides: Record<string, Scalar> = {};
  if ('model_overrides' in raw) {
    const mo = raw.model_overrides;
    if (mo === null || typeof mo !== 'object' || Array.isArray(mo))
      throw new ConfigError(`${source}: 'model_overrides' must be a mapping of model keys (e.g. n_layer: 6)`);
    modelOverrides = { ...(mo as Record<string, Scalar>) };
    delete raw.model_overrides;
  }
  const trainSets = sets.filter((s) => !s.startsWith('model.'));
  const modelSets = sets.filter((s) => s.startsWith('model.')).map((s) => s.slice('model.'.length));
  Object.assign(raw, parseOverrides(TRAIN_KEYS, trainSets, '--set'));
  Object.assign(modelOverrides, parseOverrides(MODEL_KEYS as unknown as KeyTable, modelSets, '--set model.*'));
  const cfg = validateRecord(TRAIN_KEYS, raw, source);
  return { ...cfg, model_overrides: modelOverrides };
}

/** Settings that are allowed but almost certainly not meant; the train verb prints each as a warning. */
export function trainConfigWarnings(tc: TrainConfig): string[] {
  const out: string[] = [];
  if (tc.schedule !== 'constant' && tc.min_lr > tc.lr)
    out.push(`min_lr ${tc.min_lr} is above lr ${tc.lr}: the ${tc.schedule} decay will raise the learning rate instead of lowering it; set min_lr <= lr`);
  if (tc.warmup_steps > tc.steps) out.push(`warmup_steps ${tc.warmup_steps} exceeds steps ${tc.steps}: the run ends before the warmup does`);
  return out;
}
