/**
 * The backend interface: everything the model, optimizer and trainer ask of an engine.
 *
 * Memory lives on the backend ("device"), in buffers allocated and freed explicitly; JavaScript holds only
 * handles. Every op enqueues work: on the CPU it runs at once, on CUDA it is queued on one stream. Only
 * `download` (and `synchronize`) wait for the work queued before them, so the trainer reads scalars late.
 *
 * Conventions shared by all ops:
 * - Tensors are row-major. A `Ptr` is a buffer plus an element offset; shapes are passed as numbers.
 * - Linear weights are stored [out, in] (the Hugging Face `nn.Linear` layout).
 * - Gradients of parameters ACCUMULATE (+=), so micro-batches add up in place; gradients of activations are
 *   written (=) unless an op's `accumulate` flag says otherwise.
 * - Token activations are [N, ...] with N = batch * seq, tokens of one sequence contiguous (t fastest after b).
 */

/**
 * Element types. 'bf16' (bfloat16, 2 bytes) is a storage format: upload/download take and return Float32Array
 * for it (rounded to nearest even on the way in), `copy` between f32 and bf16 casts, and ops accept bf16 only for
 * activation arguments on an engine that computes on them (`Backend.activationDType`).
 */
export type DType = 'f32' | 'f64' | 'i32' | 'bf16';

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f64: 8, i32: 4, bf16: 2 };

export interface DeviceBuffer {
  /** Backend-specific handle; meaningless outside the backend that made it. */
  readonly handle: number;
  readonly dtype: DType;
  /** Length in elements. */
  readonly length: number;
}

/** A position inside a buffer: `offset` counts elements of the buffer's dtype. */
export interface Ptr {
  readonly buf: DeviceBuffer;
  readonly offset: number;
}

export function at(buf: DeviceBuffer, offset = 0): Ptr {
  return { buf, offset };
}

export interface MatmulOptions {
  /** Use A^T: A is stored [k, m]. */
  transA?: boolean;
  /** Use B^T: B is stored [n, k]. */
  transB?: boolean;
  /** Leading dimensions (row strides in elements); default to the packed width. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** C += A·B instead of C = A·B. */
  accumulate?: boolean;
  /** Optional bias of length n added to every row of C (only with accumulate false). */
  bias?: Ptr;
}

export interface AttentionShape {
  batch: number;
  seq: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads; query head h reads kv head floor(h / (heads / kvHeads)). */
  kvHeads: number;
  headDim: number;
  /** Usually headDim^-0.5. */
  scale: number;
}

/**
 * Document masking for attention (varlen): the documents' starts over the flattened batch*seq tokens, then
 * batch*seq, as an i32 buffer of `segments + 1` entries. A token attends only to earlier tokens of its document;
 * every row start must be a boundary (a document never crosses rows). Never a seq x seq mask.
 */
export interface DocumentBounds {
  cuSeqlens: Ptr;
  segments: number;
}

/** Row strides (elements between token n and n+1) of q, k, v; head h of token n starts at n*stride + h*headDim. */
export interface QkvStrides {
  q: number;
  k: number;
  v: number;
}

/** A range of the flat parameter layout that AdamW updates with (decay) or without weight decay. */
export interface AdamWRange {
  offset: number;
  size: number;
  decay: boolean;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
  /** Multiplies every gradient before use (global-norm clipping, loss scaling). */
  gradScale: number;
  /**
   * The step's statistics where the engine keeps them (f64: [loss sum, gradient sum of squares]). With them the
   * engine also applies the clip coefficient of `clip` (PyTorch's clip_grad_norm_) and skips the update when a
   * statistic is not finite, so a GPU step needs no round trip through the host.
   */
  stepStats?: Ptr | null;
  /** Max gradient L2 norm with stepStats (0: no clipping). */
  clip?: number;
}

/** Values copied from the engine without waiting for it (Backend.readLater). */
export interface PendingRead {
  /** Waits for the work queued before the read (not after it), then returns the values. Once only. */
  wait(): Float64Array;
}

export interface Backend {
  readonly name: 'cpu' | 'cuda';
  /**
   * The dtype the model stores activations in (its activation arena, the bf16 weight copies when 'bf16'): 'f32' on
   * the CPU and in the CUDA engine's fp32 mode, 'bf16' in its bf16 mode. Parameters, gradients, optimizer state,
   * the residual stream and statistics are f32 everywhere.
   */
  readonly activationDType: 'f32' | 'bf16';
  /** Human-readable description (threads, BLAS, device name). */
  describe(): string;
  setThreads(n: number): void;
  threads(): number;

