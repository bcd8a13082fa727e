/**
 * Where a model comes from, for generate/export/import/init_from: a run directory (its latest checkpoint), one
 * checkpoint directory, an lmforge model directory (model_config.json + model.safetensors), or a Hugging Face
 * directory (config.json + safetensors, single or sharded).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../config/model.js';
import { validateModelConfig } from '../config/schema.js';
import type { TensorSource } from '../model/weights.js';
import { latestCheckpoint, safetensorsSource } from '../train/checkpoint.js';
import { openHfModel } from './hf-checkpoint.js';

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

export function openModelSource(path: string): ModelSource {
  if (!existsSync(path)) throw new Error(`${path}: no such directory (expected a run directory, a checkpoint or a Hugging Face model directory)`);
  let dir = path;
  let runDir: string | null = null;
  if (existsSync(join(path, 'checkpoints'))) {
    const ckpt = latestCheckpoint(path);
    if (!ckpt) throw new Error(`${path}: a run directory without a complete checkpoint yet`);
    dir = ckpt;
    runDir = path;
  }
  const tokenizer = [join(dir, 'tokenizer.json'), ...(runDir ? [join(runDir, 'tokenizer.json')] : [])].find((f) => existsSync(f)) ?? null;
  const ownConfig = join(dir, 'model_config.json');
  if (existsSync(ownConfig) && existsSync(join(dir, 'model.safetensors'))) {
    const cfg = validateModelConfig(JSON.parse(readFileSync(ownConfig, 'utf8')), ownConfig);
    return { cfg, tensors: safetensorsSource(join(dir, 'model.safetensors')), dir, tokenizer, runDir, close: () => {} };
  }
  if (!existsSync(join(dir, 'config.json')))
    throw new Error(`${dir}: neither model_config.json (lmforge) nor config.json (Hugging Face) found`);
  const hf = openHfModel(dir);
  return { cfg: hf.config, tensors: hf.tensors, dir, tokenizer, runDir, close: () => hf.close() };
}
