/**
 * Causal self-attention with grouped KV heads: one fused q|k|v projection, optional per-head QK-RMSNorm and RoPE
 * (one fused prologue op), attention that keeps only the row log-sum-exp for backward, and the output projection.
 */
import type { AttentionShape, Backend, Ptr, QkvStrides } from '../engine/backend.js';
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

export interface QkNorm {
  q: Ptr;
  k: Ptr;
  gq: Ptr;
  gk: Ptr;
  eps: number;
}

export interface RopeTables {
  cos: Ptr;
  sin: Ptr;
}

export class Attention {
  readonly qDim: number;
  readonly kvDim: number;
  readonly width: number;

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
    return { batch, seq, heads: this.heads, kvHeads: this.kvHeads, headDim: this.headDim, scale: 1 / Math.sqrt(this.headDim) };
  }

  forward(y: Ptr, x: Ptr, s: AttentionSaved, rope: RopeTables | null, batch: number, seq: number): void {
    const n = batch * seq;
    this.qkv.forward(s.qkv, x, n);
    if (s.qk) {
      const nq = this.qkNorm;
      this.be.qkPrepForward(
        s.qk, s.qkRstd!, s.qkv, this.width, nq?.q ?? null, nq?.k ?? null, rope?.cos ?? null, rope?.sin ?? null,
        n, seq, this.heads, this.kvHeads, this.headDim, nq?.eps ?? 0,
      );
    }
    const { q, k, v, strides } = this.views(s.qkv, s.qk);
    this.be.attentionForward(s.att, s.lse, q, k, v, strides, this.shape(batch, seq));
    this.o.forward(y, s.att, n);
  }

  backward(
    dx: Ptr, dy: Ptr, x: Ptr, s: AttentionSaved, g: AttentionScratch, rope: RopeTables | null,
    batch: number, seq: number, accumulateDx: boolean,
  ): void {
    const n = batch * seq;
    this.o.backward(g.dAtt, dy, s.att, n);
    const { q, k, v, strides } = this.views(s.qkv, s.qk);
    const d = this.views(g.dQkv, g.dQk);
    this.be.attentionBackward(d.q, d.k, d.v, g.dAtt, q, k, v, s.att, s.lse, strides, this.shape(batch, seq));
    if (s.qk && g.dQk) {
      const nq = this.qkNorm;
      this.be.qkPrepBackward(
        g.dQkv, this.width, nq?.gq ?? null, nq?.gk ?? null, g.dQk, s.qkv, s.qkRstd!, nq?.q ?? null, nq?.k ?? null,
        rope?.cos ?? null, rope?.sin ?? null, n, seq, this.heads, this.kvHeads, this.headDim,
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
