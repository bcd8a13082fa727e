/**
 * The training data loader. A split's shards form one token stream; window i is tokens
 * [i*seq, i*seq + seq + 1) (inputs = first seq, targets = last seq), so every token is a target exactly once
 * per epoch. Windows are read on demand with positioned reads from a small cache of open file descriptors
 * (Node has no mmap; this keeps memory at one batch whatever the dataset size).
 *
 * Order: 'sequential', or 'random': a seeded pseudo-random permutation of the window indices per epoch,
 * computed by a Feistel network (no table, O(1) memory). Data parallel: the global stream of window slots is
 * dealt out batch by batch, rank r taking slots [(step*world + r)*batch, +batch), so ranks are disjoint and
 * together cover every window once per epoch. The whole state is the step counter (plus the settings it
 * belongs to), so `restore(state())` replays exactly the same batches.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Manifest, type Split, readManifest } from './manifest.js';
import { SHARD_HEADER_BYTES, readShardHeader, sha256File } from './shard.js';

export type LoaderOrder = 'random' | 'sequential';

export interface LoaderOptions {
  dir: string;
  split: Split;
  /** Tokens per training sequence; windows hold seq+1 tokens. */
  seq: number;
  /** Sequences per batch, per rank. */
  batch: number;
  seed?: number;
  rank?: number;
  worldSize?: number;
  order?: LoaderOrder;
  /** Check every shard's sha256 against the manifest when opening (reads all data once). */
  verify?: boolean;
}

/** JSON-serialisable position of a loader, with the settings it is valid for. */
export interface LoaderState {
  version: 1;
  split: Split;
  seq: number;
  batch: number;
  seed: number;
  rank: number;
  worldSize: number;
  order: LoaderOrder;
  /** Windows in the split (a changed dataset makes the state invalid). */
  windows: number;
  /** Batches this rank has taken. */
  step: number;
}

export interface Batch {
  /** [batch, seq+1] token ids, row-major. */
  tokens: Int32Array;
  batch: number;
  seq: number;
  /** Epoch of the batch's first row. */
  epoch: number;
  /** Index of this batch for this rank (0-based). */
  step: number;
  /** Window index of each row (row j = stream tokens [w*seq, w*seq+seq+1)). */
  windows: number[];
}

/** A 32-bit integer hash (murmur3's finaliser). */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A seeded bijection on [0, n), by a 4-round balanced Feistel network with cycle walking. */
export class FeistelPermutation {
  private readonly half: number;
  private readonly halfSize: number;
  private readonly keys: number[];

  constructor(
    readonly n: number,
    seed: number,
    epoch: number,
  ) {
    if (!(Number.isSafeInteger(n) && n >= 1)) throw new Error(`permutation size must be a positive integer, got ${n}`);
    let bits = 2;
    while (2 ** bits < n) bits++;
    this.half = Math.ceil(bits / 2);
    if (this.half > 26) throw new Error(`too many windows (${n}) for the shuffler (at most 2^52)`);
    this.halfSize = 2 ** this.half;
    const s0 = seed >>> 0;
    const s1 = Math.floor(seed / 2 ** 32) >>> 0;
    this.keys = [0, 1, 2, 3].map((r) => mix32(mix32(mix32(s0 ^ 0x9e3779b9) ^ s1) ^ mix32(epoch + 0x632be5ab * (r + 1))));
  }

  private round(v: number, key: number): number {
    return mix32(v ^ key) & (this.halfSize - 1);
  }

  apply(x: number): number {
    let v = x;
    do {
      let l = Math.floor(v / this.halfSize);
      let r = v % this.halfSize;
      for (const k of this.keys) {
        const t = r;
        r = (l ^ this.round(r, k)) >>> 0;
        l = t;
      }
      v = l * this.halfSize + r;
    } while (v >= this.n);
    return v;
  }
}

interface ShardSpan {
  file: string;
  /** First token of the shard in the split's stream. */
  start: number;
  tokens: number;
}

const FD_CACHE = 64;

export class DataLoader {
  readonly split: Split;
  readonly seq: number;
  readonly batch: number;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly order: LoaderOrder;
  /** Tokens in the split. */
  readonly tokens: number;
  /** Windows of seq+1 tokens in the split (one epoch). */
  readonly windows: number;
  readonly vocabSize: number;
  private step = 0;
  private perm: FeistelPermutation | null = null;
  private permEpoch = -1;
  private readonly fds = new Map<string, number>();

