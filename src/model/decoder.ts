/**
 * The decoder-only transformer: embeddings -> n_layer blocks (block.ts) -> final norm -> head fused with the
 * cross-entropy. Parameters and gradients live in two flat device buffers of the same layout (layout.ts);
 * activations in an arena sized per (batch, seq) (activations.ts).
 */
import type { Backend, DeviceBuffer, DocumentBounds, Ptr } from '../engine/backend.js';
import type { ModelConfig } from '../config/model.js';
import type { RecomputeMode } from '../config/train.js';
import { buildLayout, type Layout, type ParamSpec } from './layout.js';
import { allocateActivations, freeActivations, type Activations } from './activations.js';
import { Norm } from './norm.js';
import { Block, NO_FUSION, type BlockFusion } from './block.js';
import type { PackedDocuments, RopeTables } from './attention.js';
import { ropeTables } from './rope.js';
import { shift } from './ptr.js';

export const IGNORE_INDEX = -100;

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
  /** Instead of the loss: the head scored at the positions whose target is not -100 (evaluation; see scoreTargets). */
  scores?: TargetScores & { targets: Int32Array };
}

/** The head scored per position for evaluation. */
export interface TargetScores {
  /** log P(target | the tokens up to this position); 0 where the target is -100. */
  logprob: Float64Array;
  /** The most likely next token (first on ties); -1 where the target is -100. */
  argmax: Int32Array;
}

export class Decoder {
  readonly layout: Layout;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  /**
   * bf16 copy of the parameters (same layout) when the backend stores activations in bf16: the Linear layers'
   * GEMMs read it, AdamW writes it in its pass, and every other write to the parameters goes through
   * writeParams(), which refreshes it. Null on f32 backends.
   */
  readonly paramsBf16: DeviceBuffer | null;
  readonly blocks: Block[];
  readonly finalNorm: Norm | null;
  private acts: Activations | null = null;
  private config: ModelConfig;
  /** Whether the arena's positions hold a caller's positionIds rather than t % seq. */
  private customPositions = false;
  private recomputeMode: RecomputeMode = 'none';

  constructor(readonly be: Backend, cfg: ModelConfig) {
    this.config = cfg;
    this.layout = buildLayout(cfg);
    this.params = be.alloc('f32', this.layout.total);
    this.grads = be.alloc('f32', this.layout.total);
    this.paramsBf16 = be.activationDType === 'bf16' ? be.alloc('bf16', this.layout.total) : null;
    const pb = { params: this.params, grads: this.grads, paramsBf16: this.paramsBf16 };
    this.blocks = this.layout.layers.map((L) => new Block(be, cfg, L, pb));
    const { finalNormW, finalNormB } = this.layout;
    this.finalNorm = finalNormW === null ? null : Norm.at(be, cfg.norm, pb, finalNormW, finalNormB, cfg.hidden_size, cfg.norm_eps);
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
    if (this.paramsBf16) this.be.free(this.paramsBf16);
  }

  releaseActivations(): void {
    if (this.acts) freeActivations(this.be, this.acts);
    this.acts = null;
  }

  /** Activation recomputation (activations.ts): what the blocks keep for the backward and what it re-runs. */
  get recompute(): RecomputeMode {
    return this.recomputeMode;
  }

  /** Changes the recompute mode; the arena is replanned at the next run. Gradients do not change. */
  setRecompute(mode: RecomputeMode): void {
    if (mode === this.recomputeMode) return;
    this.recomputeMode = mode;
    this.releaseActivations();
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
    const a = allocateActivations(this.be, this.cfg, batch, seq, this.recomputeMode);
    this.be.upload(a.positions, rowPositions(batch, seq));
    this.customPositions = false;
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
    const a = this.activations(batch, seq);
    this.be.upload(a.ids, ids);
    this.be.upload(a.targets, targets);
    const packed = this.pack(a, o);
    this.forward(a, o, packed);
    if (o.backward) this.backward(a, packed);
  }

