/**
 * Atomic checkpoints. Each is a directory `checkpoints/step-NNNNNNNN/` holding
 *   model.safetensors      the weights, Hugging Face names and layout (f32)
 *   config.json            the Hugging Face config (when the model is expressible in its family) + model_config.json
 *   optimizer.safetensors  AdamW moments m and v as flat f32 buffers in the parameter layout (unsharded: under
 *                          ZeRO-1 the ranks' slices are gathered to rank 0 first, so any world size can resume)
 *   state.json             step, optimizer step, data-loader state, RNG state, the training config, and a small
 *                          health record (train/health.ts) saying whether the loss was behaving
 * It is written under a temporary name and renamed into place, and `checkpoints/latest` is replaced atomically
 * after it, so a kill at any moment leaves the previous checkpoint valid and `latest` pointing at a whole one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileError, fsyncDir, tmpPath, writeFileAtomic } from '../files/atomic.js';
import { MODEL_FILES, writeModelDir } from '../io/model-dir.js';
import {
  CHECKPOINT_STATE, checkpointDir, checkpointsRoot, checkpointStep, completedCheckpoints, latestCheckpoint, markLatest, pruneCheckpoints,
} from '../io/run-dir.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { safetensorsSource, withSource } from '../io/tensor-source.js';
import type { Decoder } from '../model/decoder.js';
import { checkFinite, hfTensors, loadWeights } from '../model/weights.js';
import type { HealthRecord } from './health.js';

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
  /** The loss's health when the checkpoint was saved (absent in checkpoints of older versions). */
  health?: HealthRecord;
}

/**
 * Writes a checkpoint (on one process: under data parallelism rank 0 writes, after the moments were gathered).
 * Pruning keeps the newest `keep` and `protect` (the last good checkpoint while the loss is in trouble).
 */
export function saveCheckpoint(
  runDir: string, model: Decoder, moments: OptimizerMoments, state: TrainState, keep: number, protect: string | null = null,
): string {
  const root = checkpointsRoot(runDir);
  mkdirSync(root, { recursive: true });
  const final = checkpointDir(runDir, state.step);
  const tmp = tmpPath(final);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeModelDir(tmp, model.cfg, hfTensors(model, 'params'));
    const n = model.layout.total;
    const { m, v } = moments;
    if (m.length !== n || v.length !== n) throw new Error(`internal: optimizer moments have ${m.length}/${v.length} values for ${n} parameters`);
    writeSafetensors(join(tmp, 'optimizer.safetensors'), [
      { name: 'adamw.m', dtype: 'F32', shape: [n], data: m },
      { name: 'adamw.v', dtype: 'F32', shape: [n], data: v },
    ]);
    writeFileAtomic(join(tmp, CHECKPOINT_STATE), JSON.stringify(state, null, 1) + '\n');
  } catch (e) {
    // A failed save (a full disk) leaves nothing behind; the previous checkpoint and `latest` are untouched.
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(tmp);
  rmSync(final, { recursive: true, force: true });
  try {
    renameSync(tmp, final);
  } catch (e) {
    throw fileError(e, final, 'renaming the finished checkpoint into place');
  }
  fsyncDir(root);
  markLatest(runDir, final);
  pruneCheckpoints(runDir, keep, protect);
  return final;
}

/** The checkpoint a resume loads: the one saved at `fromStep`, or the newest; null when the run has none yet. */
export function resumeCheckpoint(runDir: string, fromStep?: number): string | null {
  if (fromStep === undefined) return latestCheckpoint(runDir);
  const dir = checkpointDir(runDir, fromStep);
  if (existsSync(join(dir, CHECKPOINT_STATE))) return dir;
  const steps = completedCheckpoints(runDir).map(checkpointStep);
  throw new Error(
    `--from-step ${fromStep}: ${runDir} has no complete checkpoint saved at step ${fromStep}; ` +
      (steps.length ? `it has step ${steps.join(', ')}` : 'it has none'),
  );
}

/** Reads a checkpoint's state.json, with a message naming what is missing or damaged. */
export function readTrainState(dir: string): TrainState {
  const file = join(dir, CHECKPOINT_STATE);
  if (!existsSync(file)) throw new Error(`${dir}: no ${CHECKPOINT_STATE}: not a complete checkpoint (an interrupted save leaves none)`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as TrainState;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); the checkpoint is damaged: resume from another with --from-step`);
  }
}

/** Loads weights (and moments into `opt`) from a checkpoint; every file it opens is closed again before it returns. */
export function loadCheckpoint(dir: string, model: Decoder, opt: MomentSink | null): TrainState {
  const state = readTrainState(dir);
  const weights = join(dir, MODEL_FILES.weights);
  withSource(safetensorsSource(weights), (src) => loadWeights(model, src, weights));
  if (opt) {
    const file = join(dir, 'optimizer.safetensors');
    const st = readSafetensors(file);
    let m: Float32Array, v: Float32Array;
    try {
      m = st.toFloat32('adamw.m');
      v = st.toFloat32('adamw.v');
    } finally {
      st.close();
    }
    if (m.length !== model.layout.total)
      throw new Error(`${dir}: optimizer state has ${m.length} values but the model has ${model.layout.total} parameters; the checkpoint belongs to another model`);
    if (v.length !== m.length) throw new Error(`${dir}: optimizer.safetensors has ${m.length} m values but ${v.length} v values; the file is damaged`);
    checkFinite('adamw.m', m, file);
    checkFinite('adamw.v', v, file);
    opt.importMoments(m, v, state.optimizerStep);
  }
  return state;
}