  constructor(
    readonly manifest: Manifest,
    private readonly spans: ShardSpan[],
    opts: Required<Omit<LoaderOptions, 'dir' | 'verify'>>,
  ) {
    this.split = opts.split;
    this.seq = opts.seq;
    this.batch = opts.batch;
    this.seed = opts.seed;
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.order = opts.order;
    this.tokens = spans.reduce((a, s) => a + s.tokens, 0);
    this.windows = Math.floor((this.tokens - 1) / this.seq);
    this.vocabSize = manifest.tokenizer.vocabSize;
  }

  /** Batches per epoch for this rank (the last may run into the next epoch). */
  get stepsPerEpoch(): number {
    return Math.ceil(this.windows / (this.batch * this.worldSize));
  }

  /** The window index behind global slot p. */
  private windowAt(p: number): { window: number; epoch: number } {
    const epoch = Math.floor(p / this.windows);
    const i = p - epoch * this.windows;
    if (this.order === 'sequential') return { window: i, epoch };
    if (!this.perm || this.permEpoch !== epoch) {
      this.perm = new FeistelPermutation(this.windows, this.seed, epoch);
      this.permEpoch = epoch;
    }
    return { window: this.perm.apply(i), epoch };
  }

  next(): Batch {
    const row = this.seq + 1;
    const tokens = new Int32Array(this.batch * row);
    const bytes = new Uint8Array(tokens.buffer);
    const first = (this.step * this.worldSize + this.rank) * this.batch;
    let epoch0 = 0;
    const windows: number[] = [];
    for (let j = 0; j < this.batch; j++) {
      const { window, epoch } = this.windowAt(first + j);
      if (j === 0) epoch0 = epoch;
      windows.push(window);
      this.readTokens(window * this.seq, row, bytes, j * row * 4);
    }
    const b: Batch = { tokens, batch: this.batch, seq: this.seq, epoch: epoch0, step: this.step, windows };
    this.step++;
    return b;
  }