  /** Uploads a call's positions and document bounds (checked here; the engine trusts them on CUDA). */
  private pack(a: Activations, o: ForwardOptions): PackedDocuments {
    const { batch, seq } = o;
    const N = batch * seq;
    if (o.positionIds) {
      const p = o.positionIds;
      if (p.length !== N) throw new Error(`expected ${N} positionIds for batch ${batch} x seq ${seq}, got ${p.length}`);
      for (let i = 0; i < N; i++)
        if (!(p[i]! >= 0 && p[i]! < seq)) throw new Error(`positionIds[${i}] = ${p[i]} is outside [0, ${seq})`);
      this.be.upload(a.positions, p);
      this.customPositions = true;
    } else if (this.customPositions) {
      this.be.upload(a.positions, rowPositions(batch, seq));
      this.customPositions = false;
    }
    let docs: DocumentBounds | null = null;
    if (o.segments) {
      const cu = o.segments;
      const count = cu.length - 1;
      if (count < 1 || cu[0] !== 0 || cu[count] !== N)
        throw new Error(`segments must run from 0 to batch*seq = ${N}, got ${cu[0]} .. ${cu[count]}`);
      for (let g = 0; g < count; g++) {
        if (!(cu[g + 1]! > cu[g]!)) throw new Error(`segments must increase, at entry ${g + 1}`);
        if (Math.floor(cu[g]! / seq) !== Math.floor((cu[g + 1]! - 1) / seq))
          throw new Error(`segment ${g} (${cu[g]}..${cu[g + 1]}) crosses a row boundary; every row start must be a segment start`);
      }
      this.be.upload(a.cuSeqlens, cu);
      docs = { cuSeqlens: a.cuSeqlens, segments: count };
    }
    return { positions: this.customPositions ? a.positions : null, docs };
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

  /**
   * The step's statistics in engine memory, f64 [loss sum, gradient sum of squares]: the loss accumulator and the
   * slot `gradSquares` fills. A training step reduces them on the engine and reads them back late (readLater).
   */
  stepStats(): Ptr {
    if (!this.acts) throw new Error('stepStats: run the model first (the statistics live beside its activations)');
    return { buf: this.acts.scalars, offset: 0 };
  }

  /** stats[1] = the sum of squared gradients (queued; nothing is read back). */
  gradSquares(stats: Ptr): void {
    const slot = { buf: stats.buf, offset: stats.offset + 1 };
    this.be.fill(slot, 1, 0);
    this.be.sumSquares(slot, { buf: this.grads, offset: 0 }, this.layout.total);
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

  /** Embedding -> blocks -> final norm -> head fused with the cross-entropy (and its gradient into dTmp). */
  private forward(a: Activations, o: ForwardOptions, packed: PackedDocuments): void {
    const { be, cfg, layout } = this;
    const { batch, seq } = o;
    const N = batch * seq;
    const D = cfg.hidden_size;
    const P = (off: number): Ptr => ({ buf: this.params, offset: off });
    const x0 = a.blocks[0]?.input ?? a.blocksOut;
    be.embeddingForward(x0, a.ids, P(layout.embed), N, D, false);
    if (layout.positions !== null) be.embeddingForward(x0, a.positions, P(layout.positions), N, D, true);
    const rope = this.rope(a);
    this.blocks.forEach((block, l) => {
      block.forward(a.blocks[l + 1]?.input ?? a.blocksOut, a.blocks[l]!, rope, batch, seq, packed, this.fusion(a, l));
    });
    let h = a.blocksOut;
    if (this.finalNorm) {
      if (!this.fusesFinalNorm()) this.finalNorm.forward(a.finalNormOut, a.finalNormStats, a.blocksOut, N);
      h = a.finalNormOut;
    }
    if (o.scores) return this.scoreHead(h, o.scores);
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
      dh: o.backward ? a.scratch.dTmp : null,
      dw: o.backward ? { buf: this.grads, offset: layout.head } : null,
      logitsOut: logitsOut ? { buf: logitsOut, offset: 0 } : null,
    });
    if (logitsOut && o.logits) {
      be.download({ buf: logitsOut, offset: 0 }, o.logits);
      be.free(logitsOut);
    }
  }

  /**
   * Pre-norm blocks end with a residual add whose sum the next norm reads: block l + 1's norm1, or after the last
   * block the final norm. Each such add and norm run as one fused op in block l (BlockFusion).
   */
  private fusion(a: Activations, l: number): BlockFusion {
    if (this.blocks[l]!.position !== 'pre') return NO_FUSION;
    const next = this.blocks[l + 1];
    const nextSaved = a.blocks[l + 1];
    let nextNorm: BlockFusion['next'] = null;
    if (next && nextSaved?.position === 'pre') nextNorm = { norm: next.norm1, out: nextSaved.attnIn, stats: nextSaved.norm1Stats };
    else if (!next && this.finalNorm) nextNorm = { norm: this.finalNorm, out: a.finalNormOut, stats: a.finalNormStats };
    return { inputNormed: l > 0, next: nextNorm };
  }

  /** Whether the last block's fused add already wrote the final norm's output (see fusion). */
  private fusesFinalNorm(): boolean {
    return this.blocks.length > 0 && this.blocks[this.blocks.length - 1]!.position === 'pre';
  }

  /**
   * A forward pass scored for evaluation: at every position whose target is not -100, log P(target) and the argmax
   * token. Full logits never leave the device; the loss accumulator and the gradients are left alone.
   */
  scoreTargets(ids: Int32Array, targets: Int32Array, batch: number, seq: number): TargetScores {
    const N = batch * seq;
    const out: TargetScores = { logprob: new Float64Array(N), argmax: new Int32Array(N).fill(-1) };
    this.run(ids, targets, { batch, seq, backward: false, scores: { ...out, targets } });
    return out;
  }

