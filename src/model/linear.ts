/**
 * y = x W^T + b, with W stored [out, in]; its backward adds into the weight and bias gradients. Where the model
 * holds a bf16 weight copy (bf16 activations), the forward and input-gradient products read it; the weight
 * gradient accumulates in f32.
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';

/** The flat parameter and gradient buffers (same layout), which components view at layout offsets. */
export interface ParamBuffers {
  params: DeviceBuffer;
  grads: DeviceBuffer;
  /** The bf16 copy of params (same layout), or null where activations are f32. */
  paramsBf16?: DeviceBuffer | null;
}

export class Linear {
  constructor(
    private readonly be: Backend,
    readonly w: Ptr,
    readonly gw: Ptr,
    readonly b: Ptr | null,
    readonly gb: Ptr | null,
    readonly inFeatures: number,
    readonly outFeatures: number,
    /** The weight the products read: the bf16 copy when there is one, else w. */
    readonly wRead: Ptr = w,
  ) {}

  /** The Linear whose weight (and bias, when its offset is not null) start at these layout offsets. */
  static at(be: Backend, pb: ParamBuffers, weight: number, bias: number | null, inFeatures: number, outFeatures: number): Linear {
    const b = bias === null ? null : { buf: pb.params, offset: bias };
    const gb = bias === null ? null : { buf: pb.grads, offset: bias };
    const w = { buf: pb.params, offset: weight };
    const wRead = pb.paramsBf16 ? { buf: pb.paramsBf16, offset: weight } : w;
    return new Linear(be, w, { buf: pb.grads, offset: weight }, b, gb, inFeatures, outFeatures, wRead);
  }

  forward(y: Ptr, x: Ptr, rows: number): void {
    this.be.matmul(y, x, this.wRead, rows, this.outFeatures, this.inFeatures, { transB: true, bias: this.b ?? undefined });
  }

  /** dx (= or += when accumulateDx) from dy; dW += dy^T x; db += column sums of dy. dx null skips the input gradient. */
  backward(dx: Ptr | null, dy: Ptr, x: Ptr, rows: number, accumulateDx = false): void {
    if (dx) this.be.matmul(dx, dy, this.wRead, rows, this.inFeatures, this.outFeatures, { accumulate: accumulateDx });
    this.be.matmul(this.gw, dy, x, this.outFeatures, this.inFeatures, rows, { transA: true, accumulate: true });
    if (this.gb) this.be.biasGrad(this.gb, dy, rows, this.outFeatures);
  }
}
