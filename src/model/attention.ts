/**
 * Causal self-attention with grouped KV heads: one fused q|k|v projection, optional per-head QK-RMSNorm and RoPE
 * (one fused prologue op), attention that keeps only the row log-sum-exp for backward, and the output projection.
 * `decode` is the same attention for new positions over a KV cache of the earlier ones.
 */
import type { AttentionShape, Backend, DocumentBounds, Ptr, QkvStrides } from '../engine/backend.js';
import { Linear } from './linear.js';
import { shift } from './ptr.js';

export interface AttentionSaved {
  /** [N, Q + 2KV] projection output (q and k before norm/RoPE). */
  qkv: Ptr;
  /** [N, Q + KV] q and k after QK-norm and RoPE; null when the model has neither. */
  qk: Ptr | null;
  /** [N, H + K] QK-norm statistics (present whenever qk is). */
  qkRstd: Ptr | null;
  /** [N, Q] attention output, input of o_proj. */
  att: Ptr;
  /** [B, H, T] log-sum-exp of the scaled scores. */
  lse: Ptr;
}

export interface AttentionScratch {
  dQkv: Ptr;
  dQk: Ptr | null;
  dAtt: Ptr;
}

/**
 * One layer's KV cache for positions 0..capacity-1: the rows the forward pass would have saved, kept for every
 * position fed so far. Queries are cached along with keys because both come out of the same fused ops.
 */
export interface KvCache {
  /** [capacity, Q + 2KV] projection output. */
  qkv: Ptr;
  /** [capacity, Q + KV] q and k after QK-norm and RoPE; null when the model has neither. */
  qk: Ptr | null;
}

/** Working rows of one `decode` call (n new positions). */
export interface AttentionDecodeScratch {
  /** [n, Q] attention output, input of o_proj. */
  att: Ptr;
  /** [n, H + K] QK-norm statistics; null when the model has no prologue. */
  qkRstd: Ptr | null;
}

export interface QkNorm {
  q: Ptr;
  k: Ptr;
  gq: Ptr;
  gk: Ptr;
  eps: number;
}

/**
 * Several documents packed into each row: RoPE positions per token (restarting per document) and/or document
 * masking bounds. Absent parts (null) mean positions t % seq and causal attention over the whole row.
 */
export interface PackedDocuments {
  positions: Ptr | null;
  docs: DocumentBounds | null;
}
export const NO_DOCUMENTS: PackedDocuments = { positions: null, docs: null };

/** cos and sin [positions, headDim / 2], row t for position t. */
export interface RopeTables {
  cos: Ptr;
  sin: Ptr;
}

export class Attention {
  readonly qDim: number;
  readonly kvDim: number;
  readonly width: number;
  /** Softmax scale 1 / sqrt(head_dim). */
  readonly scale: number;

