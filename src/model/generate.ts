/**
 * Autoregressive generation with a KV cache (one sequence). Each layer caches its q|k|v projection rows and its
 * normalised/rotated q|k rows for every position fed so far, so a new token costs one row of work per layer plus
 * attention over the cache. Runs the training model's blocks through `Block.decode`, which differs from training
 * only in the attention call (`Attention.decode`: new queries over cached keys).
 */
import type { DeviceBuffer, Ptr } from '../engine/backend.js';
import type { Decoder } from './decoder.js';
import { Attention, type AttentionDecodeScratch, type KvCache, type RopeTables } from './attention.js';
import type { BlockStream } from './block.js';
import type { NormStats } from './norm.js';
import { Plan, planBlockStream } from './activations.js';
import { ropeTables } from './rope.js';
import { shift } from './ptr.js';
import { Rng } from './rng.js';

export interface SamplingOptions {
  maxNewTokens: number;
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK: number;
  /** Nucleus: keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP: number;
  seed: number;
  /** Stop after emitting one of these. */
  stopIds?: number[];
}

export class KvGenerator {
  private readonly bufs: DeviceBuffer[] = [];
  /** One per block, maxLen positions each. */
  private readonly caches: KvCache[] = [];
  /** Working rows of one feed (up to maxLen new positions), reused by every block; `input` carries the stream. */
  private readonly stream: BlockStream;
  private readonly attnScratch: AttentionDecodeScratch;
  /** [1, D] final norm of the last position, and its statistics. */
  private readonly finalNormOut: Ptr;
  private readonly finalNormStats: NormStats;
  /** [V] logits of the last position. */
  private readonly logits: Ptr;
  private readonly ids: Ptr;
  private readonly positions: Ptr;
  /** RoPE tables for positions 0..maxLen-1. */
  private readonly rope: RopeTables | null = null;
  /** Tokens fed so far (the next token's position). */
  length = 0;

  constructor(private readonly model: Decoder, readonly maxLen: number) {
    const { be, cfg } = model;
    if (maxLen > cfg.context_length) throw new Error(`generation length ${maxLen} exceeds the model's context_length ${cfg.context_length}`);
    const D = cfg.hidden_size;
    const Q = cfg.n_head * cfg.head_dim;
    const KV = cfg.n_kv_head * cfg.head_dim;
    const prologue = Attention.needsPrologue(cfg.qk_norm, cfg.positions === 'rope');
    const half = cfg.head_dim / 2;
    const plan = new Plan();
    this.stream = planBlockStream({ stream: plan, act: plan }, cfg, maxLen, {}); // decoding keeps everything f32
    const attnScratch = { qkRstd: null } as AttentionDecodeScratch;
    plan.take(maxLen * Q, (p) => (attnScratch.att = p));
    if (prologue) plan.take(maxLen * (cfg.n_head + cfg.n_kv_head), (p) => (attnScratch.qkRstd = p));
    this.attnScratch = attnScratch;
    const views = {} as { finalNormOut: Ptr; mean: Ptr; rstd: Ptr; logits: Ptr; cos: Ptr; sin: Ptr };
    plan.take(D, (p) => (views.finalNormOut = p));
    plan.take(1, (p) => (views.mean = p));
    plan.take(1, (p) => (views.rstd = p));
    plan.take(cfg.vocab_size, (p) => (views.logits = p));
    for (let l = 0; l < cfg.n_layer; l++) {
      const cache = { qk: null } as KvCache;
      plan.take(maxLen * (Q + 2 * KV), (p) => (cache.qkv = p));
      if (prologue) plan.take(maxLen * (Q + KV), (p) => (cache.qk = p));
      this.caches.push(cache);
    }
    if (cfg.positions === 'rope') {
      plan.take(maxLen * half, (p) => (views.cos = p));
      plan.take(maxLen * half, (p) => (views.sin = p));
    }
    const arena = be.alloc('f32', plan.size);
    this.bufs.push(arena);
    plan.realise(arena);
    this.finalNormOut = views.finalNormOut;
    this.finalNormStats = { mean: views.mean, rstd: views.rstd };
    this.logits = views.logits;
    if (cfg.positions === 'rope') {
      const t = ropeTables(cfg.rope_theta, cfg.head_dim, maxLen);
      this.rope = { cos: views.cos, sin: views.sin };
      be.upload(this.rope.cos, t.cos);
      be.upload(this.rope.sin, t.sin);
    }
    const i32 = be.alloc('i32', 2 * maxLen);
    this.bufs.push(i32);
    this.ids = { buf: i32, offset: 0 };
    this.positions = { buf: i32, offset: maxLen };
    be.upload(this.positions, Int32Array.from({ length: maxLen }, (_, i) => i));
  }

