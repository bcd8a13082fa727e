/**
 * One transformer block: norm -> attention -> residual -> norm -> MLP -> residual, with the norms before each half
 * (pre-norm, GPT-2/LLaMA/Qwen3) or after each residual sum (post-norm, the original transformer). The wiring is
 * written once and serves training (`forward`) and KV-cache decoding (`decode`), which differ only in the attention
 * call; `backward` retraces it in reverse.
 */
import type { Backend, Ptr } from '../engine/backend.js';
import type { ModelConfig, NormPosition } from '../config/model.js';
import type { RecomputeMode } from '../config/train.js';
import type { LayerOffsets } from './layout.js';
import { Linear, type ParamBuffers } from './linear.js';
import { Norm, type NormStats } from './norm.js';
import { Mlp, type MlpSaved, type MlpScratch } from './mlp.js';
import {
  Attention, NO_DOCUMENTS, type AttentionDecodeScratch, type AttentionSaved, type AttentionScratch, type KvCache,
  type PackedDocuments, type RopeTables,
} from './attention.js';

/** Pre-norm: mid = input + attn(norm1(input)); out = mid + mlp(norm2(mid)). */
export interface PreNormStream {
  position: 'pre';
  /** [N, D] the residual stream entering the block; norm1's input. */
  input: Ptr;
  norm1Stats: NormStats;
  /** [N, D] norm1(input), the attention's input. */
  attnIn: Ptr;
  /** [N, D] input + attn(attnIn): the residual stream between the two halves; norm2's input. */
  mid: Ptr;
  norm2Stats: NormStats;
  /** [N, D] norm2(mid), the MLP's input. */
  mlpIn: Ptr;
  mlp: MlpSaved;
}

/** Post-norm: mid = norm1(input + attn(input)); out = norm2(mid + mlp(mid)). */
export interface PostNormStream {
  position: 'post';
  /** [N, D] the residual stream entering the block; the attention's input. */
  input: Ptr;
  /** [N, D] input + attn(input), norm1's input. */
  attnSum: Ptr;
  norm1Stats: NormStats;
  /** [N, D] norm1(attnSum): the residual stream between the two halves; the MLP's input. */
  mid: Ptr;
  /** [N, D] mid + mlp(mid), norm2's input. */
  mlpSum: Ptr;
  norm2Stats: NormStats;
  mlp: MlpSaved;
}

/** The block's residual-stream tensors, norm statistics and MLP saves (everything but the attention's). */
export type BlockStream = PreNormStream | PostNormStream;

/** Everything one block's forward saves for its backward. */
export type BlockSaved = BlockStream & { attn: AttentionSaved };

/** A norm that reads a block's output, fused with the block's last residual add (see BlockFusion). */
export interface NextNorm {
  norm: Norm;
  /** [N, D] where norm(block output) goes: the next block's attnIn, or the final norm's output. */
  out: Ptr;
  stats: NormStats;
}

/**
 * Fusions across blocks (pre-norm only): the residual add that ends block l and the norm1 that starts block l + 1
 * run as one op (Norm.forwardAdd), so block l writes block l + 1's attnIn and norm1 statistics.
 */
export interface BlockFusion {
  /** The previous block already wrote this block's attnIn and norm1 statistics: skip norm1. */
  inputNormed: boolean;
  /** Fuse the block's last residual add with this norm of its output. */
  next: NextNorm | null;
}

export const NO_FUSION: BlockFusion = { inputNormed: false, next: null };

/** Backward scratch, shared by all blocks. */
export interface BlockScratch {
  /** [N, D] a second residual-stream gradient. */
  dTmp: Ptr;
  attn: AttentionScratch;
  mlp: MlpScratch;
}

export class Block {
  readonly position: NormPosition;
  readonly norm1: Norm;
  readonly attn: Attention;
  readonly norm2: Norm;
  readonly mlp: Mlp;
  private readonly width: number;

  /** The block whose parameters sit at `L` in the flat buffers. */
  constructor(private readonly be: Backend, cfg: ModelConfig, L: LayerOffsets, pb: ParamBuffers) {
    const D = cfg.hidden_size;
    const qDim = cfg.n_head * cfg.head_dim;
    const kvDim = cfg.n_kv_head * cfg.head_dim;
    const upOut = cfg.ffn === 'swiglu' ? 2 * cfg.ffn_hidden : cfg.ffn_hidden;
    this.position = cfg.norm_position;
    this.width = D;
    this.norm1 = Norm.at(be, cfg.norm, pb, L.norm1W, L.norm1B, D, cfg.norm_eps);
    const qkNorm = L.qNormW !== null && L.kNormW !== null
      ? {
        q: { buf: pb.params, offset: L.qNormW }, k: { buf: pb.params, offset: L.kNormW },
        gq: { buf: pb.grads, offset: L.qNormW }, gk: { buf: pb.grads, offset: L.kNormW }, eps: cfg.norm_eps,
      }
      : null;
    this.attn = new Attention(
      be, Linear.at(be, pb, L.qkvW, L.qkvB, D, qDim + 2 * kvDim), Linear.at(be, pb, L.oW, L.oB, qDim, D), qkNorm,
      cfg.n_head, cfg.n_kv_head, cfg.head_dim,
    );
    this.norm2 = Norm.at(be, cfg.norm, pb, L.norm2W, L.norm2B, D, cfg.norm_eps);
    this.mlp = new Mlp(
      be, cfg.ffn, cfg.activation, Linear.at(be, pb, L.upW, L.upB, D, upOut),
      Linear.at(be, pb, L.downW, L.downB, cfg.ffn_hidden, D), cfg.ffn_hidden,
    );
  }

