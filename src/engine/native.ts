/**
 * NativeBackend: the `Backend` ops marshalled to a Node-API engine. Both engines (CPU: src/engine/cpu/*.cc,
 * CUDA: src/engine/cuda/*) export the same functions with the same argument order, each buffer travelling as
 * a (handle, offset) pair; the engine checks dtypes and bounds and throws a JavaScript Error on misuse. The
 * subclasses add what differs: loading, threads, precision, raw addresses for collectives.
 */
import type { AdamWHyper, AttentionShape, Backend, DeviceBuffer, DocumentBounds, DType, MatmulOptions, Ptr, QkvStrides } from './backend.js';

export type Num = number;
export type Typed = Float32Array | Float64Array | Int32Array;

/** The functions both engines' addons export; buffers are (handle, offset) pairs, a missing buffer has handle -1. */
export interface NativeOps {
  describe(): string;
  alloc(dtypeCode: Num, length: Num): Num;
  free(handle: Num): void;
  allocatedBytes(): Num;
  peakAllocatedBytes(): Num;
  upload(h: Num, o: Num, src: Typed): void;
  download(h: Num, o: Num, into: Typed): void;
  /** Absent where every op completes before it returns (the CPU). */
  synchronize?(): void;
  fill(h: Num, o: Num, n: Num, value: Num): void;
  copy(dh: Num, doff: Num, sh: Num, soff: Num, n: Num): void;
  add(oh: Num, oo: Num, ah: Num, ao: Num, bh: Num, bo: Num, n: Num): void;
  scale(h: Num, o: Num, n: Num, s: Num): void;
  matmul(
    ch: Num, co: Num, ah: Num, ao: Num, bh: Num, bo: Num, m: Num, n: Num, k: Num, transA: boolean, transB: boolean,
    lda: Num, ldb: Num, ldc: Num, accumulate: boolean, biasH: Num, biasO: Num,
  ): void;
  biasGrad(dbh: Num, dbo: Num, dyh: Num, dyo: Num, rows: Num, cols: Num, ldy: Num): void;
  embeddingForward(oh: Num, oo: Num, ih: Num, io: Num, th: Num, to: Num, n: Num, d: Num, accumulate: boolean): void;
  embeddingBackward(dth: Num, dto: Num, ih: Num, io: Num, doh: Num, doo: Num, n: Num, d: Num): void;
  rmsnormForward(oh: Num, oo: Num, rh: Num, ro: Num, xh: Num, xo: Num, wh: Num, wo: Num, rows: Num, d: Num, eps: Num): void;
  rmsnormBackward(
    dxh: Num, dxo: Num, dwh: Num, dwo: Num, doh: Num, doo: Num, xh: Num, xo: Num, wh: Num, wo: Num, rh: Num, ro: Num,
    rows: Num, d: Num, accumulateDx: boolean,
  ): void;
  layernormForward(
    oh: Num, oo: Num, mh: Num, mo: Num, rh: Num, ro: Num, xh: Num, xo: Num, wh: Num, wo: Num, bh: Num, bo: Num,
    rows: Num, d: Num, eps: Num,
  ): void;
  layernormBackward(
    dxh: Num, dxo: Num, dwh: Num, dwo: Num, dbh: Num, dbo: Num, doh: Num, doo: Num, xh: Num, xo: Num, wh: Num, wo: Num,
    mh: Num, mo: Num, rh: Num, ro: Num, rows: Num, d: Num, accumulateDx: boolean,
  ): void;
  qkPrepForward(...args: Num[]): void;
  qkPrepBackward(...args: Num[]): void;
  attentionForward(...args: Num[]): void;
  attentionBackward(...args: Num[]): void;
  swigluForward(oh: Num, oo: Num, gh: Num, go: Num, rows: Num, f: Num): void;
  swigluBackward(dh: Num, dof: Num, doh: Num, doo: Num, gh: Num, go: Num, rows: Num, f: Num): void;
  activationForward(oh: Num, oo: Num, xh: Num, xo: Num, n: Num, kind: Num): void;
  activationBackward(dxh: Num, dxo: Num, doh: Num, doo: Num, xh: Num, xo: Num, n: Num, kind: Num): void;
  headCrossEntropy(...args: Num[]): void;
  attentionDecode(...args: Num[]): void;
  sumSquares(oh: Num, oo: Num, xh: Num, xo: Num, n: Num): void;
  adamw(
    ph: Num, po: Num, gh: Num, go: Num, mh: Num, mo: Num, vh: Num, vo: Num, n: Num,
    lr: Num, beta1: Num, beta2: Num, eps: Num, weightDecay: Num, step: Num, gradScale: Num,
  ): void;
}

