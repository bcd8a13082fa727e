/**
 * AdamW over the flat parameter buffer, PyTorch semantics: decoupled weight decay on tensors of 2 or more
 * dimensions only, bias-corrected moments, and global-norm clipping folded into the update as a gradient scale.
 * Moments live on the backend in buffers of the parameter layout.
 */
import type { AdamWRange, Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
import { decayRanges } from '../model/layout.js';
import type { Decoder } from '../model/decoder.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient L2 norm to this value (0 = no clipping). */
  clip: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1.0 };

/** PyTorch's clip_grad_norm_ coefficient: max_norm / (norm + 1e-6), never above 1. */
export function clipCoefficient(norm: number, clip: number): number {
  if (!(clip > 0)) return 1;
  return Math.min(1, clip / (norm + 1e-6));
}

export class AdamW {
  readonly m: DeviceBuffer;
  readonly v: DeviceBuffer;
  /** Number of updates applied so far. */
  step = 0;
  private readonly ranges: AdamWRange[];

  constructor(private readonly be: Backend, private readonly model: Decoder, public cfg: AdamWConfig) {
    this.m = be.alloc('f32', model.layout.total);
    this.v = be.alloc('f32', model.layout.total);
    this.ranges = decayRanges(model.layout);
  }

  /**
   * Applies one update with the given learning rate; gradScale multiplies every gradient. With `stats` (the step's
   * [loss sum, gradient sum of squares] in engine memory) the engine also clips to cfg.clip and skips the update
   * when a statistic is not finite, so the host need not read them first (undoStep() then corrects the count).
   */
  update(lr: number, gradScale: number, stats: Ptr | null = null): void {
    this.step += 1;
    const { model } = this;
    adamwRanges(this.be, this.ranges, this.cfg, { lr, step: this.step, gradScale, stats }, {
      start: 0, n: model.layout.total, param: model.paramPtr(0), grad: model.gradPtr(0),
      m: { buf: this.m, offset: 0 }, v: { buf: this.v, offset: 0 }, paramBf16: model.paramBf16Ptr(0),
    });
  }

  dispose(): void {
    this.be.free(this.m);
    this.be.free(this.v);
  }
}

/**
 * One AdamW update over ranges of the flat parameter layout, each with its own decay setting, in one engine pass
 * (the multi-tensor `adamwRanges` op). `span` says where the parameters, gradients and moments of layout elements
 * [start, start + n) are (the full buffers, or a ZeRO-1 slice), and the bf16 weight copy the update also writes
 * (if any); the ranges lie inside it.
 */
export function adamwRanges(
  be: Backend, ranges: readonly AdamWRange[], cfg: AdamWConfig,
  s: { lr: number; step: number; gradScale: number; stats?: Ptr | null },
  span: { start: number; n: number; param: Ptr; grad: Ptr; m: Ptr; v: Ptr; paramBf16?: Ptr | null },
): void {
  if (ranges.length === 0) return;
  const local = ranges.map((r) => ({ offset: r.offset - span.start, size: r.size, decay: r.decay }));
  be.adamwRanges(span.param, span.grad, span.m, span.v, span.n, local, {
    lr: s.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay,
    step: s.step, gradScale: s.gradScale, stepStats: s.stats ?? null, clip: s.stats ? cfg.clip : 0,
  }, span.paramBf16 ?? null);
}
