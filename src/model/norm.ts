/** RMSNorm or LayerNorm over rows of width d. LayerNorm keeps the row means; RMSNorm has none. */
import type { Backend, Ptr } from '../engine/backend.js';
import type { NormKind } from '../config/model.js';
import type { ParamBuffers } from './linear.js';

/** Per-row statistics saved by the forward pass for the backward pass. */
export interface NormStats {
  mean: Ptr;
  rstd: Ptr;
}

export class Norm {
  constructor(
    private readonly be: Backend,
    readonly kind: NormKind,
    readonly w: Ptr,
    readonly gw: Ptr,
    readonly b: Ptr | null,
    readonly gb: Ptr | null,
    readonly d: number,
    readonly eps: number,
  ) {
    if (kind === 'layernorm' && (!b || !gb)) throw new Error('internal: layernorm needs a bias');
  }

  /** The norm whose weight (and bias, when its offset is not null) start at these layout offsets. */
  static at(be: Backend, kind: NormKind, pb: ParamBuffers, weight: number, bias: number | null, d: number, eps: number): Norm {
    const b = bias === null ? null : { buf: pb.params, offset: bias };
    const gb = bias === null ? null : { buf: pb.grads, offset: bias };
    return new Norm(be, kind, { buf: pb.params, offset: weight }, { buf: pb.grads, offset: weight }, b, gb, d, eps);
  }

  forward(out: Ptr, stats: NormStats, x: Ptr, rows: number): void {
    if (this.kind === 'rmsnorm') this.be.rmsnormForward(out, stats.rstd, x, this.w, rows, this.d, this.eps);
    else this.be.layernormForward(out, stats.mean, stats.rstd, x, this.w, this.b!, rows, this.d, this.eps);
  }

  /** sum = a + b (sum may be a or b), then out = norm(sum): the residual add fused with this norm, same values. */
  forwardAdd(sum: Ptr, out: Ptr, stats: NormStats, a: Ptr, b: Ptr, rows: number): void {
    if (this.kind === 'rmsnorm') this.be.addRmsnormForward(sum, out, stats.rstd, a, b, this.w, rows, this.d, this.eps);
    else this.be.addLayernormForward(sum, out, stats.mean, stats.rstd, a, b, this.w, this.b!, rows, this.d, this.eps);
  }

  backward(dx: Ptr, dout: Ptr, x: Ptr, stats: NormStats, rows: number, accumulateDx: boolean): void {
    if (this.kind === 'rmsnorm') this.be.rmsnormBackward(dx, this.gw, dout, x, this.w, stats.rstd, rows, this.d, accumulateDx);
    else this.be.layernormBackward(dx, this.gw, this.gb!, dout, x, this.w, stats.mean, stats.rstd, rows, this.d, accumulateDx);
  }
}