const DTYPE_CODE: Record<DType, number> = { f32: 0, f64: 1, i32: 2 };
const ACTIVATION_CODE = { gelu: 0, gelu_tanh: 1, silu: 2 } as const;

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`alloc: length must be a non-negative integer, got ${length}`);
  }
}

export abstract class NativeBackend implements Backend {
  abstract readonly name: 'cpu' | 'cuda';

  protected constructor(protected readonly n: NativeOps) {}

  describe(): string {
    return this.n.describe();
  }
  abstract setThreads(n: number): void;
  abstract threads(): number;

  // ---- memory ----
  alloc(dtype: DType, length: number): DeviceBuffer {
    checkLength(length);
    const code = DTYPE_CODE[dtype];
    if (code === undefined) throw new TypeError(`alloc: unknown dtype '${String(dtype)}' (use f32, f64 or i32)`);
    return { handle: this.n.alloc(code, length), dtype, length };
  }
  free(buf: DeviceBuffer): void {
    this.n.free(buf.handle);
  }
  allocatedBytes(): number {
    return this.n.allocatedBytes();
  }
  peakAllocatedBytes(): number {
    return this.n.peakAllocatedBytes();
  }
  upload(dst: Ptr, src: Typed): void {
    this.n.upload(dst.buf.handle, dst.offset, src);
  }
  download(src: Ptr, into: Typed): void {
    this.n.download(src.buf.handle, src.offset, into);
  }
  fill(dst: Ptr, n: number, value: number): void {
    this.n.fill(dst.buf.handle, dst.offset, n, value);
  }
  copy(dst: Ptr, src: Ptr, n: number): void {
    this.n.copy(dst.buf.handle, dst.offset, src.buf.handle, src.offset, n);
  }
  synchronize(): void {
    this.n.synchronize?.();
  }

  // ---- elementwise ----
  add(out: Ptr, a: Ptr, b: Ptr, n: number): void {
    this.n.add(out.buf.handle, out.offset, a.buf.handle, a.offset, b.buf.handle, b.offset, n);
  }
  scale(x: Ptr, n: number, s: number): void {
    this.n.scale(x.buf.handle, x.offset, n, s);
  }

  // ---- matrix products ----
  matmul(c: Ptr, a: Ptr, b: Ptr, m: number, n: number, k: number, opts: MatmulOptions = {}): void {
    const bias = opts.bias;
    this.n.matmul(
      c.buf.handle, c.offset, a.buf.handle, a.offset, b.buf.handle, b.offset, m, n, k,
      opts.transA ?? false, opts.transB ?? false, opts.lda ?? 0, opts.ldb ?? 0, opts.ldc ?? 0, opts.accumulate ?? false,
      bias ? bias.buf.handle : -1, bias ? bias.offset : 0,
    );
  }
  biasGrad(db: Ptr, dy: Ptr, rows: number, cols: number, ldy?: number): void {
    this.n.biasGrad(db.buf.handle, db.offset, dy.buf.handle, dy.offset, rows, cols, ldy ?? 0);
  }

  // ---- embeddings ----
  embeddingForward(out: Ptr, ids: Ptr, table: Ptr, n: number, d: number, accumulate: boolean): void {
    this.n.embeddingForward(
      out.buf.handle, out.offset, ids.buf.handle, ids.offset, table.buf.handle, table.offset, n, d, accumulate,
    );
  }
  embeddingBackward(dtable: Ptr, ids: Ptr, dout: Ptr, n: number, d: number): void {
    this.n.embeddingBackward(
      dtable.buf.handle, dtable.offset, ids.buf.handle, ids.offset, dout.buf.handle, dout.offset, n, d,
    );
  }

