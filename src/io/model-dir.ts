/**
 * What a model directory looks like, in one place. A model is found in, and written as:
 *   - a run directory: its latest complete checkpoint (run-dir.ts);
 *   - a checkpoint or an lmforge model directory: model_config.json (our schema) + model.safetensors (f32,
 *     Hugging Face names and layout), and config.json when the model is expressible in its HF family;
 *   - a Hugging Face directory: config.json + safetensors, single or sharded (hf-checkpoint.ts).
 * generate, export, import, `init_from` and the trainer's `model` key all resolve a path through here.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../config/model.js';
import { validateModelConfig } from '../config/schema.js';
import { checkExportable, toHfConfig } from '../config/hf-config.js';
import { loadModelConfigWithSource, type LoadedModelConfig } from '../config/load.js';
import { openHfModel } from './hf-checkpoint.js';
import { latestCheckpoint, RUN_FILES } from './run-dir.js';
import { safetensorsSource, type TensorSource } from './tensor-source.js';
import { writeSafetensors } from './safetensors.js';
import { writeFileAtomic } from '../files/atomic.js';

export const MODEL_FILES = {
  /** Our own config schema (config/schema.ts): every model lmforge can build, expressible in HF or not. */
  config: RUN_FILES.modelConfig,
  /** The Hugging Face config, for models its families can express. */
  hfConfig: 'config.json',
  weights: 'model.safetensors',
  tokenizer: 'tokenizer.json',
} as const;

export interface ModelSource {
  cfg: ModelConfig;
  tensors: TensorSource;
  /** The directory the weights were read from. */
  dir: string;
  /** A tokenizer.json beside the weights, if any. */
  tokenizer: string | null;
  /** The run directory, when the source is a run. */
  runDir: string | null;
  close(): void;
}

/** A run directory resolves to its latest complete checkpoint; any other directory to itself. */
function resolveDir(path: string): { dir: string; runDir: string | null } {
  if (!existsSync(join(path, RUN_FILES.checkpoints))) return { dir: path, runDir: null };
  const ckpt = latestCheckpoint(path);
  if (!ckpt) throw new Error(`${path}: a run directory without a complete checkpoint yet`);
  return { dir: ckpt, runDir: path };
}

function readOwnConfig(file: string): ModelConfig {
  return validateModelConfig(JSON.parse(readFileSync(file, 'utf8')), file);
}

export function openModelSource(path: string): ModelSource {
  if (!existsSync(path)) throw new Error(`${path}: no such directory (expected a run directory, a checkpoint or a Hugging Face model directory)`);
  const { dir, runDir } = resolveDir(path);
  const tokenizer = [join(dir, MODEL_FILES.tokenizer), ...(runDir ? [join(runDir, MODEL_FILES.tokenizer)] : [])].find((f) => existsSync(f)) ?? null;
  const ownConfig = join(dir, MODEL_FILES.config);
  if (existsSync(ownConfig) && existsSync(join(dir, MODEL_FILES.weights))) {
    const cfg = readOwnConfig(ownConfig);
    const tensors = safetensorsSource(join(dir, MODEL_FILES.weights));
    return { cfg, tensors, dir, tokenizer, runDir, close: () => tensors.close() };
  }
  if (!existsSync(join(dir, MODEL_FILES.hfConfig)))
    throw new Error(`${dir}: neither ${MODEL_FILES.config} (lmforge) nor ${MODEL_FILES.hfConfig} (Hugging Face) found`);
  const hf = openHfModel(dir);
  return { cfg: hf.config, tensors: hf.tensors, dir, tokenizer, runDir, close: () => hf.close() };
}

/**
 * A model config from anything a user may name: a preset, a config file (ours or a Hugging Face config.json), or
 * a directory (a run, a checkpoint, an lmforge model directory, whose own model_config.json wins; or a Hugging Face
 * directory).
 */
export function loadModelSpec(spec: string): LoadedModelConfig {
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const { dir } = existsSync(join(spec, RUN_FILES.modelConfig)) ? { dir: spec } : resolveDir(spec);
    const own = join(dir, MODEL_FILES.config);
    if (existsSync(own)) return { config: readOwnConfig(own), kind: 'file', source: own };
    const hf = join(dir, MODEL_FILES.hfConfig);
    if (!existsSync(hf))
      throw new Error(`${spec}: directory has no ${MODEL_FILES.hfConfig}; give a Hugging Face model directory, a run, a config file or a preset`);
    return loadModelConfigWithSource(hf);
  }
  return loadModelConfigWithSource(spec);
}

/** The files writeModelDir writes: in an existing directory, `import --force` replaces these and keeps the rest. */
export const MODEL_DIR_FILES: readonly string[] = [MODEL_FILES.weights, MODEL_FILES.config, MODEL_FILES.hfConfig];

/** Writes an lmforge model directory: f32 weights by Hugging Face name, our config, and HF's where expressible. */
export function writeModelDir(dir: string, cfg: ModelConfig, tensors: readonly { name: string; shape: number[]; data: Float32Array }[]): void {
  writeSafetensors(join(dir, MODEL_FILES.weights), tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: t.data })), { format: 'pt' });
  writeFileAtomic(join(dir, MODEL_FILES.config), JSON.stringify(cfg, null, 2) + '\n');
  if (exportable(cfg)) writeFileAtomic(join(dir, MODEL_FILES.hfConfig), JSON.stringify(toHfConfig(cfg), null, 2) + '\n');
}

function exportable(cfg: ModelConfig): boolean {
  try {
    checkExportable(cfg);
    return true;
  } catch {
    return false;
  }
}