  /** Only the rows with a target reach the head: they are gathered first (the embedding op is a row gather). */
  private scoreHead(h: Ptr, s: TargetScores & { targets: Int32Array }): void {
    const { be, cfg, layout } = this;
    const rows: number[] = [];
    s.targets.forEach((t, i) => {
      if (t !== IGNORE_INDEX) rows.push(i);
    });
    const m = rows.length;
    if (m === 0) return;
    const D = cfg.hidden_size;
    const hRows = be.alloc('f32', m * D);
    const ints = be.alloc('i32', 3 * m); // row indices | their targets | argmax out
    const logprob = be.alloc('f64', m);
    // The row gather reads f32: a bf16 head input is cast first.
    const hF32 = h.buf.dtype === 'bf16' ? be.alloc('f32', s.targets.length * D) : null;
    try {
      if (hF32) be.copy({ buf: hF32, offset: 0 }, h, s.targets.length * D);
      be.upload({ buf: ints, offset: 0 }, Int32Array.from([...rows, ...rows.map((i) => s.targets[i]!)]));
      be.embeddingForward({ buf: hRows, offset: 0 }, { buf: ints, offset: 0 }, hF32 ? { buf: hF32, offset: 0 } : h, m, D, false);
      be.headLogprob({
        logprobOut: { buf: logprob, offset: 0 }, argmaxOut: { buf: ints, offset: 2 * m }, h: { buf: hRows, offset: 0 },
        w: { buf: this.params, offset: layout.head }, targets: { buf: ints, offset: m }, n: m, d: D, vocab: cfg.vocab_size,
      });
      const lp = new Float64Array(m);
      const am = new Int32Array(m);
      be.download({ buf: logprob, offset: 0 }, lp);
      be.download({ buf: ints, offset: 2 * m }, am);
      rows.forEach((r, k) => {
        s.logprob[r] = lp[k]!;
        s.argmax[r] = am[k]!;
      });
    } finally {
      be.free(hRows);
      be.free(ints);
      be.free(logprob);
      if (hF32) be.free(hF32);
    }
  }

  private backward(a: Activations, packed: PackedDocuments): void {
    const { be, cfg, layout } = this;
    const { batch, seq } = a;
    const N = batch * seq;
    const D = cfg.hidden_size;
    const G = (off: number): Ptr => ({ buf: this.grads, offset: off });
    // scratch.dTmp holds dL/dh from the fused head; turn it into dL/d(last block output) in dStream.
    if (this.finalNorm) this.finalNorm.backward(a.dStream, a.scratch.dTmp, a.blocksOut, a.finalNormStats, N, false);
    else be.copy(a.dStream, a.scratch.dTmp, N * D);
    const rope = this.rope(a);
    const last = this.blocks.length - 1;
    for (let l = last; l >= 0; l--) {
      const block = this.blocks[l]!;
      // The shared tensors still hold the last block's forward; earlier blocks rewrite theirs. dTmp is free here
      // (each block's backward overwrites it first), so it takes the re-run block's unused output.
      if (l < last) block.recompute(a.recompute, a.scratch.dTmp, a.blocks[l]!, rope, batch, seq, packed);
      block.backward(a.dStream, a.blocks[l]!, a.scratch, rope, batch, seq, packed);
    }
    be.embeddingBackward(G(layout.embed), a.ids, a.dStream, N, D);
    if (layout.positions !== null) be.embeddingBackward(G(layout.positions), a.positions, a.dStream, N, D);
  }

  // ---- weights by name ----

  /** Writes one named parameter from data in internal layout. */
  setParam(spec: ParamSpec, data: Float32Array): void {
    if (data.length !== spec.size) throw new Error(`${spec.name}: expected ${spec.size} values, got ${data.length}`);
    this.writeParams((p) => this.be.upload(p, data), spec.offset, spec.size);
  }

  /**
   * The one way to write parameters other than the optimizer's AdamW (which writes the bf16 copy itself): `write`
   * changes elements [offset, offset + n) of the parameters (given their start), then the bf16 copy of that range
   * is refreshed with one cast, so the copy the GEMMs read never goes stale (init, load, import, resume,
   * broadcasts and all-gathers of the data-parallel optimizers).
   */
  writeParams(write: (params: Ptr) => void, offset = 0, n = this.layout.total): void {
    write({ buf: this.params, offset });
    if (this.paramsBf16) this.be.copy({ buf: this.paramsBf16, offset }, { buf: this.params, offset }, n);
  }

  /** The bf16 weight copy at a layout offset (null on f32 backends): AdamW's second output. */
  paramBf16Ptr(offset = 0): Ptr | null {
    return this.paramsBf16 ? { buf: this.paramsBf16, offset } : null;
  }

  getParam(spec: ParamSpec, from: 'params' | 'grads' = 'params'): Float32Array {
    const out = new Float32Array(spec.size);
    this.be.download({ buf: from === 'params' ? this.params : this.grads, offset: spec.offset }, out);
    return out;
  }

  /** Views of the whole flat buffers (for the optimizer, checkpoints, collectives; parameter writes: writeParams). */
  paramPtr(offset = 0): Ptr {
    return shift({ buf: this.params, offset: 0 }, offset);
  }

  gradPtr(offset = 0): Ptr {
    return shift({ buf: this.grads, offset: 0 }, offset);
  }
}

/** Positions 0..seq-1 in every row. */
function rowPositions(batch: number, seq: number): Int32Array {
  const pos = new Int32Array(batch * seq);
  for (let i = 0; i < pos.length; i++) pos[i] = i % seq;
  return pos;
}