  /** out [batch*seq, D] (=) block(s.input), saving into s what backward needs; `fusion` as BlockFusion says. */
  forward(
    out: Ptr, s: BlockSaved, rope: RopeTables | null, batch: number, seq: number, packed: PackedDocuments = NO_DOCUMENTS,
    fusion: BlockFusion = NO_FUSION,
  ): void {
    this.wire(out, s, batch * seq, (y, x) => this.attn.forward(y, x, s.attn, rope, batch, seq, packed), fusion);
  }

  /**
   * out [n, D] (=) block(s.input) for the n new positions start..start+n-1, attending over the cache (which it
   * extends). `out` may be `s.input`: the input is last read before the output is first written.
   */
  decode(
    out: Ptr, s: BlockStream, attnScratch: AttentionDecodeScratch, cache: KvCache, rope: RopeTables | null,
    start: number, n: number,
  ): void {
    this.wire(out, s, n, (y, x) => this.attn.decode(y, x, cache, attnScratch, rope, start, n), NO_FUSION);
  }

  // Every residual add is fused with the norm that reads its sum (Norm.forwardAdd): the values are those of the
  // add followed by the norm, in one pass.
  private wire(out: Ptr, s: BlockStream, rows: number, attend: (y: Ptr, x: Ptr) => void, fusion: BlockFusion): void {
    this.check(s);
    if (s.position === 'pre') {
      if (!fusion.inputNormed) this.norm1.forward(s.attnIn, s.norm1Stats, s.input, rows);
      attend(s.mid, s.attnIn);
      this.norm2.forwardAdd(s.mid, s.mlpIn, s.norm2Stats, s.mid, s.input, rows);
      this.mlp.forward(out, s.mlpIn, s.mlp, rows);
      const next = fusion.next;
      if (next) next.norm.forwardAdd(out, next.out, next.stats, out, s.mid, rows);
      else this.be.add(out, out, s.mid, rows * this.width);
    } else {
      if (fusion.inputNormed || fusion.next) throw new Error('internal: post-norm blocks have no norm to share across blocks');
      attend(s.attnSum, s.input);
      this.norm1.forwardAdd(s.attnSum, s.mid, s.norm1Stats, s.attnSum, s.input, rows);
      this.mlp.forward(s.mlpSum, s.mid, s.mlp, rows);
      this.norm2.forwardAdd(s.mlpSum, out, s.norm2Stats, s.mlpSum, s.mid, rows);
    }
  }

  /**
   * Rewrites what `mode` did not keep per layer (activations.ts, keptPerLayer) from what it did, before `backward`:
   * 'mlp' re-runs the MLP's up-projection and activation from its saved input; 'block' re-runs the whole forward
   * from s.input (same RoPE tables and packed documents, so positions and document masking are those of the
   * forward), writing the block's output to `spare` [N, D], which nothing reads. The same ops on the same inputs
   * give the same bits, so the gradients equal those without recomputation exactly.
   */
  recompute(
    mode: RecomputeMode, spare: Ptr, s: BlockSaved, rope: RopeTables | null, batch: number, seq: number,
    packed: PackedDocuments = NO_DOCUMENTS,
  ): void {
    this.check(s);
    if (mode === 'mlp') this.mlp.recompute(s.position === 'pre' ? s.mlpIn : s.mid, s.mlp, batch * seq);
    else if (mode === 'block') this.forward(spare, s, rope, batch, seq, packed);
  }

  /**
   * dStream holds dL/d(out) on entry and dL/d(s.input) on return; parameter gradients accumulate. g.dTmp is
   * overwritten.
   */
  backward(
    dStream: Ptr, s: BlockSaved, g: BlockScratch, rope: RopeTables | null, batch: number, seq: number,
    packed: PackedDocuments = NO_DOCUMENTS,
  ): void {
    this.check(s);
    const rows = batch * seq;
    const { dTmp } = g;
    if (s.position === 'pre') {
      this.mlp.backward(dTmp, dStream, s.mlpIn, s.mlp, g.mlp, rows, false); // dTmp = dL/d mlpIn
      this.norm2.backward(dStream, dTmp, s.mid, s.norm2Stats, rows, true); // dStream = dL/d mid (residual + norm2)
      this.attn.backward(dTmp, dStream, s.attnIn, s.attn, g.attn, rope, batch, seq, false, packed); // dTmp = dL/d attnIn
      this.norm1.backward(dStream, dTmp, s.input, s.norm1Stats, rows, true); // dStream = dL/d input
    } else {
      this.norm2.backward(dTmp, dStream, s.mlpSum, s.norm2Stats, rows, false); // dTmp = dL/d mlpSum
      this.mlp.backward(dTmp, dTmp, s.mid, s.mlp, g.mlp, rows, true); // dTmp = dL/d mid (residual + mlp)
      this.norm1.backward(dStream, dTmp, s.attnSum, s.norm1Stats, rows, false); // dStream = dL/d attnSum
      this.attn.backward(dStream, dStream, s.input, s.attn, g.attn, rope, batch, seq, true, packed); // dStream = dL/d input
    }
  }

  private check(s: BlockStream): void {
    if (s.position !== this.position) throw new Error(`internal: a ${this.position}-norm block was given ${s.position}-norm activations`);
  }
}
