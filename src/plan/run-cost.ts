/**
 * The cost of one training run before it starts, as lmforge's engine runs it: parameters, FLOPs per token, tokens,
 * steps, time at an assumed throughput, and the engine memory of one rank. `lmforge sweep --dry-run` prints these
 * per variant, and the sweep report sets them beside what was measured.
 */
import type { ModelConfig } from '../config/model.js';
import type { RecomputeMode } from '../config/train.js';
import { countParams, flopsPerToken } from '../model/count.js';
import { activationArenaBytes } from '../model/activations.js';
import { getDevice } from './devices.js';

/** The shape of a run: what the trainer's config and the launcher decide. */
export interface RunShape {
  seq: number;
  microBatch: number;
  gradAccum: number;
  /** Data-parallel ranks. */
  ranks: number;
  steps: number;
  /** Evaluate every N steps (0 = only at the end); the trainer also evaluates at step 0 and at the end. */
  evalEvery: number;
  evalBatches: number;
  zero1: boolean;
  /** Activation recomputation (default none). */
  recompute?: RecomputeMode;
}

/**
 * What throughput to assume: achieved model FLOP/s of the whole run (`gflops`, e.g. a CPU's measured rate), or a
 * GPU from the device table at an MFU (times the ranks).
 */
export type Throughput = { gflops: number } | { gpu: string; mfu: number };

export interface RunCost {
  params: number;
  flopsPerToken: number;
  tokensPerStep: number;
  steps: number;
  /** Training tokens: steps x tokensPerStep. */
  tokens: number;
  /** Forward-only tokens of all evaluations (a third of the training FLOPs each). */
  evalTokens: number;
  /** Training plus evaluation FLOPs over the assumed FLOP/s. */
  seconds: number;
  /**
   * Engine memory of one rank: fp32 weights and gradients, AdamW m and v (ZeRO-1: / ranks), the activation arena
   * (bf16 activations and a bf16 weight copy on a GPU).
   */
  memoryBytes: number;
  /** The assumption in words. */
  assumption: string;
}

export class RunCostError extends Error {}

/** FLOP/s of the whole run under the assumption, and the assumption in words. */
export function assumedFlops(t: Throughput, ranks: number): { flops: number; words: string } {
  if ('gflops' in t) {
    if (!(t.gflops > 0)) throw new RunCostError(`the assumed throughput must be a positive GFLOP/s figure, got ${t.gflops}`);
    return { flops: t.gflops * 1e9, words: `${t.gflops} GFLOP/s achieved` };
  }
  if (!(t.mfu > 0 && t.mfu <= 1)) throw new RunCostError(`the assumed MFU must be a fraction in (0, 1], got ${t.mfu}`);
  const d = getDevice(t.gpu);
  return { flops: ranks * d.peakFlops * t.mfu, words: `${ranks} x ${d.name} at ${Math.round(t.mfu * 100)}% MFU` };
}

/** Steps that bring a run closest to `tokens` (at least one). */
export function stepsForTokens(tokens: number, tokensPerStep: number): number {
  return Math.max(1, Math.round(tokens / tokensPerStep));
}

export function runCost(model: ModelConfig, shape: RunShape, throughput: Throughput): RunCost {
  const params = countParams(model).total;
  const fpt = flopsPerToken(model, shape.seq).total;
  const tokensPerStep = shape.microBatch * shape.seq * shape.gradAccum * shape.ranks;
  const tokens = shape.steps * tokensPerStep;
  // Evaluations at step 0, every evalEvery steps, and at the end (the trainer never evaluates twice at one step).
  const periodic = shape.evalEvery > 0 ? Math.floor((shape.steps - 1) / shape.evalEvery) : 0;
  const evals = 2 + periodic;
  const evalTokens = evals * shape.evalBatches * shape.microBatch * shape.seq * shape.ranks;
  const { flops, words } = assumedFlops(throughput, shape.ranks);
  const seconds = (tokens * fpt + (evalTokens * fpt) / 3) / flops;
  const moments = (8 * params) / (shape.zero1 ? shape.ranks : 1);
  // On a GPU (bf16 mode) activations are stored in bf16 and the model keeps a bf16 copy of its weights.
  const onGpu = 'gpu' in throughput;
  const memoryBytes = 8 * params + moments + (onGpu ? 2 * params : 0) +
    activationArenaBytes(model, shape.microBatch, shape.seq, onGpu ? 'bf16' : 'f32', shape.recompute ?? 'none');
  return { params, flopsPerToken: fpt, tokensPerStep, steps: shape.steps, tokens, evalTokens, seconds, memoryBytes, assumption: words };
}