  // ---- normalisation ----
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, rows: number, d: number, eps: number): void {
    this.n.rmsnormForward(
      out.buf.handle, out.offset, rstd.buf.handle, rstd.offset, x.buf.handle, x.offset, w.buf.handle, w.offset,
      rows, d, eps,
    );
  }
  rmsnormBackward(
    dx: Ptr, dw: Ptr, dout: Ptr, x: Ptr, w: Ptr, rstd: Ptr, rows: number, d: number, accumulateDx: boolean,
  ): void {
    this.n.rmsnormBackward(
      dx.buf.handle, dx.offset, dw.buf.handle, dw.offset, dout.buf.handle, dout.offset, x.buf.handle, x.offset,
      w.buf.handle, w.offset, rstd.buf.handle, rstd.offset, rows, d, accumulateDx,
    );
  }
  layernormForward(out: Ptr, mean: Ptr, rstd: Ptr, x: Ptr, w: Ptr, b: Ptr, rows: number, d: number, eps: number): void {
    this.n.layernormForward(
      out.buf.handle, out.offset, mean.buf.handle, mean.offset, rstd.buf.handle, rstd.offset, x.buf.handle, x.offset,
      w.buf.handle, w.offset, b.buf.handle, b.offset, rows, d, eps,
    );
  }
  layernormBackward(
    dx: Ptr, dw: Ptr, db: Ptr, dout: Ptr, x: Ptr, w: Ptr, mean: Ptr, rstd: Ptr,
    rows: number, d: number, accumulateDx: boolean,
  ): void {
    this.n.layernormBackward(
      dx.buf.handle, dx.offset, dw.buf.handle, dw.offset, db.buf.handle, db.offset, dout.buf.handle, dout.offset,
      x.buf.handle, x.offset, w.buf.handle, w.offset, mean.buf.handle, mean.offset, rstd.buf.handle, rstd.offset,
      rows, d, accumulateDx,
    );
  }

  // ---- attention prologue ----
  qkPrepForward(
    out: Ptr, rstd: Ptr, qkv: Ptr, qkvStride: number, qNormW: Ptr | null, kNormW: Ptr | null,
    cos: Ptr | null, sin: Ptr | null, n: number, seq: number, heads: number, kvHeads: number, headDim: number, eps: number,
    positions: Ptr | null = null,
  ): void {
    this.n.qkPrepForward(
      out.buf.handle, out.offset, rstd.buf.handle, rstd.offset, qkv.buf.handle, qkv.offset, qkvStride,
      hOf(qNormW), oOf(qNormW), hOf(kNormW), oOf(kNormW), hOf(cos), oOf(cos), hOf(sin), oOf(sin),
      n, seq, heads, kvHeads, headDim, eps, hOf(positions), oOf(positions),
    );
  }
  qkPrepBackward(
    dqkv: Ptr, qkvStride: number, dqNormW: Ptr | null, dkNormW: Ptr | null, dout: Ptr, qkv: Ptr,
    rstd: Ptr, qNormW: Ptr | null, kNormW: Ptr | null, cos: Ptr | null, sin: Ptr | null,
    n: number, seq: number, heads: number, kvHeads: number, headDim: number, positions: Ptr | null = null,
  ): void {
    this.n.qkPrepBackward(
      dqkv.buf.handle, dqkv.offset, qkvStride, hOf(dqNormW), oOf(dqNormW), hOf(dkNormW), oOf(dkNormW),
      dout.buf.handle, dout.offset, qkv.buf.handle, qkv.offset, rstd.buf.handle, rstd.offset,
      hOf(qNormW), oOf(qNormW), hOf(kNormW), oOf(kNormW), hOf(cos), oOf(cos), hOf(sin), oOf(sin),
      n, seq, heads, kvHeads, headDim, hOf(positions), oOf(positions),
    );
  }

  // ---- attention ----
  attentionForward(out: Ptr, lse: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, shape: AttentionShape, docs: DocumentBounds | null = null): void {
    this.n.attentionForward(
      out.buf.handle, out.offset, lse.buf.handle, lse.offset, q.buf.handle, q.offset, k.buf.handle, k.offset,
      v.buf.handle, v.offset, strides.q, strides.k, strides.v,
      shape.batch, shape.seq, shape.heads, shape.kvHeads, shape.headDim, shape.scale,
      hOf(docs?.cuSeqlens ?? null), oOf(docs?.cuSeqlens ?? null), docs?.segments ?? 0,
    );
  }
  attentionDecode(
    out: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, n: number, past: number,
    heads: number, kvHeads: number, headDim: number, scale: number,
  ): void {
    this.n.attentionDecode(
      out.buf.handle, out.offset, q.buf.handle, q.offset, k.buf.handle, k.offset, v.buf.handle, v.offset,
      strides.q, strides.k, strides.v, n, past, heads, kvHeads, headDim, scale,
    );
  }
  attentionBackward(
    dq: Ptr, dk: Ptr, dv: Ptr, dout: Ptr, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr,
    strides: QkvStrides, shape: AttentionShape, docs: DocumentBounds | null = null,
  ): void {
    this.n.attentionBackward(
      dq.buf.handle, dq.offset, dk.buf.handle, dk.offset, dv.buf.handle, dv.offset, dout.buf.handle, dout.offset,
      q.buf.handle, q.offset, k.buf.handle, k.offset, v.buf.handle, v.offset, out.buf.handle, out.offset,
      lse.buf.handle, lse.offset, strides.q, strides.k, strides.v,
      shape.batch, shape.seq, shape.heads, shape.kvHeads, shape.headDim, shape.scale,
      hOf(docs?.cuSeqlens ?? null), oOf(docs?.cuSeqlens ?? null), docs?.segments ?? 0,
    );
  }

  // ---- activations ----
  swigluForward(out: Ptr, gu: Ptr, rows: number, f: number): void {
    this.n.swigluForward(out.buf.handle, out.offset, gu.buf.handle, gu.offset, rows, f);
  }
  swigluBackward(dgu: Ptr, dout: Ptr, gu: Ptr, rows: number, f: number): void {
    this.n.swigluBackward(dgu.buf.handle, dgu.offset, dout.buf.handle, dout.offset, gu.buf.handle, gu.offset, rows, f);
  }
  activationForward(out: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.n.activationForward(out.buf.handle, out.offset, x.buf.handle, x.offset, n, activationCode(kind));
  }
  activationBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.n.activationBackward(
      dx.buf.handle, dx.offset, dout.buf.handle, dout.offset, x.buf.handle, x.offset, n, activationCode(kind),
    );
  }

  // ---- output head + cross-entropy ----
  headCrossEntropy(args: {
    lossOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number;
    gradScale: number; dh: Ptr | null; dw: Ptr | null; logitsOut: Ptr | null;
  }): void {
    const { lossOut, h, w, targets, dh, dw, logitsOut } = args;
    this.n.headCrossEntropy(
      lossOut.buf.handle, lossOut.offset, h.buf.handle, h.offset, w.buf.handle, w.offset,
      targets.buf.handle, targets.offset, args.n, args.d, args.vocab, args.gradScale,
      hOf(dh), oOf(dh), hOf(dw), oOf(dw), hOf(logitsOut), oOf(logitsOut),
    );
  }

  // ---- optimizer ----
  sumSquares(out: Ptr, x: Ptr, n: number): void {
    this.n.sumSquares(out.buf.handle, out.offset, x.buf.handle, x.offset, n);
  }
  adamw(param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, hyper: AdamWHyper): void {
    this.n.adamw(
      param.buf.handle, param.offset, grad.buf.handle, grad.offset, m.buf.handle, m.offset, v.buf.handle, v.offset, n,
      hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay, hyper.step, hyper.gradScale,
    );
  }
}

function hOf(p: Ptr | null): number {
  return p ? p.buf.handle : -1;
}
function oOf(p: Ptr | null): number {
  return p ? p.offset : 0;
}
function activationCode(kind: 'gelu' | 'gelu_tanh' | 'silu'): number {
  const code = ACTIVATION_CODE[kind];
  if (code === undefined) throw new TypeError(`unknown activation '${String(kind)}' (use gelu, gelu_tanh or silu)`);
  return code;
}