  constructor(
    private readonly be: Backend,
    readonly qkv: Linear,
    readonly o: Linear,
    readonly qkNorm: QkNorm | null,
    readonly heads: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {
    this.qDim = heads * headDim;
    this.kvDim = kvHeads * headDim;
    this.width = this.qDim + 2 * this.kvDim;
    this.scale = 1 / Math.sqrt(headDim);
  }

  /** Whether q and k go through the fused norm/RoPE prologue (and so need the `qk` buffers). */
  static needsPrologue(qkNorm: boolean, rope: boolean): boolean {
    return qkNorm || rope;
  }

  private views(qkv: Ptr, qk: Ptr | null): { q: Ptr; k: Ptr; v: Ptr; strides: QkvStrides } {
    const v = shift(qkv, this.qDim + this.kvDim);
    if (qk) {
      const s = this.qDim + this.kvDim;
      return { q: qk, k: shift(qk, this.qDim), v, strides: { q: s, k: s, v: this.width } };
    }
    const w = this.width;
    return { q: qkv, k: shift(qkv, this.qDim), v, strides: { q: w, k: w, v: w } };
  }

  private shape(batch: number, seq: number): AttentionShape {
    return { batch, seq, heads: this.heads, kvHeads: this.kvHeads, headDim: this.headDim, scale: this.scale };
  }

  forward(y: Ptr, x: Ptr, s: AttentionSaved, rope: RopeTables | null, batch: number, seq: number, packed: PackedDocuments = NO_DOCUMENTS): void {
    const n = batch * seq;
    this.qkv.forward(s.qkv, x, n);
    if (s.qk) {
      const nq = this.qkNorm;
      this.be.qkPrepForward(
        s.qk, s.qkRstd!, s.qkv, this.width, nq?.q ?? null, nq?.k ?? null, rope?.cos ?? null, rope?.sin ?? null,
        n, seq, this.heads, this.kvHeads, this.headDim, nq?.eps ?? 0, rope ? packed.positions : null,
      );
    }
    const { q, k, v, strides } = this.views(s.qkv, s.qk);
    this.be.attentionForward(s.att, s.lse, q, k, v, strides, this.shape(batch, seq), packed.docs);
    this.o.forward(y, s.att, n);
  }

  /**
   * y [n, D] (=) attention of the n new positions start..start+n-1 (input rows x) over themselves and the cached
   * positions before them; writes their q|k|v (and prologue) rows into the cache. `rope` starts at position 0.
   */
  decode(y: Ptr, x: Ptr, cache: KvCache, s: AttentionDecodeScratch, rope: RopeTables | null, start: number, n: number): void {
    const rows = shift(cache.qkv, start * this.width);
    this.qkv.forward(rows, x, n);
    if (cache.qk) {
      const nq = this.qkNorm;
      const half = this.headDim / 2;
      // seq = n: row i of this call takes table row i of the shifted tables, i.e. position start + i.
      this.be.qkPrepForward(
        shift(cache.qk, start * (this.qDim + this.kvDim)), s.qkRstd!, rows, this.width, nq?.q ?? null, nq?.k ?? null,
        rope ? shift(rope.cos, start * half) : null, rope ? shift(rope.sin, start * half) : null,
        n, n, this.heads, this.kvHeads, this.headDim, nq?.eps ?? 0,
      );
    }
    const { q, k, v, strides } = this.views(cache.qkv, cache.qk);
    this.be.attentionDecode(s.att, shift(q, start * strides.q), k, v, strides, n, start, this.heads, this.kvHeads, this.headDim, this.scale);
    this.o.forward(y, s.att, n);
  }

  backward(
    dx: Ptr, dy: Ptr, x: Ptr, s: AttentionSaved, g: AttentionScratch, rope: RopeTables | null,
    batch: number, seq: number, accumulateDx: boolean, packed: PackedDocuments = NO_DOCUMENTS,
  ): void {
    const n = batch * seq;
    this.o.backward(g.dAtt, dy, s.att, n);
    const { q, k, v, strides } = this.views(s.qkv, s.qk);
    const d = this.views(g.dQkv, g.dQk);
    this.be.attentionBackward(d.q, d.k, d.v, g.dAtt, q, k, v, s.att, s.lse, strides, this.shape(batch, seq), packed.docs);
    if (s.qk && g.dQk) {
      const nq = this.qkNorm;
      this.be.qkPrepBackward(
        g.dQkv, this.width, nq?.gq ?? null, nq?.gk ?? null, g.dQk, s.qkv, s.qkRstd!, nq?.q ?? null, nq?.k ?? null,
        rope?.cos ?? null, rope?.sin ?? null, n, seq, this.heads, this.kvHeads, this.headDim, rope ? packed.positions : null,
      );
    }
    this.qkv.backward(dx, g.dQkv, x, n, accumulateDx);
    // Without RoPE or QK-norm, adding a constant vector to every key of a head adds the same amount q.b to every
    // score of a query row, which softmax ignores: the key bias has exactly zero gradient. Computed, it would be
    // float32 rounding noise (~1e-9) that AdamW's normalisation turns into full-size random steps, so store the
    // exact value.
    if (this.qkv.gb && !s.qk) this.be.fill(shift(this.qkv.gb, this.qDim), this.kvDim, 0);
  }
}
