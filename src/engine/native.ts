/**
 * NativeBackend: the `Backend` ops marshalled to a Node-API engine. Both engines (CPU: src/engine/cpu/*.cc,
 * CUDA: src/engine/cuda/*) export the same ops, whose arguments are listed once, in the op table
 * (src/engine/native/op_table.h, generated into op-table.ts with a marshaller per op). Each op here names its
 * arguments; `call` passes them in the table's order, each buffer as a (handle, offset) pair. The engine checks dtypes and bounds and throws a
 * JavaScript Error on misuse. The subclasses add what differs: loading, threads, precision, raw addresses for
 * collectives.
 */
import type {
  AdamWHyper, AdamWRange, AttentionShape, Backend, DocumentBounds, DeviceBuffer, DType, MatmulOptions, PendingRead, Ptr, QkvStrides,
} from './backend.js';
import { MARSHAL, OP_TABLE } from './op-table.js';
import type { NativeOp, Num, OpArgs, OpName, OpTable, Positional, Typed } from './op-types.js';
import { OpProfile, opLabel, type DeviceClock, type OpTime } from './profile.js';

export type { NativeOp, Num, OpArgs, OpName, Typed } from './op-types.js';

/** The functions both engines' addons export: the table's ops, and the buffer calls outside the table. */
export type NativeOps = { [O in OpName]: NativeOp<O> } & {
  describe(): string;
  alloc(dtypeCode: Num, length: Num): Num;
  free(handle: Num): void;
  allocatedBytes(): Num;
  peakAllocatedBytes(): Num;
  /** Absent where every op completes before it returns (the CPU). */
  synchronize?(): void;
  /** An asynchronous engine's readLater: queues the copy, returns a ticket for finishRead. */
  startRead?(handle: Num, offset: Num, n: Num): Num;
  finishRead?(ticket: Num, into: Float64Array): void;
  /** Bounds-checked raw address of elements [offset, offset + n) (for the collectives of src/parallel). */
  address(handle: Num, offset: Num, n: Num): bigint;
  /** The table the addon was built from: { op: [[name, kind], ...] }. */
  opTable(): Record<string, [string, string][]>;
  /** An asynchronous engine's per-op clock (src/engine/cuda/profile.cc); absent on the CPU. */
  profileMark?(): void;
  profileCollect?(): Float64Array;
};

const DTYPE_CODE: Record<DType, number> = { f32: 0, f64: 1, i32: 2, bf16: 3 };
const ACTIVATION_CODE = { gelu: 0, gelu_tanh: 1, silu: 2 } as const;

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`alloc: length must be a non-negative integer, got ${length}`);
  }
}

/**
 * Refuses an addon built from another op table than this TypeScript was (a stale build): its positions would
 * not be the ones `call` uses.
 */
export function checkOpTable(engine: string, table: unknown): void {
  if (JSON.stringify(table) !== JSON.stringify(OP_TABLE)) {
    throw new Error(
      `the ${engine} engine was built from another op table (src/engine/native/op_table.h) than src/engine/op-table.ts: ` +
        'rebuild it with `node scripts/install.mjs` (LMFORGE_REBUILD=1 forces it), or regenerate op-table.ts with ' +
        '`node scripts/gen-op-table.mjs` after changing the table',
    );
  }
}

/** The op's arguments, by name, as the positional values the addon takes (op-table.ts's marshaller). */
export function marshal<O extends OpName>(op: O, args: OpArgs<O>): Positional<OpTable[O]> {
  return (MARSHAL[op] as (named: OpArgs<O>) => Positional<OpTable[O]>)(args);
}

export abstract class NativeBackend implements Backend {
  abstract readonly name: 'cpu' | 'cuda';
  abstract readonly activationDType: 'f32' | 'bf16';

  private profile: OpProfile | null = null;

  protected constructor(protected readonly n: NativeOps, engine: 'CPU' | 'CUDA') {
    checkOpTable(engine, n.opTable());
  }

  /** Starts timing every op (see src/engine/profile.ts) until `stopProfile`. */
  startProfile(): void {
    if (this.profile) throw new Error('startProfile: a profile is already open (call stopProfile first)');
    const { profileMark, profileCollect } = this.n;
    const clock: DeviceClock | null = profileMark && profileCollect
      ? { mark: () => profileMark(), collect: () => profileCollect() }
      : null;
    this.profile = new OpProfile(clock);
  }

  /** Waits for the profiled work and returns each op's total time, largest first. */
  stopProfile(): OpTime[] {
    const p = this.profile;
    if (!p) throw new Error('stopProfile: no profile is open (call startProfile first)');
    this.profile = null;
    return p.finish();
  }

  /**
   * Runs one op of the table with its arguments by name. Shapes and hyperparameters are spread in first, so the
   * op's own arguments win over any same-named extra field they carry.
   */
  private call<O extends OpName>(op: O, args: OpArgs<O>): void {
    this.profile?.mark(opLabel(op, args));
    (this.n[op] as NativeOp<O>)(...marshal(op, args));
  }

