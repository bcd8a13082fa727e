/**
 * The decoder-only transformer: embeddings, n_layer blocks (pre- or post-norm), final norm, head fused with the
 * cross-entropy. Parameters and gradients live in two flat device buffers of the same layout (layout.ts);
 * activations in an arena sized per (batch, seq) (activations.ts).
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
import type { ModelConfig } from '../config/model.js';
import { buildLayout, type Layout, type ParamSpec } from './layout.js';
import { allocateActivations, freeActivations, type Activations, type LayerActivations } from './activations.js';
import { Linear } from './linear.js';
import { Norm } from './norm.js';
import { Mlp } from './mlp.js';
import { Attention, type RopeTables } from './attention.js';
import { ropeTables } from './rope.js';
import { shift } from './ptr.js';

export const IGNORE_INDEX = -100;

export interface Block {
  norm1: Norm;
  attn: Attention;
  norm2: Norm;
  mlp: Mlp;
}

export interface ForwardOptions {
  batch: number;
  seq: number;
  /** Compute gradients (accumulated into the gradient buffer). */
  backward: boolean;
  /** Multiplies the loss sum in the gradient: 1 / (counted targets of the whole optimizer step) for a mean. */
  gradScale?: number;
  /** Receives the logits [N, V] when given. */
  logits?: Float32Array;
  /**
   * Document masking: segment starts over the flattened batch*seq tokens, then batch*seq (cumulative sequence
   * lengths, every row start included); a token attends only within its segment. Absent: causal per row.
   */
  segments?: Int32Array;
  /** Position of each token (RoPE angle or learned-position row), e.g. restarting per document. Absent: t % seq. */
  positionIds?: Int32Array;
}

export class Decoder {
  readonly layout: Layout;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  readonly blocks: Block[];
  readonly finalNorm: Norm | null;
  private acts: Activations | null = null;
  private config: ModelConfig;

  constructor(readonly be: Backend, cfg: ModelConfig) {
    this.config = cfg;
    this.layout = buildLayout(cfg);
    this.params = be.alloc('f32', this.layout.total);
    this.grads = be.alloc('f32', this.layout.total);
    const P = (o: number): Ptr => ({ buf: this.params, offset: o });
    const G = (o: number): Ptr => ({ buf: this.grads, offset: o });
    const Pn = (o: number | null): Ptr | null => (o === null ? null : P(o));
    const Gn = (o: number | null): Ptr | null => (o === null ? null : G(o));
    const D = cfg.hidden_size;
    const qDim = cfg.n_head * cfg.head_dim;
    const kvDim = cfg.n_kv_head * cfg.head_dim;
    const upOut = cfg.ffn === 'swiglu' ? 2 * cfg.ffn_hidden : cfg.ffn_hidden;
    const norm = (w: number, b: number | null) => new Norm(be, cfg.norm, P(w), G(w), Pn(b), Gn(b), D, cfg.norm_eps);
    this.blocks = this.layout.layers.map((L) => ({
      norm1: norm(L.norm1W, L.norm1B),
      attn: new Attention(
        be,
        new Linear(be, P(L.qkvW), G(L.qkvW), Pn(L.qkvB), Gn(L.qkvB), D, qDim + 2 * kvDim),
        new Linear(be, P(L.oW), G(L.oW), Pn(L.oB), Gn(L.oB), qDim, D),
        L.qNormW !== null && L.kNormW !== null
          ? { q: P(L.qNormW), k: P(L.kNormW), gq: G(L.qNormW), gk: G(L.kNormW), eps: cfg.norm_eps }
          : null,
        cfg.n_head, cfg.n_kv_head, cfg.head_dim,
      ),
      norm2: norm(L.norm2W, L.norm2B),
      mlp: new Mlp(
        be, cfg.ffn, cfg.activation,
        new Linear(be, P(L.upW), G(L.upW), Pn(L.upB), Gn(L.upB), D, upOut),
        new Linear(be, P(L.downW), G(L.downW), Pn(L.downB), Gn(L.downB), cfg.ffn_hidden, D),
        cfg.ffn_hidden,
      ),
    }));
    this.finalNorm = this.layout.finalNormW === null ? null : norm(this.layout.finalNormW, this.layout.finalNormB);
  }

  get cfg(): ModelConfig {
    return this.config;
  }

  /**
   * Changes the RoPE base (a training stage that extends the context raises it): no tensor changes shape; the
   * cos/sin tables are recomputed, and checkpoints written afterwards carry the new value.
   */
  setRopeTheta(theta: number): void {
    if (!(theta > 0 && Number.isFinite(theta))) throw new Error(`rope_theta must be a positive number, got ${theta}`);
    this.config = { ...this.config, rope_theta: theta };
    const a = this.acts;
    if (a?.cos && a.sin) {
      const t = ropeTables(theta, this.config.head_dim, a.seq);
      this.be.upload(a.cos, t.cos);
      this.be.upload(a.sin, t.sin);
    }
  }

