/**
 * CudaBackend: the `Backend` implemented by the native addon `build/Release/lmforge_cuda.node` (CUDA kernels in
 * src/engine/cuda/*.cu, cuBLASLt GEMMs, Node-API glue in *.cc), built by scripts/build-cuda.mjs at install
 * where a CUDA toolkit with cuBLAS exists.
 *
 * Every op is queued on one CUDA stream and returns at once; only `download` and `synchronize` wait. Buffers
 * are device memory with the interface's f32/f64/i32 semantics. Precision: in 'bf16' mode (the default) the
 * matrix products round their operands to bf16 and accumulate in fp32 (like autocast); everything else,
 * including stored activations, weights, gradients and optimizer state, stays fp32. 'fp32' mode runs the
 * GEMMs in true fp32 (no TF32) for parity checks. See docs/cuda.md.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdamWHyper, AttentionShape, Backend, DeviceBuffer, DType, MatmulOptions, Ptr, QkvStrides } from './backend.js';

type Num = number;
type Typed = Float32Array | Float64Array | Int32Array;

export type CudaPrecision = 'bf16' | 'fp32';

export interface CudaMemoryStats {
  /** Bytes in live buffers, and the most ever live at once. */
  allocated: number;
  peakAllocated: number;
  /** Bytes in the engine's scratch areas (GEMM workspace, logits chunk, bf16 operand copies). */
  scratch: number;
  /** High-water mark of the stream-ordered memory pool (buffers + scratch), when known. */
  poolReservedPeak?: number;
  deviceFree?: number;
  deviceTotal?: number;
}

/** The functions the addon exports; buffers are (handle, offset) pairs, null handle = -1. */
interface NativeCuda {
  probe(): string;
  describe(): string;
  setPrecision(p: CudaPrecision): void;
  precision(): CudaPrecision;
  memoryStats(): CudaMemoryStats;
  alloc(dtypeCode: Num, length: Num): Num;
  free(handle: Num): void;
  allocatedBytes(): Num;
  upload(h: Num, o: Num, src: Typed): void;
  download(h: Num, o: Num, into: Typed): void;
  synchronize(): void;
  fill(h: Num, o: Num, n: Num, value: Num): void;
  copy(dh: Num, doff: Num, sh: Num, soff: Num, n: Num): void;
  add(oh: Num, oo: Num, ah: Num, ao: Num, bh: Num, bo: Num, n: Num): void;
  scale(h: Num, o: Num, n: Num, s: Num): void;
  matmul(...args: (Num | boolean)[]): void;
  biasGrad(...args: Num[]): void;
  embeddingForward(...args: (Num | boolean)[]): void;
  embeddingBackward(...args: Num[]): void;
  rmsnormForward(...args: Num[]): void;
  rmsnormBackward(...args: (Num | boolean)[]): void;
  layernormForward(...args: Num[]): void;
  layernormBackward(...args: (Num | boolean)[]): void;
  qkPrepForward(...args: Num[]): void;
  qkPrepBackward(...args: Num[]): void;
  attentionForward(...args: Num[]): void;
  attentionBackward(...args: Num[]): void;
  attentionDecode(...args: Num[]): void;
  swigluForward(...args: Num[]): void;
  swigluBackward(...args: Num[]): void;
  activationForward(...args: Num[]): void;
  activationBackward(...args: Num[]): void;
  headCrossEntropy(...args: Num[]): void;
  sumSquares(...args: Num[]): void;
  adamw(...args: Num[]): void;
}

const DTYPE_CODE: Record<DType, number> = { f32: 0, f64: 1, i32: 2 };
const ACTIVATION_CODE = { gelu: 0, gelu_tanh: 1, silu: 2 } as const;

/** The addon's path: the package root is three levels above dist/src/engine/cuda.js. */
export function cudaAddonPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(root, 'build', 'Release', 'lmforge_cuda.node');
}

/** Reads LMFORGE_CUDA_PRECISION; unset means bf16. */
export function precisionFromEnv(env: NodeJS.ProcessEnv = process.env): CudaPrecision {
  const v = (env.LMFORGE_CUDA_PRECISION ?? '').trim().toLowerCase();
  if (v === '' || v === 'bf16' || v === 'bfloat16') return 'bf16';
  if (v === 'fp32' || v === 'f32' || v === 'float32') return 'fp32';
  throw new Error(`LMFORGE_CUDA_PRECISION='${v}' is not a precision: use bf16 (default) or fp32`);
}

let native: NativeCuda | null = null;
let loadError: string | null = null;

