/**
 * What a sweep directory looks like on disk, in one place:
 *   sweep.json        the variants, their settings and their state (written atomically after every change)
 *   <variant id>/     one run directory per variant (io/run-dir.ts)
 *   report/           what `lmforge report SWEEP_DIR` writes
 * The sweep layer writes sweep.json; the report and the dashboard read it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/atomic.js';

export const SWEEP_FILES = {
  state: 'sweep.json',
  report: 'report',
} as const;

export type VariantState = 'pending' | 'running' | 'done' | 'failed';

/** What the planner predicted for a variant before it ran. */
export interface Prediction {
  params: number;
  flopsPerToken: number;
  tokens: number;
  steps: number;
  /** Seconds at the assumed throughput (training plus evaluation). */
  seconds: number;
  /** Engine memory on one rank: weights, gradients, optimizer state and the activation arena. */
  memoryBytes: number;
}

/** What was measured of a variant's run. */
export interface Measured {
  /** Wall-clock seconds of training, summed over attempts up to the checkpoint each one resumed from. */
  wallSeconds: number;
  /** Largest resident set of the training process (rank 0), bytes. */
  peakRssBytes?: number;
  /** Largest engine allocation (rank 0), bytes. */
  enginePeakBytes?: number;
}

export interface SweepVariant {
  /** Directory-safe name, unique in the sweep (e.g. `rope_theta=1e5`). */
  id: string;
  /** The values this variant varies, by key, as written in the sweep file. */
  values: Record<string, string | number | boolean>;
  /** Every `key=value` given to the trainer after the base config, in order. */
  sets: string[];
  /** Run directory, relative to the sweep directory. */
  runDir: string;
  state: VariantState;
  /** Failed: the error, one line. */
  error?: string;
  attempts: number;
  prediction: Prediction;
  measured?: Measured;
  /** Seconds of training that the latest checkpoint stands for (what a resumed attempt adds to). */
  elapsedAtCheckpoint?: { step: number; seconds: number };
}

export interface SweepState {
  version: 1;
  name: string;
  /** The sweep file, as given on the command line. */
  file: string;
  /** Base training config (path as given), or null for the trainer's defaults. */
  base: string | null;
  /** What every variant holds fixed, as written (tokens or flops, seed, data). */
  hold: Record<string, string | number>;
  /** The keys that vary. */
  keys: string[];
  /** Data-parallel ranks per run. */
  nproc: number;
  /** The throughput the predictions assume, in words (e.g. "150 GFLOP/s" or "8 x b200 at 40% MFU"). */
  assumption: string;
  created: string;
  variants: SweepVariant[];
}

export function sweepStatePath(dir: string): string {
  return join(dir, SWEEP_FILES.state);
}

export function isSweepDir(dir: string): boolean {
  return existsSync(sweepStatePath(dir));
}

export function readSweepState(dir: string): SweepState {
  const file = sweepStatePath(dir);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read the sweep state (${(e as Error).message}); it is written by 'lmforge sweep'`);
  }
  const s = parsed as Partial<SweepState>;
  if (s.version !== 1 || !Array.isArray(s.variants))
    throw new Error(`${file}: not a sweep state of this version of lmforge (expected version 1 with a variants list)`);
  return s as SweepState;
}

export function writeSweepState(dir: string, state: SweepState): void {
  writeFileAtomic(sweepStatePath(dir), JSON.stringify(state, null, 2) + '\n');
}