  describe(): string {
    return this.n.describe();
  }
  abstract setThreads(n: number): void;
  abstract threads(): number;

  // ---- memory ----
  alloc(dtype: DType, length: number): DeviceBuffer {
    checkLength(length);
    const code = DTYPE_CODE[dtype];
    if (code === undefined) throw new TypeError(`alloc: unknown dtype '${String(dtype)}' (use f32, f64, i32 or bf16)`);
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
    this.call('upload', { buffer: dst, host: src });
  }
  download(src: Ptr, into: Typed): void {
    this.call('download', { buffer: src, host: into });
  }
  fill(dst: Ptr, n: number, value: number): void {
    this.call('fill', { dst, n, value });
  }
  copy(dst: Ptr, src: Ptr, n: number): void {
    this.call('copy', { dst, src, n });
  }
  synchronize(): void {
    this.n.synchronize?.();
  }
  readLater(src: Ptr, n: number): PendingRead {
    const { startRead, finishRead } = this.n;
    if (src.buf.dtype !== 'f64') throw new TypeError(`readLater: the buffer must be f64, not ${src.buf.dtype}`);
    if (!startRead || !finishRead) {
      const values = new Float64Array(n);
      this.download(src, values);
      return { wait: () => values };
    }
    this.profile?.mark('readLater');
    const ticket = startRead(src.buf.handle, src.offset, n);
    let done = false;
    return {
      wait: () => {
        if (done) throw new Error('readLater: wait() was already called for this read');
        done = true;
        const values = new Float64Array(n);
        finishRead(ticket, values);
        return values;
      },
    };
  }
  /** Engine address of elements [p.offset, p.offset + n) (bounds-checked), for the collectives in src/parallel. */
  rawAddress(p: Ptr, n: number): bigint {
    return this.n.address(p.buf.handle, p.offset, n);
  }

  // ---- elementwise ----
  add(out: Ptr, a: Ptr, b: Ptr, n: number): void {
    this.call('add', { out, a, b, n });
  }
  scale(x: Ptr, n: number, s: number): void {
    this.call('scale', { x, n, s });
  }

  // ---- matrix products ----
  matmul(c: Ptr, a: Ptr, b: Ptr, m: number, n: number, k: number, opts: MatmulOptions = {}): void {
    this.call('matmul', {
      C: c, A: a, B: b, m, n, k, transA: opts.transA ?? false, transB: opts.transB ?? false,
      lda: opts.lda ?? 0, ldb: opts.ldb ?? 0, ldc: opts.ldc ?? 0, accumulate: opts.accumulate ?? false,
      bias: opts.bias ?? null,
    });
  }
  biasGrad(db: Ptr, dy: Ptr, rows: number, cols: number, ldy?: number): void {
    this.call('biasGrad', { db, dy, rows, cols, ldy: ldy ?? 0 });
  }

  // ---- embeddings ----
  embeddingForward(out: Ptr, ids: Ptr, table: Ptr, n: number, d: number, accumulate: boolean): void {
    this.call('embeddingForward', { out, ids, table, n, d, accumulate });
  }
  embeddingBackward(dtable: Ptr, ids: Ptr, dout: Ptr, n: number, d: number): void {
    this.call('embeddingBackward', { dtable, ids, dout, n, d });
  }