function tryLoad(): NativeCuda | null {
  if (native || loadError) return native;
  const path = cudaAddonPath();
  if (!existsSync(path)) {
    loadError =
      `the CUDA engine is not built (${path} is missing): install on a machine with the CUDA toolkit and cuBLAS ` +
      '(nvcc, cublasLt.h), or run `node scripts/build-cuda.mjs`; use --device cpu meanwhile';
    return null;
  }
  try {
    native = createRequire(import.meta.url)(path) as NativeCuda;
  } catch (e) {
    loadError = `the CUDA engine at ${path} could not be loaded (${e instanceof Error ? e.message : String(e)}): ` +
      'check that the CUDA driver and the cuBLAS libraries it was built against are installed';
  }
  return native;
}

/** Whether a CUDA backend can be created here, and if not, why (no build, no driver, no device). */
export function cudaAvailability(): { ok: true } | { ok: false; reason: string } {
  const n = tryLoad();
  if (!n) return { ok: false, reason: loadError ?? 'unknown' };
  const why = n.probe();
  return why ? { ok: false, reason: why } : { ok: true };
}

export interface CudaBackendOptions {
  /** Overrides LMFORGE_CUDA_PRECISION. */
  precision?: CudaPrecision;
}

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  private readonly n: NativeCuda;

  constructor(opts: CudaBackendOptions = {}) {
    const avail = cudaAvailability();
    if (!avail.ok) throw new Error(`CUDA backend unavailable: ${avail.reason}`);
    this.n = native as NativeCuda;
    this.n.setPrecision(opts.precision ?? precisionFromEnv());
  }

  describe(): string {
    return this.n.describe();
  }
  /** Host threads do not apply: the GPU runs every op. Accepted for interface compatibility. */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: the thread count must be an integer >= 1, got ${n}`);
  }
  threads(): number {
    return 1;
  }
  precision(): CudaPrecision {
    return this.n.precision();
  }
  setPrecision(p: CudaPrecision): void {
    this.n.setPrecision(p);
  }
  memoryStats(): CudaMemoryStats {
    return this.n.memoryStats();
  }

  // ---- memory ----
  alloc(dtype: DType, length: number): DeviceBuffer {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`alloc: length must be a non-negative integer, got ${length}`);
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
    this.n.synchronize();
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
    this.n.embeddingForward(out.buf.handle, out.offset, ids.buf.handle, ids.offset, table.buf.handle, table.offset, n, d, accumulate);
  }
  embeddingBackward(dtable: Ptr, ids: Ptr, dout: Ptr, n: number, d: number): void {
    this.n.embeddingBackward(dtable.buf.handle, dtable.offset, ids.buf.handle, ids.offset, dout.buf.handle, dout.offset, n, d);
  }

  // ---- normalisation ----
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, rows: number, d: number, eps: number): void {
    this.n.rmsnormForward(...hp(out), ...hp(rstd), ...hp(x), ...hp(w), rows, d, eps);
  }
  rmsnormBackward(dx: Ptr, dw: Ptr, dout: Ptr, x: Ptr, w: Ptr, rstd: Ptr, rows: number, d: number, accumulateDx: boolean): void {
    this.n.rmsnormBackward(...hp(dx), ...hp(dw), ...hp(dout), ...hp(x), ...hp(w), ...hp(rstd), rows, d, accumulateDx);
  }
  layernormForward(out: Ptr, mean: Ptr, rstd: Ptr, x: Ptr, w: Ptr, b: Ptr, rows: number, d: number, eps: number): void {
    this.n.layernormForward(...hp(out), ...hp(mean), ...hp(rstd), ...hp(x), ...hp(w), ...hp(b), rows, d, eps);
  }
  layernormBackward(
    dx: Ptr, dw: Ptr, db: Ptr, dout: Ptr, x: Ptr, w: Ptr, mean: Ptr, rstd: Ptr, rows: number, d: number, accumulateDx: boolean,
  ): void {
    this.n.layernormBackward(
      ...hp(dx), ...hp(dw), ...hp(db), ...hp(dout), ...hp(x), ...hp(w), ...hp(mean), ...hp(rstd), rows, d, accumulateDx,
    );
  }

  // ---- attention prologue ----
  qkPrepForward(
    out: Ptr, rstd: Ptr, qkv: Ptr, qkvStride: number, qNormW: Ptr | null, kNormW: Ptr | null,
    cos: Ptr | null, sin: Ptr | null, n: number, seq: number, heads: number, kvHeads: number, headDim: number, eps: number,
  ): void {
    this.n.qkPrepForward(
      ...hp(out), ...hp(rstd), ...hp(qkv), qkvStride, ...hpn(qNormW), ...hpn(kNormW), ...hpn(cos), ...hpn(sin),
      n, seq, heads, kvHeads, headDim, eps,
    );
  }
  qkPrepBackward(
    dqkv: Ptr, qkvStride: number, dqNormW: Ptr | null, dkNormW: Ptr | null, dout: Ptr, qkv: Ptr,
    rstd: Ptr, qNormW: Ptr | null, kNormW: Ptr | null, cos: Ptr | null, sin: Ptr | null,
    n: number, seq: number, heads: number, kvHeads: number, headDim: number,
  ): void {
    this.n.qkPrepBackward(
      ...hp(dqkv), qkvStride, ...hpn(dqNormW), ...hpn(dkNormW), ...hp(dout), ...hp(qkv), ...hp(rstd),
      ...hpn(qNormW), ...hpn(kNormW), ...hpn(cos), ...hpn(sin), n, seq, heads, kvHeads, headDim,
    );
  }

  // ---- attention ----
  attentionForward(out: Ptr, lse: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, shape: AttentionShape): void {
    this.n.attentionForward(
      ...hp(out), ...hp(lse), ...hp(q), ...hp(k), ...hp(v), strides.q, strides.k, strides.v,
      shape.batch, shape.seq, shape.heads, shape.kvHeads, shape.headDim, shape.scale,
    );
  }
  attentionBackward(
    dq: Ptr, dk: Ptr, dv: Ptr, dout: Ptr, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr, strides: QkvStrides, shape: AttentionShape,
  ): void {
    this.n.attentionBackward(
      ...hp(dq), ...hp(dk), ...hp(dv), ...hp(dout), ...hp(q), ...hp(k), ...hp(v), ...hp(out), ...hp(lse),
      strides.q, strides.k, strides.v, shape.batch, shape.seq, shape.heads, shape.kvHeads, shape.headDim, shape.scale,
    );
  }
  attentionDecode(
    out: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, n: number, past: number,
    heads: number, kvHeads: number, headDim: number, scale: number,
  ): void {
    this.n.attentionDecode(
      ...hp(out), ...hp(q), ...hp(k), ...hp(v), strides.q, strides.k, strides.v, n, past, heads, kvHeads, headDim, scale,
    );
  }

  // ---- activations ----
  swigluForward(out: Ptr, gu: Ptr, rows: number, f: number): void {
    this.n.swigluForward(...hp(out), ...hp(gu), rows, f);
  }
  swigluBackward(dgu: Ptr, dout: Ptr, gu: Ptr, rows: number, f: number): void {
    this.n.swigluBackward(...hp(dgu), ...hp(dout), ...hp(gu), rows, f);
  }
  activationForward(out: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.n.activationForward(...hp(out), ...hp(x), n, activationCode(kind));
  }
  activationBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.n.activationBackward(...hp(dx), ...hp(dout), ...hp(x), n, activationCode(kind));
  }

  // ---- output head + cross-entropy ----
  headCrossEntropy(args: {
    lossOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number;
    gradScale: number; dh: Ptr | null; dw: Ptr | null; logitsOut: Ptr | null;
  }): void {
    this.n.headCrossEntropy(
      ...hp(args.lossOut), ...hp(args.h), ...hp(args.w), ...hp(args.targets), args.n, args.d, args.vocab, args.gradScale,
      ...hpn(args.dh), ...hpn(args.dw), ...hpn(args.logitsOut),
    );
  }

  // ---- optimizer ----
  sumSquares(out: Ptr, x: Ptr, n: number): void {
    this.n.sumSquares(...hp(out), ...hp(x), n);
  }
  adamw(param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, hyper: AdamWHyper): void {
    this.n.adamw(
      ...hp(param), ...hp(grad), ...hp(m), ...hp(v), n,
      hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay, hyper.step, hyper.gradScale,
    );
  }
}

/** A pointer as the addon's (handle, offset) pair. */
function hp(p: Ptr): [number, number] {
  return [p.buf.handle, p.offset];
}
/** An optional pointer: (-1, 0) when absent. */
function hpn(p: Ptr | null): [number, number] {
  return p ? [p.buf.handle, p.offset] : [-1, 0];
}
function activationCode(kind: 'gelu' | 'gelu_tanh' | 'silu'): number {
  const code = ACTIVATION_CODE[kind];
  if (code === undefined) throw new TypeError(`unknown activation '${String(kind)}' (use gelu, gelu_tanh or silu)`);
  return code;
}
