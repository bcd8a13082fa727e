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
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../config/model.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { checkExportable, toHfConfig } from '../io/hf-config.js';
import type { Decoder } from '../model/decoder.js';
import { hfTensors, loadWeights, type TensorSource } from '../model/weights.js';

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
  rng: number[];
  tokensSeen: number;
  /** Training config at the time of the checkpoint (JSON). */
  config: unknown;
  /** Data-parallel ranks of the run that saved it (absent in single-process checkpoints of older versions). */
  worldSize?: number;
  /** Whether the run sharded its optimizer state (ZeRO-1); a resume keeps the setting unless told otherwise. */
  zero1?: boolean;
}

export function checkpointDir(runDir: string, step: number): string {
  return join(runDir, 'checkpoints', `step-${String(step).padStart(8, '0')}`);
}

function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

export function writeModelDir(dir: string, model: Decoder): void {
  const tensors: TensorToWrite[] = hfTensors(model, 'params').map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: t.data }));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeFileSync(join(dir, 'model_config.json'), JSON.stringify(model.cfg, null, 2) + '\n');
  if (exportable(model.cfg)) writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.cfg), null, 2) + '\n');
}

function exportable(cfg: ModelConfig): boolean {
  try {
    checkExportable(cfg);
    return true;
  } catch {
    return false;
  }
}

/** Writes a checkpoint (on one process: under data parallelism rank 0 writes, after the moments were gathered). */
export function saveCheckpoint(runDir: string, model: Decoder, moments: OptimizerMoments, state: TrainState, keep: number): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const final = checkpointDir(runDir, state.step);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeModelDir(tmp, model);
  const n = model.layout.total;
  const { m, v } = moments;
  if (m.length !== n || v.length !== n) throw new Error(`internal: optimizer moments have ${m.length}/${v.length} values for ${n} parameters`);
  writeSafetensors(join(tmp, 'optimizer.safetensors'), [
    { name: 'adamw.m', dtype: 'F32', shape: [n], data: m },
    { name: 'adamw.v', dtype: 'F32', shape: [n], data: v },
  ]);
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(state, null, 1) + '\n');
  fsyncDir(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(root);
  writeFileAtomic(join(root, 'latest'), `${final.split('/').pop()}\n`);
  prune(root, keep);
  return final;
}

function prune(root: string, keep: number): void {
  const done = readdirSync(root).filter((d) => /^step-\d{8}$/.test(d)).sort();
  for (const d of done.slice(0, Math.max(0, done.length - keep))) rmSync(join(root, d), { recursive: true, force: true });
  // Leftovers of a killed save are never valid checkpoints.
  for (const d of readdirSync(root)) if (/\.tmp-\d+$/.test(d)) rmSync(join(root, d), { recursive: true, force: true });
}

/** The newest complete checkpoint of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return null;
  const pointer = join(root, 'latest');
  if (existsSync(pointer)) {
    const dir = join(root, readFileSync(pointer, 'utf8').trim());
    if (existsSync(join(dir, 'state.json'))) return dir;
  }
  const done = readdirSync(root).filter((d) => /^step-\d{8}$/.test(d) && existsSync(join(root, d, 'state.json'))).sort();
  return done.length ? join(root, done[done.length - 1]!) : null;
}

export function safetensorsSource(path: string): TensorSource {
  const st = readSafetensors(path);
  return {
    has: (name) => st.has(name),
    shape: (name) => st.info(name).shape,
    read: (name) => st.toFloat32(name),
    names: () => st.names(),
  };
}

export function loadCheckpoint(dir: string, model: Decoder, opt: MomentSink | null): TrainState {
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainState;
  loadWeights(model, safetensorsSource(join(dir, 'model.safetensors')), join(dir, 'model.safetensors'));
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
