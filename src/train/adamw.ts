/**
 * AdamW over the flat parameter buffer, PyTorch semantics: decoupled weight decay on tensors of 2 or more
 * dimensions only, bias-corrected moments, and global-norm clipping folded into the update as a gradient scale.
 * Moments live on the backend in buffers of the parameter layout.
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
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
  private readonly ranges: { offset: number; size: number; decay: boolean }[];

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
    adamwRanges(this.be, this.ranges, this.cfg, { lr, step: this.step, gradScale, stats }, (o) => ({
      param: model.paramPtr(o), grad: model.gradPtr(o), m: { buf: this.m, offset: o }, v: { buf: this.v, offset: o },
      paramBf16: model.paramBf16Ptr(o),
    }));
  }

  dispose(): void {
    this.be.free(this.m);
    this.be.free(this.v);
  }
}

/**
 * One AdamW update over ranges of the flat parameter layout, each with its own decay setting. `at` maps a
 * parameter offset to where that parameter, its gradient and its moments are (a full buffer, or a ZeRO-1 slice).
 */
export function adamwRanges(
  be: Backend, ranges: readonly { offset: number; size: number; decay: boolean }[], cfg: AdamWConfig,
  s: { lr: number; step: number; gradScale: number; stats?: Ptr | null },
  at: (offset: number) => { param: Ptr; grad: Ptr; m: Ptr; v: Ptr; paramBf16?: Ptr | null },
): void {
  for (const r of ranges) {
    const p = at(r.offset);
    be.adamw(p.param, p.grad, p.m, p.v, r.size, {
      lr: s.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: r.decay ? cfg.weightDecay : 0,
      step: s.step, gradScale: s.gradScale, stepStats: s.stats ?? null, clip: s.stats ? cfg.clip : 0,
    }, p.paramBf16 ?? null);
  }
}