  /** Releases every device buffer this model holds. */
  dispose(): void {
    this.releaseActivations();
    this.be.free(this.params);
    this.be.free(this.grads);
  }

  releaseActivations(): void {
    if (this.acts) freeActivations(this.be, this.acts);
    this.acts = null;
  }

  get activationBytes(): number {
    return this.acts?.bytes ?? 0;
  }

  /** The activation arena for this shape, reallocated only when the shape changes. */
  private activations(batch: number, seq: number): Activations {
    if (seq > this.cfg.context_length)
      throw new Error(`sequence length ${seq} exceeds context_length ${this.cfg.context_length} of this model`);
    if (this.acts && this.acts.batch === batch && this.acts.seq === seq) return this.acts;
    this.releaseActivations();
    const a = allocateActivations(this.be, this.cfg, batch, seq);
    const N = batch * seq;
    const pos = new Int32Array(N);
    for (let i = 0; i < N; i++) pos[i] = i % seq;
    this.be.upload(a.positions, pos);
    if (a.cos && a.sin) {
      const t = ropeTables(this.cfg.rope_theta, this.cfg.head_dim, seq);
      this.be.upload(a.cos, t.cos);
      this.be.upload(a.sin, t.sin);
    }
    this.acts = a;
    return a;
  }

  zeroGrads(): void {
    this.be.fill({ buf: this.grads, offset: 0 }, this.layout.total, 0);
  }