  // ---- memory ----
  alloc(dtype: DType, length: number): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  /** Bytes currently allocated through this backend. */
  allocatedBytes(): number;
  /** The most bytes ever allocated at once through this backend (the engine's own high-water mark). */
  peakAllocatedBytes(): number;
  upload(dst: Ptr, src: Float32Array | Float64Array | Int32Array): void;
  /** Waits for queued work, then copies `into.length` elements from `src`. */
  download(src: Ptr, into: Float32Array | Float64Array | Int32Array): void;
  /**
   * Starts copying n f64 elements of src to the host without waiting: on an asynchronous engine the work queued
   * after this call keeps running while the host waits for the values (a training step reads its loss one step
   * late this way). The CPU engine copies at once.
   */
  readLater(src: Ptr, n: number): PendingRead;
  fill(dst: Ptr, n: number, value: number): void;
  copy(dst: Ptr, src: Ptr, n: number): void;
  synchronize(): void;

  // ---- elementwise ----
  /** out = a + b over n elements (out may alias a or b). */
  add(out: Ptr, a: Ptr, b: Ptr, n: number): void;
  /** x *= s over n elements. */
  scale(x: Ptr, n: number, s: number): void;

  // ---- matrix products ----
  /** C[m,n] (=|+=) op(A)[m,k] · op(B)[k,n] (+ bias). */
  matmul(c: Ptr, a: Ptr, b: Ptr, m: number, n: number, k: number, opts?: MatmulOptions): void;
  /** db[cols] += column sums of dy[rows, cols] (row stride ldy, default cols). */
  biasGrad(db: Ptr, dy: Ptr, rows: number, cols: number, ldy?: number): void;

  // ---- embeddings ----
  /** out[n, d] (=|+=) table[ids[n], :]. */
  embeddingForward(out: Ptr, ids: Ptr, table: Ptr, n: number, d: number, accumulate: boolean): void;
  /** dtable[ids[n], :] += dout[n, :]. Deterministic (no atomics-order dependence). */
  embeddingBackward(dtable: Ptr, ids: Ptr, dout: Ptr, n: number, d: number): void;