  dispose(): void {
    for (const b of this.bufs) this.model.be.free(b);
    this.bufs.length = 0;
  }

  /** Feeds tokens at positions length..length+n-1 and returns the logits that follow the last one. */
  feed(tokens: number[]): Float32Array {
    const { be, cfg, layout } = this.model;
    const n = tokens.length;
    const p0 = this.length;
    if (n === 0) throw new Error('feed: no tokens');
    if (p0 + n > this.maxLen) throw new Error(`generation reached the cache length ${this.maxLen} (model context ${cfg.context_length})`);
    for (const t of tokens) if (t < 0 || t >= cfg.vocab_size) throw new Error(`token id ${t} is outside the vocabulary [0, ${cfg.vocab_size})`);
    const D = cfg.hidden_size;
    const x = this.stream.input;
    const P = (o: number): Ptr => this.model.paramPtr(o);
    be.upload(this.ids, Int32Array.from(tokens));
    be.embeddingForward(x, this.ids, P(layout.embed), n, D, false);
    if (layout.positions !== null) be.embeddingForward(x, shift(this.positions, p0), P(layout.positions), n, D, true);
    // Each block reads the stream from x and writes its output back into x.
    this.model.blocks.forEach((block, l) => block.decode(x, this.stream, this.attnScratch, this.caches[l]!, this.rope, p0, n));
    let last = shift(x, (n - 1) * D);
    if (this.model.finalNorm) {
      this.model.finalNorm.forward(this.finalNormOut, this.finalNormStats, last, 1);
      last = this.finalNormOut;
    }
    be.matmul(this.logits, last, P(layout.head), 1, cfg.vocab_size, D, { transB: true });
    const logits = new Float32Array(cfg.vocab_size);
    be.download(this.logits, logits);
    this.length += n;
    return logits;
  }

  /** Yields new token ids one at a time (streaming). */
  *generate(prompt: number[], o: SamplingOptions): Generator<number> {
    if (prompt.length === 0) throw new Error('generate: the prompt has no tokens');
    const rng = new Rng(o.seed);
    let logits = this.feed(prompt);
    for (let i = 0; i < o.maxNewTokens; i++) {
      const next = sample(logits, o, rng);
      yield next;
      if (o.stopIds?.includes(next) || i + 1 === o.maxNewTokens || this.length >= this.maxLen) return;
      logits = this.feed([next]);
    }
  }
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Greedy when temperature is 0; else softmax(logits / T) restricted by top-k and top-p, sampled with rng. */
export function sample(logits: Float32Array, o: Pick<SamplingOptions, 'temperature' | 'topK' | 'topP'>, rng: Rng): number {
  if (!(o.temperature > 0)) return argmax(logits);
  let idx = Array.from({ length: logits.length }, (_, i) => i);
  if (o.topK > 0 && o.topK < idx.length) {
    idx.sort((a, b) => logits[b]! - logits[a]!);
    idx = idx.slice(0, o.topK);
  } else if (o.topP < 1) idx.sort((a, b) => logits[b]! - logits[a]!);
  let max = -Infinity;
  for (const i of idx) max = Math.max(max, logits[i]!);
  let probs = idx.map((i) => Math.exp((logits[i]! - max) / o.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (o.topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < o.topP * sum) acc += probs[keep++]!;
    idx = idx.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    sum = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * sum;
  for (let j = 0; j < idx.length; j++) {
    u -= probs[j]!;
    if (u <= 0) return idx[j]!;
  }
  return idx[idx.length - 1]!;
}
