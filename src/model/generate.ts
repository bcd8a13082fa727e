/**
 * Autoregressive generation with a KV cache (one sequence). Each layer caches its q|k|v projection rows and its
 * normalised/rotated q|k rows for every position fed so far, so a new token costs one row of work per layer plus
 * attention over the cache. Uses the training model's parameters and components; only attention differs
 * (`attentionDecode`: new queries over cached keys).
 */
import type { DeviceBuffer, Ptr } from '../engine/backend.js';
import type { Decoder } from './decoder.js';
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
  private readonly qkvCache: Ptr[] = [];
  private readonly qkCache: (Ptr | null)[] = [];
  private readonly s: Record<'x' | 'h' | 'att' | 'r' | 'b' | 'up' | 'act' | 'mean' | 'rstd' | 'qkRstd' | 'logits', Ptr>;
  private readonly ids: Ptr;
  private readonly positions: Ptr;
  private readonly cos: Ptr | null = null;
  private readonly sin: Ptr | null = null;
  private readonly W: number;
  private readonly QKV: number;
  /** Tokens fed so far (the next token's position). */
  length = 0;

  constructor(private readonly model: Decoder, readonly maxLen: number) {
    const { be, cfg } = model;
    if (maxLen > cfg.context_length) throw new Error(`generation length ${maxLen} exceeds the model's context_length ${cfg.context_length}`);
    const D = cfg.hidden_size;
    const Q = cfg.n_head * cfg.head_dim;
    const KV = cfg.n_kv_head * cfg.head_dim;
    const F = cfg.ffn_hidden;
    this.W = Q + 2 * KV;
    this.QKV = Q + KV;
    const prologue = cfg.qk_norm || cfg.positions === 'rope';
    const sizes: [string, number][] = [
      ['x', maxLen * D], ['h', maxLen * D], ['att', maxLen * Q], ['r', maxLen * D], ['b', maxLen * D],
      ['up', maxLen * (cfg.ffn === 'swiglu' ? 2 * F : F)], ['act', maxLen * F], ['mean', maxLen], ['rstd', maxLen],
      ['qkRstd', maxLen * (cfg.n_head + cfg.n_kv_head)], ['logits', cfg.vocab_size],
    ];
    const perLayer = maxLen * this.W + (prologue ? maxLen * this.QKV : 0);
    const half = cfg.head_dim / 2;
    const rope = cfg.positions === 'rope' ? 2 * maxLen * half : 0;
    const total = sizes.reduce((a, [, n]) => a + n, 0) + cfg.n_layer * perLayer + rope;
    const arena = be.alloc('f32', total);
    this.bufs.push(arena);
    let off = 0;
    const take = (n: number): Ptr => {
      const p = { buf: arena, offset: off };
      off += n;
      return p;
    };
    const s = {} as Record<string, Ptr>;
    for (const [k, n] of sizes) s[k] = take(n);
    this.s = s as KvGenerator['s'];
    for (let l = 0; l < cfg.n_layer; l++) {
      this.qkvCache.push(take(maxLen * this.W));
      this.qkCache.push(prologue ? take(maxLen * this.QKV) : null);
    }
    if (rope) {
      const t = ropeTables(cfg.rope_theta, cfg.head_dim, maxLen);
      this.cos = take(maxLen * half);
      this.sin = take(maxLen * half);
      be.upload(this.cos, t.cos);
      be.upload(this.sin, t.sin);
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
    const Q = cfg.n_head * cfg.head_dim;
    const half = cfg.head_dim / 2;
    const s = this.s;
    const P = (o: number): Ptr => this.model.paramPtr(o);
    be.upload(this.ids, Int32Array.from(tokens));
    be.embeddingForward(s.x, this.ids, P(layout.embed), n, D, false);
    if (layout.positions !== null) be.embeddingForward(s.x, shift(this.positions, p0), P(layout.positions), n, D, true);
    const stats = { mean: s.mean, rstd: s.rstd };
    const pre = cfg.norm_position === 'pre';
    this.model.blocks.forEach((blk, l) => {
      const a = blk.attn;
      const attend = (input: Ptr, out: Ptr) => {
        const qkvRows = shift(this.qkvCache[l]!, p0 * this.W);
        a.qkv.forward(qkvRows, input, n);
        const qkC = this.qkCache[l] ?? null;
        let q: Ptr, k: Ptr, strides;
        if (qkC) {
          const nq = a.qkNorm;
          be.qkPrepForward(
            shift(qkC, p0 * this.QKV), s.qkRstd, qkvRows, this.W, nq?.q ?? null, nq?.k ?? null,
            this.cos ? shift(this.cos, p0 * half) : null, this.sin ? shift(this.sin, p0 * half) : null,
            n, n, cfg.n_head, cfg.n_kv_head, cfg.head_dim, nq?.eps ?? 0,
          );
          q = shift(qkC, p0 * this.QKV);
          k = shift(qkC, Q);
          strides = { q: this.QKV, k: this.QKV, v: this.W };
        } else {
          q = qkvRows;
          k = shift(this.qkvCache[l]!, Q);
          strides = { q: this.W, k: this.W, v: this.W };
        }
        const v = shift(this.qkvCache[l]!, this.QKV);
        be.attentionDecode(s.att, q, k, v, strides, n, p0, cfg.n_head, cfg.n_kv_head, cfg.head_dim, 1 / Math.sqrt(cfg.head_dim));
        a.o.forward(out, s.att, n);
      };
      const mlpSaved = { up: s.up, act: s.act };
      if (pre) {
        blk.norm1.forward(s.h, stats, s.x, n);
        attend(s.h, s.r);
        be.add(s.r, s.r, s.x, n * D);
        blk.norm2.forward(s.b, stats, s.r, n);
        blk.mlp.forward(s.x, s.b, mlpSaved, n);
        be.add(s.x, s.x, s.r, n * D);
      } else {
        attend(s.x, s.r);
        be.add(s.r, s.r, s.x, n * D);
        blk.norm1.forward(s.h, stats, s.r, n);
        blk.mlp.forward(s.b, s.h, mlpSaved, n);
        be.add(s.b, s.b, s.h, n * D);
        blk.norm2.forward(s.x, stats, s.b, n);
      }
    });
    let last = shift(s.x, (n - 1) * D);
    if (this.model.finalNorm) {
      this.model.finalNorm.forward(s.h, stats, last, 1);
      last = s.h;
    }
    be.matmul(s.logits, last, P(layout.head), 1, cfg.vocab_size, D, { transB: true });
    const logits = new Float32Array(cfg.vocab_size);
    be.download(s.logits, logits);
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