  // ---- normalisation (rows of length d) ----
  /** out = x * rstd * w, rstd[r] = 1/sqrt(mean(x^2) + eps). */
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, rows: number, d: number, eps: number): void;
  /** dx (=|+=), dw +=. */
  rmsnormBackward(dx: Ptr, dw: Ptr, dout: Ptr, x: Ptr, w: Ptr, rstd: Ptr, rows: number, d: number, accumulateDx: boolean): void;
  /** out = (x - mean) * rstd * w + b. */
  layernormForward(out: Ptr, mean: Ptr, rstd: Ptr, x: Ptr, w: Ptr, b: Ptr, rows: number, d: number, eps: number): void;
  /**
   * The residual add fused with the RMSNorm after it: sum = a + b (sum may be a or b), then out and rstd as
   * rmsnormForward(out, rstd, sum, ...). Same values as `add` then `rmsnormForward`, one pass over the rows.
   */
  addRmsnormForward(sum: Ptr, out: Ptr, rstd: Ptr, a: Ptr, b: Ptr, w: Ptr, rows: number, d: number, eps: number): void;
  /** sum = a + b, then out, mean, rstd as layernormForward(out, mean, rstd, sum, w, bias, ...). */
  addLayernormForward(
    sum: Ptr, out: Ptr, mean: Ptr, rstd: Ptr, a: Ptr, b: Ptr, w: Ptr, bias: Ptr, rows: number, d: number, eps: number,
  ): void;
  /** dx (=|+=), dw +=, db +=. */
  layernormBackward(
    dx: Ptr, dw: Ptr, db: Ptr, dout: Ptr, x: Ptr, w: Ptr, mean: Ptr, rstd: Ptr,
    rows: number, d: number, accumulateDx: boolean,
  ): void;

  // ---- attention prologue: per-head QK-RMSNorm then RoPE (half-split), fused ----
  /**
   * Reads q (heads) and k (kvHeads) from `qkv` (row stride `qkvStride`, q at column 0, k at column heads*headDim),
   * writes them normalised (if qNormW/kNormW are given) and rotated (if cos/sin are given) into `out`,
   * packed [N, (heads + kvHeads) * headDim]. rstd [N, heads + kvHeads] is written when normalising.
   * cos/sin are [seq, headDim/2]; token n has position positions[n] (i32 [N], each in [0, seq)) when given
   * (positions restarting per document), else n % seq.
   */
  qkPrepForward(
    out: Ptr, rstd: Ptr, qkv: Ptr, qkvStride: number, qNormW: Ptr | null, kNormW: Ptr | null,
    cos: Ptr | null, sin: Ptr | null, n: number, seq: number, heads: number, kvHeads: number, headDim: number, eps: number,
    positions?: Ptr | null,
  ): void;
  /** Writes dqkv's q and k columns (stride qkvStride) from dout [N, (heads+kvHeads)*headDim]; dqNormW/dkNormW +=. */
  qkPrepBackward(
    dqkv: Ptr, qkvStride: number, dqNormW: Ptr | null, dkNormW: Ptr | null, dout: Ptr, qkv: Ptr,
    rstd: Ptr, qNormW: Ptr | null, kNormW: Ptr | null, cos: Ptr | null, sin: Ptr | null,
    n: number, seq: number, heads: number, kvHeads: number, headDim: number, positions?: Ptr | null,
  ): void;

  // ---- causal attention with GQA (never stores the seq x seq matrix between forward and backward) ----
  /**
   * out [N, heads*headDim] packed; lse [batch, heads, seq] (log-sum-exp of the scaled scores, for backward).
   * With `docs`, attention is causal within each document (document masking), else within each row.
   */
  attentionForward(out: Ptr, lse: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, shape: AttentionShape, docs?: DocumentBounds | null): void;
  /** Writes (=) dq, dk, dv with the given strides (they may be columns of one dqkv buffer); `docs` as forward's. */
  attentionBackward(
    dq: Ptr, dk: Ptr, dv: Ptr, dout: Ptr, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr,
    strides: QkvStrides, shape: AttentionShape, docs?: DocumentBounds | null,
  ): void;

  /**
   * Attention of n new queries (absolute positions past..past+n-1) over cached keys/values 0..past+n-1 of one
   * sequence (generation with a KV cache). q [n, heads*headDim] with row stride qStride; k, v rows with strides.
   * out [n, heads*headDim] packed.
   */
  attentionDecode(
    out: Ptr, q: Ptr, k: Ptr, v: Ptr, strides: QkvStrides, n: number, past: number,
    heads: number, kvHeads: number, headDim: number, scale: number,
  ): void;

  // ---- feed-forward activations ----
  /** gu [rows, 2f] holds gate | up; out [rows, f] = silu(gate) * up. */
  swigluForward(out: Ptr, gu: Ptr, rows: number, f: number): void;
  /** dgu [rows, 2f] (=) from dout [rows, f]. */
  swigluBackward(dgu: Ptr, dout: Ptr, gu: Ptr, rows: number, f: number): void;
  /** out = act(x); kind 'gelu' is the erf form, 'gelu_tanh' the tanh approximation, 'silu' x*sigmoid(x). */
  activationForward(out: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void;
  /** dx (=) = dout * act'(x). */
  activationBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number, kind: 'gelu' | 'gelu_tanh' | 'silu'): void;

  // ---- output head fused with cross-entropy ----
  /**
   * logits = h[N, d] · W[V, d]^T computed in row chunks (full logits are never needed at once).
   * targets [N] i32, -100 = ignored. Adds sum over counted rows of (logsumexp - logit[target]) to lossOut[0] (f64).
   * If dh is given: dh (=) and dW (+=) for the loss sum scaled by `gradScale` (1/counted tokens for a mean).
   * If logitsOut is given, the f32 logits [N, V] are written there too (parity checks, generation).
   */
  headCrossEntropy(args: {
    lossOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number;
    gradScale: number; dh: Ptr | null; dw: Ptr | null; logitsOut: Ptr | null;
  }): void;

  /**
   * The same head scored per row, for evaluation: logits = h[N, d] · W[V, d]^T in row chunks (full logits are never
   * needed at once); for each row, logprobOut[i] (f64) = logit[target] - logsumexp(logits) and argmaxOut[i] (i32) =
   * the first index of the row's maximum (torch.argmax). Rows with target -100 get 0 and -1.
   */
  headLogprob(args: { logprobOut: Ptr; argmaxOut: Ptr; h: Ptr; w: Ptr; targets: Ptr; n: number; d: number; vocab: number }): void;

  // ---- optimizer ----
  /** lossOut-style reduction: out[0] (f64) += sum of x^2 over n elements. */
  sumSquares(out: Ptr, x: Ptr, n: number): void;
  /**
   * One AdamW step (PyTorch semantics: decoupled decay p -= lr*wd*p, bias-corrected moments) over n elements.
   * paramBf16 (a bf16 buffer, optional) receives the new weights rounded to bf16 in the same pass.
   */
  adamw(param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, hyper: AdamWHyper, paramBf16?: Ptr | null): void;
  /**
   * The same step over several ranges of n-element spans in one pass (multi-tensor): each range
   * [offset, offset + size) of param/grad/m/v (and paramBf16), ascending and disjoint, with hyper.weightDecay where
   * `decay` holds and none elsewhere. Bit-identical to one `adamw` call per range.
   */
  adamwRanges(
    param: Ptr, grad: Ptr, m: Ptr, v: Ptr, n: number, ranges: readonly AdamWRange[], hyper: AdamWHyper, paramBf16?: Ptr | null,
  ): void;
}