  /**
   * Runs the model on ids [batch*seq] with targets [batch*seq] (already aligned: targets[n] is the token that
   * position n predicts; -100 = ignored). Adds the summed loss of counted targets to the loss accumulator,
   * and with `backward` also adds `gradScale` x its gradient to the gradient buffer.
   */
  run(ids: Int32Array, targets: Int32Array, o: ForwardOptions): void {
    const { batch, seq } = o;
    const N = batch * seq;
    if (ids.length !== N || targets.length !== N)
      throw new Error(`expected ${N} ids and targets for batch ${batch} x seq ${seq}, got ${ids.length} and ${targets.length}`);
    const V = this.cfg.vocab_size;
    for (let i = 0; i < N; i++) {
      const id = ids[i]!;
      if (id < 0 || id >= V) throw new Error(`token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
      const t = targets[i]!;
      if (t !== IGNORE_INDEX && (t < 0 || t >= V)) throw new Error(`target ${t} at position ${i} is outside the vocabulary [0, ${V}) and is not -100`);
    }
    if (o.segments || o.positionIds) throw new Error('internal: document masking and positions are not wired yet');
    const a = this.activations(batch, seq);
    this.be.upload(a.ids, ids);
    this.be.upload(a.targets, targets);
    this.forward(a, o);
    if (o.backward) this.backward(a);
  }

  /** Adds to the loss accumulator; read it with `takeLoss`. */
  resetLoss(): void {
    if (this.acts) this.be.fill({ buf: this.acts.scalars, offset: 0 }, 1, 0);
  }

  /** The summed loss since the last reset (synchronises), then resets it. */
  takeLoss(): number {
    if (!this.acts) return 0;
    const out = new Float64Array(1);
    this.be.download({ buf: this.acts.scalars, offset: 0 }, out);
    this.be.fill({ buf: this.acts.scalars, offset: 0 }, 1, 0);
    return out[0]!;
  }

  /** Global L2 norm of the gradient buffer (synchronises). */
  gradNorm(): number {
    const scalars = this.acts?.scalars ?? this.be.alloc('f64', 2);
    const slot = { buf: scalars, offset: 1 };
    this.be.fill(slot, 1, 0);
    this.be.sumSquares(slot, { buf: this.grads, offset: 0 }, this.layout.total);
    const out = new Float64Array(1);
    this.be.download(slot, out);
    if (!this.acts) this.be.free(scalars);
    return Math.sqrt(out[0]!);
  }

  private rope(a: Activations): RopeTables | null {
    return a.cos && a.sin ? { cos: a.cos, sin: a.sin } : null;
  }

  private forward(a: Activations, o: ForwardOptions): void {
    const { be, cfg, layout } = this;
    const { batch, seq } = o;
    const N = batch * seq;
    const D = cfg.hidden_size;
    const P = (off: number): Ptr => ({ buf: this.params, offset: off });
    const x0 = a.layers[0]?.x ?? a.xOut;
    be.embeddingForward(x0, a.ids, P(layout.embed), N, D, false);
    if (layout.positions !== null) be.embeddingForward(x0, a.positions, P(layout.positions), N, D, true);
    const rope = this.rope(a);
    const pre = cfg.norm_position === 'pre';
    this.blocks.forEach((blk, l) => {
      const L = a.layers[l]!;
      const out = a.layers[l + 1]?.x ?? a.xOut;
      if (pre) {
        blk.norm1.forward(L.a, L.stats1, L.x, N);
        blk.attn.forward(L.r, L.a, L.attn, rope, batch, seq);
        be.add(L.r, L.r, L.x, N * D);
        blk.norm2.forward(L.b, L.stats2, L.r, N);
        blk.mlp.forward(out, L.b, L.mlp, N);
        be.add(out, out, L.r, N * D);
      } else {
        blk.attn.forward(L.a, L.x, L.attn, rope, batch, seq);
        be.add(L.a, L.a, L.x, N * D);
        blk.norm1.forward(L.r, L.stats1, L.a, N);
        blk.mlp.forward(L.b, L.r, L.mlp, N);
        be.add(L.b, L.b, L.r, N * D);
        blk.norm2.forward(out, L.stats2, L.b, N);
      }
    });
    let h = a.xOut;
    if (this.finalNorm) {
      this.finalNorm.forward(a.hFinal, a.statsFinal, a.xOut, N);
      h = a.hFinal;
    }
    const logitsOut = o.logits ? be.alloc('f32', N * cfg.vocab_size) : null;
    be.headCrossEntropy({
      lossOut: { buf: a.scalars, offset: 0 },
      h,
      w: P(layout.head),
      targets: a.targets,
      n: N,
      d: D,
      vocab: cfg.vocab_size,
      gradScale: o.gradScale ?? 1,
      dh: o.backward ? a.dTmp : null,
      dw: o.backward ? { buf: this.grads, offset: layout.head } : null,
      logitsOut: logitsOut ? { buf: logitsOut, offset: 0 } : null,
    });
    if (logitsOut && o.logits) {
      be.download({ buf: logitsOut, offset: 0 }, o.logits);
      be.free(logitsOut);
    }
  }

  private backward(a: Activations): void {
    const { be, cfg, layout } = this;
    const { batch, seq } = a;
    const N = batch * seq;
    const D = cfg.hidden_size;
    const G = (off: number): Ptr => ({ buf: this.grads, offset: off });
    // dTmp holds dL/dh from the fused head; turn it into dL/d(last layer output) in dx.
    if (this.finalNorm) this.finalNorm.backward(a.dx, a.dTmp, a.xOut, a.statsFinal, N, false);
    else be.copy(a.dx, a.dTmp, N * D);
    const rope = this.rope(a);
    const pre = cfg.norm_position === 'pre';
    for (let l = this.blocks.length - 1; l >= 0; l--) {
      const blk = this.blocks[l]!;
      const L: LayerActivations = a.layers[l]!;
      if (pre) {
        // out = r + mlp(norm2(r)); r = x + attn(norm1(x)); dx holds dL/dout.
        blk.mlp.backward(a.dTmp, a.dx, L.b, L.mlp, a.mlpScratch, N, false);
        blk.norm2.backward(a.dx, a.dTmp, L.r, L.stats2, N, true);
        blk.attn.backward(a.dTmp, a.dx, L.a, L.attn, a.attnScratch, rope, batch, seq, false);
        blk.norm1.backward(a.dx, a.dTmp, L.x, L.stats1, N, true);
      } else {
        // out = norm2(b), b = r + mlp(r), r = norm1(a), a = x + attn(x).
        blk.norm2.backward(a.dTmp, a.dx, L.b, L.stats2, N, false);
        blk.mlp.backward(a.dTmp, a.dTmp, L.r, L.mlp, a.mlpScratch, N, true);
        blk.norm1.backward(a.dx, a.dTmp, L.a, L.stats1, N, false);
        blk.attn.backward(a.dx, a.dx, L.x, L.attn, a.attnScratch, rope, batch, seq, true);
      }
    }
    be.embeddingBackward(G(layout.embed), a.ids, a.dx, N, D);
    if (layout.positions !== null) be.embeddingBackward(G(layout.positions), a.positions, a.dx, N, D);
  }

  // ---- weights by name ----

  /** Writes one named parameter from data in internal layout. */
  setParam(spec: ParamSpec, data: Float32Array): void {
    if (data.length !== spec.size) throw new Error(`${spec.name}: expected ${spec.size} values, got ${data.length}`);
    this.be.upload({ buf: this.params, offset: spec.offset }, data);
  }

  getParam(spec: ParamSpec, from: 'params' | 'grads' = 'params'): Float32Array {
    const out = new Float32Array(spec.size);
    this.be.download({ buf: from === 'params' ? this.params : this.grads, offset: spec.offset }, out);
    return out;
  }

  /** Views of the whole flat buffers (for the optimizer, checkpoints, collectives). */
  paramPtr(offset = 0): Ptr {
    return shift({ buf: this.params, offset: 0 }, offset);
  }

  gradPtr(offset = 0): Ptr {
    return shift({ buf: this.grads, offset: 0 }, offset);
  }
}