  // ---- normalisation ----
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, rows: number, d: number, eps: number): void {
    this.call('rmsnormForward', { out, rstd, x, w, rows, d, eps });
  }
  rmsnormBackward(
    dx: Ptr, dw: Ptr, dout: Ptr, x: Ptr, w: Ptr, rstd: Ptr, rows: number, d: number, accumulateDx: boolean,
  ): void {
    this.call('rmsnormBackward', { dx, dw, dout, x, w, rstd, rows, d, accumulateDx });
  }
  layernormForward(out: Ptr, mean: Ptr, rstd: Ptr, x: Ptr, w: Ptr, b: Ptr, rows: number, d: number, eps: number): void {
    this.call('layernormForward', { out, mean, rstd, x, w, b, rows, d, eps });
  }
  addRmsnormForward(sum: Ptr, out: Ptr, rstd: Ptr, a: Ptr, b: Ptr, w: Ptr, rows: number, d: number, eps: number): void {
    this.call('addRmsnormForward', { sum, out, rstd, a, b, w, rows, d, eps });
  }
  addLayernormForward(
    sum: Ptr, out: Ptr, mean: Ptr, rstd: Ptr, a: Ptr, b: Ptr, w: Ptr, bias: Ptr, rows: number, d: number, eps: number,
  ): void {
    this.call('addLayernormForward', { sum, out, mean, rstd, a, b, w, bias, rows, d, eps });
  }
  layernormBackward(
    dx: Ptr, dw: Ptr, db: Ptr, dout: Ptr, x: Ptr, w: Ptr, mean: Ptr, rstd: Ptr,
    rows: number, d: number, accumulateDx: boolean,
  ): void {
    this.call('layernormBackward', { dx, dw, db, dout, x, w, mean, rstd, rows, d, accumulateDx });
  }

  // ---- attention prologue ----
  qkPrepForward(
    out: Ptr, rstd: Ptr, qkv: Ptr, qkvStride: number, qNormW: Ptr | null, kNormW: Ptr | null,
    cos: Ptr | null, sin: Ptr | null, n: number, seq: number, heads: number, kvHeads: number, headDim: number, eps: number,
    positions: Ptr | null = null,
  ): void {
    this.call('qkPrepForward', { out, rstd, qkv, qkvStride, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, eps, positions });
  }
  qkPrepBackward(
    dqkv: Ptr, qkvStride: number, dqNormW: Ptr | null, dkNormW: Ptr | null, dout: Ptr, qkv: Ptr,
    rstd: Ptr, qNormW: Ptr | null, kNormW: Ptr | null, cos: Ptr | null, sin: Ptr | null,
    n: number, seq: number, heads: number, kvHeads: number, headDim: number, positions: Ptr | null = null,
  ): void {
    this.call('qkPrepBackward', {
      dqkv, qkvStride, dqNormW, dkNormW, dout, qkv, rstd, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, positions,
    });
  }

  // ---- attention ----
  attentionForward(out: Ptr, lse: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, shape: AttentionShape, docs: DocumentBounds | null = null): void {
    this.call('attentionForward', { ...shape, ...strideArgs(strides), out, lse, q, k, v, ...documentArgs(docs) });
  }
  attentionDecode(
    out: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, n: number, past: number,
    heads: number, kvHeads: number, headDim: number, scale: number,
  ): void {
    this.call('attentionDecode', {
      out, q, kCache: k, vCache: v, ...strideArgs(strides), seq: n, past, heads, kvHeads, headDim, scale,
    });
  }
  attentionBackward(
    dq: Ptr, dk: Ptr, dv: Ptr, dout: Ptr, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr,
    strides: QkvStrides, shape: AttentionShape, docs: DocumentBounds | null = null,
  ): void {
    this.call('attentionBackward', { ...shape, ...strideArgs(strides), dq, dk, dv, dout, q, k, v, out, lse, ...documentArgs(docs) });
  }

  // ---- activations ----
  swigluForward(out: Ptr, gu: Ptr, rows: number, f: number): void {
    this.call('swigluForward', { out, gu, rows, f });
  }
  swigluBackward(dgu: Ptr, dout: Ptr, gu: Ptr, rows: number, f: number): void {
    this.call('swigluBackward', { dgu, dout, gu, rows, f });
  }
  activationForward(out: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.call('activationForward', { out, x, n, kind: activationCode(kind) });
  }
  activationBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void {
    this.call('activationBackward', { dx, dout, x, n, kind: activationCode(kind) });
  }

  // ---- output head + cross-entropy ----
  headCrossEntropy(args: {
    lossOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number;
    gradScale: number; dh: Ptr | null; dw: Ptr | null; logitsOut: Ptr | null;
  }): void {
    this.call('headCrossEntropy', args);
  }

  headLogprob(args: { logprobOut: Ptr; argmaxOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number }): void {
    this.call('headLogprob', args);
  }

  // ---- optimizer ----
  sumSquares(out: Ptr, x: Ptr, n: number): void {
    this.call('sumSquares', { out, x, n });
  }
  adamw(param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, hyper: AdamWHyper, paramBf16: Ptr | null = null): void {
    this.call('adamw', { ...hyper, stepStats: hyper.stepStats ?? null, clip: hyper.clip ?? 0, param, grad, m, v, n, paramBf16 });
  }
  adamwRanges(
    param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, ranges: readonly AdamWRange[], hyper: AdamWHyper,
    paramBf16: Ptr | null = null,
  ): void {
    const table = new Float64Array(3 * ranges.length);
    ranges.forEach((r, i) => table.set([r.offset, r.size, r.decay ? 1 : 0], 3 * i));
    this.call('adamwRanges', {
      ...hyper, stepStats: hyper.stepStats ?? null, clip: hyper.clip ?? 0, param, grad, m, v, n, ranges: table, paramBf16,
    });
  }
}

/** Document masking bounds as the ops take them (absent: causal over each row). */
function documentArgs(docs: DocumentBounds | null): { cuSeqlens: Ptr | null; segments: number } {
  return { cuSeqlens: docs?.cuSeqlens ?? null, segments: docs?.segments ?? 0 };
}

function strideArgs(strides: QkvStrides): { sq: number; sk: number; sv: number } {
  return { sq: strides.q, sk: strides.k, sv: strides.v };
}
function activationCode(kind: 'gelu' | 'gelu_tanh' | 'silu'): number {
  const code = ACTIVATION_CODE[kind];
  if (code === undefined) throw new TypeError(`unknown activation '${String(kind)}' (use gelu, gelu_tanh or silu)`);
  return code;
}
