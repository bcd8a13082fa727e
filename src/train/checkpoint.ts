/**
 * Atomic checkpoints. Each is a directory `checkpoints/step-NNNNNNNN/` holding
 *   model.safetensors      the weights, Hugging Face names and layout (f32)
 *   config.json            the Hugging Face config (when the model is expressible in its family) + model_config.json
 *   optimizer.safetensors  AdamW moments m and v as flat f32 buffers in the parameter layout (unsharded: under
 *                          ZeRO-1 the ranks' slices are gathered to rank 0 first, so any world size can resume)
 *   state.json             step, optimizer step, data-loader state, RNG state, the training config
 * It is written under a temporary name and renamed into place, and `checkpoints/latest` is replaced atomically
 * after it, so a kill at any moment leaves the previous checkpoint valid and `latest` pointing at a whole one.
 */
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, tmpPath, writeFileAtomic } from '../io/atomic.js';
import { MODEL_FILES, writeModelDir } from '../io/model-dir.js';
import { CHECKPOINT_STATE, checkpointDir, checkpointsRoot, markLatest, pruneCheckpoints } from '../io/run-dir.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { safetensorsSource } from '../io/tensor-source.js';
import type { Decoder } from '../model/decoder.js';
import { hfTensors, loadWeights } from '../model/weights.js';

/** AdamW moments in the unsharded flat parameter layout. */
export interface OptimizerMoments {
  m: Float32Array;
  v: Float32Array;
}

/** Where loadCheckpoint puts the moments (a replicated or ZeRO-1 sharded optimizer takes its part). */
export interface MomentSink {
  importMoments(m: Float32Array, v: Float32Array, step: number): void;
}

export interface TrainState {
  step: number;
  optimizerStep: number;
  loader: unknown;
  /** The stage (0-based) whose data position `loader` is; absent in checkpoints of runs before stages existed. */
  stage?: number;
  rng: number[];
  tokensSeen: number;
  /** Training config at the time of the checkpoint (JSON). */
  config: unknown;
  /** Data-parallel ranks of the run that saved it (absent in single-process checkpoints of older versions). */
  worldSize?: number;
  /** Whether the run sharded its optimizer state (ZeRO-1); a resume keeps the setting unless told otherwise. */
  zero1?: boolean;
}

/** Writes a checkpoint (on one process: under data parallelism rank 0 writes, after the moments were gathered). */
export function saveCheckpoint(runDir: string, model: Decoder, moments: OptimizerMoments, state: TrainState, keep: number): string {
  const root = checkpointsRoot(runDir);
  mkdirSync(root, { recursive: true });
  const final = checkpointDir(runDir, state.step);
  const tmp = tmpPath(final);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeModelDir(tmp, model.cfg, hfTensors(model, 'params'));
  const n = model.layout.total;
  const { m, v } = moments;
  if (m.length !== n || v.length !== n) throw new Error(`internal: optimizer moments have ${m.length}/${v.length} values for ${n} parameters`);
  writeSafetensors(join(tmp, 'optimizer.safetensors'), [
    { name: 'adamw.m', dtype: 'F32', shape: [n], data: m },
    { name: 'adamw.v', dtype: 'F32', shape: [n], data: v },
  ]);
  writeFileAtomic(join(tmp, CHECKPOINT_STATE), JSON.stringify(state, null, 1) + '\n');
  fsyncDir(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(root);
  markLatest(runDir, final);
  pruneCheckpoints(runDir, keep);
  return final;
}

export function loadCheckpoint(dir: string, model: Decoder, opt: MomentSink | null): TrainState {
  const state = JSON.parse(readFileSync(join(dir, CHECKPOINT_STATE), 'utf8')) as TrainState;
  const weights = join(dir, MODEL_FILES.weights);
  loadWeights(model, safetensorsSource(weights), weights);
  if (opt) {
    const st = readSafetensors(join(dir, 'optimizer.safetensors'));
    const m = st.toFloat32('adamw.m');
    const v = st.toFloat32('adamw.v');
    if (m.length !== model.layout.total)
      throw new Error(`${dir}: optimizer state has ${m.length} values but the model has ${model.layout.total} parameters; the checkpoint belongs to another model`);
    if (v.length !== m.length) throw new Error(`${dir}: optimizer.safetensors has ${m.length} m values but ${v.length} v values; the file is damaged`);
    opt.importMoments(m, v, state.optimizerStep);
  }
  return state;
}