  /**
   * Reads the window behind global slot p (seq+1 tokens) into dst starting at element `at`: the row access a
   * mixture of several loaders uses (see mixture.ts), independent of this loader's own batch position.
   */
  readSlot(p: number, dst: Int32Array, at: number): { window: number; epoch: number } {
    const w = this.windowAt(p);
    this.readTokens(w.window * this.seq, this.seq + 1, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), at * 4);
    return w;
  }

  /** Reads `count` tokens from stream position `start` into dst at byte offset dstOff. */
  private readTokens(start: number, count: number, dst: Uint8Array, dstOff: number): void {
    let lo = 0;
    let hi = this.spans.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.spans[mid]!.start <= start) lo = mid;
      else hi = mid - 1;
    }
    let s = lo;
    let pos = start;
    let left = count;
    let off = dstOff;
    while (left > 0) {
      const span = this.spans[s]!;
      const inShard = pos - span.start;
      const n = Math.min(left, span.tokens - inShard);
      const want = n * 4;
      const got = fs.readSync(this.fd(span.file), dst, off, want, SHARD_HEADER_BYTES + inShard * 4);
      if (got !== want) throw new Error(`${span.file}: short read (${got} of ${want} bytes at token ${inShard}); the shard changed or is truncated — rerun 'lmforge prepare' for this directory`);
      this.checkIds(new Uint32Array(dst.buffer, dst.byteOffset + off, n), span, inShard);
      off += want;
      left -= n;
      pos += n;
      s++;
    }
  }

  /**
   * Every id must be below the vocabulary the shard declares: an id past it (a corrupt or foreign shard) would
   * otherwise train silently whenever the model's vocabulary happens to be larger. Read as uint32, so
   * 0xFFFFFFFF is reported as 4294967295, not -1.
   */
  private checkIds(ids: Uint32Array, span: ShardSpan, first: number): void {
    const vocab = this.vocabSize;
    for (let k = 0; k < ids.length; k++) {
      if (ids[k]! >= vocab)
        throw new Error(
          `${span.file}: token ${first + k} is id ${ids[k]}, at or above the vocabulary size ${vocab} the shard declares: ` +
            `the shard is corrupt or was not written by 'lmforge prepare'; rerun 'lmforge prepare' for this directory`,
        );
    }
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd !== undefined) {
      this.fds.delete(file);
      this.fds.set(file, fd);
      return fd;
    }
    if (this.fds.size >= FD_CACHE) {
      const [oldFile, oldFd] = this.fds.entries().next().value as [string, number];
      fs.closeSync(oldFd);
      this.fds.delete(oldFile);
    }
    fd = fs.openSync(file, 'r');
    this.fds.set(file, fd);
    return fd;
  }

  state(): LoaderState {
    return {
      version: 1,
      split: this.split,
      seq: this.seq,
      batch: this.batch,
      seed: this.seed,
      rank: this.rank,
      worldSize: this.worldSize,
      order: this.order,
      windows: this.windows,
      step: this.step,
    };
  }

  restore(s: LoaderState): void {
    const mine = this.state();
    for (const k of ['version', 'split', 'seq', 'batch', 'seed', 'rank', 'worldSize', 'order', 'windows'] as const)
      if (s[k] !== mine[k])
        throw new Error(`loader state was saved with ${k}=${JSON.stringify(s[k])} but this loader has ${k}=${JSON.stringify(mine[k])}; resume with the same data and settings`);
    if (!(Number.isSafeInteger(s.step) && s.step >= 0)) throw new Error(`loader state has an invalid step ${String(s.step)}`);
    this.step = s.step;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

export async function openLoader(opts: LoaderOptions): Promise<DataLoader> {
  if (os.endianness() !== 'LE') throw new Error('token shards are little-endian; this loader needs a little-endian machine');
  const seq = opts.seq;
  const batch = opts.batch;
  const worldSize = opts.worldSize ?? 1;
  const rank = opts.rank ?? 0;
  const order = opts.order ?? 'random';
  const seed = opts.seed ?? 0;
  if (!(Number.isInteger(seq) && seq >= 1)) throw new Error(`loader: seq must be a positive integer, got ${seq}`);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`loader: batch must be a positive integer, got ${batch}`);
  if (!(Number.isInteger(worldSize) && worldSize >= 1)) throw new Error(`loader: worldSize must be a positive integer, got ${worldSize}`);
  if (!(Number.isInteger(rank) && rank >= 0 && rank < worldSize)) throw new Error(`loader: rank must be in [0, ${worldSize}), got ${rank}`);
  if (order !== 'random' && order !== 'sequential') throw new Error(`loader: order must be 'random' or 'sequential', got '${String(order)}'`);
  if (!Number.isSafeInteger(seed)) throw new Error(`loader: seed must be an integer, got ${seed}`);
  const manifest = readManifest(opts.dir);
  const split = manifest.splits[opts.split];
  if (!split) throw new Error(`loader: split must be 'train' or 'val', got '${String(opts.split)}'`);
  const spans: ShardSpan[] = [];
  let start = 0;
  for (const sh of split.shards) {
    const file = path.join(opts.dir, sh.file);
    const h = readShardHeader(file);
    if (h.tokens !== sh.tokens) throw new Error(`${file}: holds ${h.tokens} tokens but the manifest says ${sh.tokens}; rerun 'lmforge prepare' for this directory`);
    if (h.vocabSize !== manifest.tokenizer.vocabSize)
      throw new Error(
        `${file}: the shard declares a vocabulary of ${h.vocabSize} but the manifest says ${manifest.tokenizer.vocabSize}; ` +
          `shards and manifest come from different preparations: rerun 'lmforge prepare' for this directory`,
      );
    if (opts.verify && sha256File(file) !== sh.sha256) throw new Error(`${file}: sha256 differs from the manifest: the shard is corrupt; rerun 'lmforge prepare' for this directory`);
    spans.push({ file, start, tokens: sh.tokens });
    start += sh.tokens;
  }
  if (start < seq + 1)
    throw new Error(`${opts.dir}: the ${opts.split} split has ${start} tokens, fewer than one window of seq+1 = ${seq + 1}; use a smaller seq or more data${opts.split === 'val' ? ' (or a larger --val-fraction)' : ''}`);
  return new DataLoader(manifest, spans, { split: opts.split, seq, batch, seed, rank, worldSize, order });
}

export interface DatasetInfo {
  tokenizerSha256: string;
  vocabSize: number;
  eotId: number;
  docs: Record<Split, number>;
  tokens: Record<Split, number>;
  /** UTF-8 bytes of source text per token (bits per byte = loss / ln 2 / bytesPerToken). */
  bytesPerToken: Record<Split, number>;
  skipped: number;
}

/** Counts from a prepared directory's manifest. */
export function datasetInfo(dir: string): DatasetInfo {
  const m = readManifest(dir);
  const bpt = (s: Split): number => (m.splits[s].tokens > 0 ? m.splits[s].textBytes / m.splits[s].tokens : 0);
  return {
    tokenizerSha256: m.tokenizer.sha256,
    vocabSize: m.tokenizer.vocabSize,
    eotId: m.tokenizer.eotId,
    docs: { train: m.splits.train.docs, val: m.splits.val.docs },
    tokens: { train: m.splits.train.tokens, val: m.splits.val.tokens },
    bytesPerToken: { train: bpt('train'), val: bpt('val') },
    skipped: m.docs.skipped,
  };
}
