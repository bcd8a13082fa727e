/**
 * A weighted mixture of prepared datasets, read row by row. The run's rows form one global stream of slots
 * (all ranks together, micro-batch after micro-batch); slot p comes from source i with probability weight_i,
 * decided by a hash of (seed, p), so the choice is deterministic, needs no RNG state, and every rank computes
 * the same choices. Each source is read in its own (shuffled) order, one window per row it gives, and
 * continues into a new epoch (a new shuffle) when it runs out: a warning counts the epochs, or with
 * on_exhausted 'stop' the batch is refused with a DataExhaustedError and nothing is consumed.
 *
 * The state is the global slot count plus the rows each source has given, so `restore(state())` replays the
 * same batches exactly, and a resume with another world size or micro-batch continues at the same global
 * position. A mixture of one source reads exactly what the plain DataLoader reads (same windows, same order).
 */
import type { Split } from './manifest.js';
import { mix32, openLoader, type DataLoader, type LoaderOrder, type LoaderState } from './loader.js';

export interface MixtureSource {
  /** Name in metrics and messages. */
  name: string;
  /** A prepared directory. */
  dir: string;
  /** Relative weight (> 0); weights are normalised. */
  weight: number;
}

export type OnExhausted = 'repeat' | 'stop';

export interface MixtureOptions {
  sources: MixtureSource[];
  split: Split;
  seq: number;
  /** Rows per batch on this rank. */
  batch: number;
  seed: number;
  rank?: number;
  worldSize?: number;
  order?: LoaderOrder;
  onExhausted?: OnExhausted;
}

/** JSON-serialisable position of a mixture, with the settings it is valid for. */
export interface MixtureState {
  version: 2;
  split: Split;
  seq: number;
  seed: number;
  order: LoaderOrder;
  sources: { name: string; windows: number; weight: number }[];
  /** Rows all ranks together have taken. */
  slots: number;
  /** Rows each source has given (all ranks together). */
  counts: number[];
  /** Settings of the run that saved it; another batch or world size continues at the same global position. */
  batch: number;
  worldSize: number;
}

export interface MixtureBatch {
  /** [batch, seq+1] token ids, row-major. */
  tokens: Int32Array;
  batch: number;
  seq: number;
  /** Source index of each row of this rank. */
  sources: number[];
  /** Sources that began another pass over their data in this batch (all ranks' rows): epoch 2 = second pass. */
  repeats: { source: string; epoch: number }[];
}

export class DataExhaustedError extends Error {
  constructor(
    readonly source: string,
    readonly windows: number,
  ) {
    super(
      `dataset '${source}' is used up (all ${windows} windows were read once) and on_exhausted is 'stop'; ` +
        `give it a smaller weight, shorten the stage, or set on_exhausted: repeat`,
    );
    this.name = 'DataExhaustedError';
  }
}

/** u in [0, 1) for slot p: a hash of (seed, p), both up to 2^53. */
function uniform(seed: number, p: number): number {
  const s0 = seed >>> 0, s1 = Math.floor(seed / 2 ** 32) >>> 0;
  const p0 = p >>> 0, p1 = Math.floor(p / 2 ** 32) >>> 0;
  const h = mix32(mix32(mix32(mix32(s0 ^ 0x2545f491) ^ s1) ^ p0) + p1 * 0x9e3779b1);
  return h / 2 ** 32;
}

export class MixtureLoader {
  readonly split: Split;
  readonly seq: number;
  readonly batch: number;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly order: LoaderOrder;
  readonly onExhausted: OnExhausted;
  /** Cumulative normalised weights (the last is 1). */
  private readonly cumulative: number[];
  private slots = 0;
  private counts: number[];

  constructor(
    readonly sources: readonly MixtureSource[],
    private readonly loaders: readonly DataLoader[],
    opts: Required<Omit<MixtureOptions, 'sources'>>,
  ) {
    this.split = opts.split;
    this.seq = opts.seq;
    this.batch = opts.batch;
    this.seed = opts.seed;
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.order = opts.order;
    this.onExhausted = opts.onExhausted;
    const total = sources.reduce((a, s) => a + s.weight, 0);
    let acc = 0;
    this.cumulative = sources.map((s) => (acc += s.weight / total));
    this.cumulative[this.cumulative.length - 1] = 1;
    this.counts = sources.map(() => 0);
  }

  /** Windows (rows of seq+1 tokens) in one epoch of each source. */
  get windows(): number[] {
    return this.loaders.map((l) => l.windows);
  }

  /** The source of global slot p. */
  sourceOf(p: number): number {
    if (this.sources.length === 1) return 0;
    const u = uniform(this.seed, p);
    let i = 0;
    while (u >= this.cumulative[i]!) i++;
    return i;
  }

  next(): MixtureBatch {
    const row = this.seq + 1;
    const tokens = new Int32Array(this.batch * row);
    const counts = this.counts.slice();
    const mine: number[] = [];
    const repeats: { source: string; epoch: number }[] = [];
    const first = this.rank * this.batch;
    const all = this.batch * this.worldSize;
    // Every rank walks all ranks' slots of this batch, so the per-source counts agree everywhere.
    for (let q = 0; q < all; q++) {
      const s = this.sourceOf(this.slots + q);
      const c = counts[s]!++;
      const windows = this.loaders[s]!.windows;
      if (c > 0 && c % windows === 0) {
        if (this.onExhausted === 'stop') throw new DataExhaustedError(this.sources[s]!.name, windows);
        repeats.push({ source: this.sources[s]!.name, epoch: c / windows + 1 });
      }
      if (q >= first && q < first + this.batch) {
        this.loaders[s]!.readSlot(c, tokens, (q - first) * row);
        mine.push(s);
      }
    }
    this.counts = counts;
    this.slots += all;
    return { tokens, batch: this.batch, seq: this.seq, sources: mine, repeats };
  }

  /** Share of the rows so far that each source gave (all ranks); the weights before the first batch. */
  proportions(): number[] {
    if (this.slots === 0) return this.cumulative.map((c, i) => c - (i > 0 ? this.cumulative[i - 1]! : 0));
    return this.counts.map((c) => c / this.slots);
  }

  state(): MixtureState {
    return {
      version: 2,
      split: this.split,
      seq: this.seq,
      seed: this.seed,
      order: this.order,
      sources: this.sources.map((s, i) => ({ name: s.name, windows: this.loaders[i]!.windows, weight: s.weight })),
      slots: this.slots,
      counts: this.counts.slice(),
      batch: this.batch,
      worldSize: this.worldSize,
    };
  }

  /**
   * Continues from a saved state. Returns whether it was saved with this batch and world size (then the
   * batches are exactly those of an uninterrupted run). A plain DataLoader's state (version 1) of the same
   * single dataset is accepted too.
   */
  restore(saved: MixtureState | LoaderState): { sameShape: boolean } {
    const s = saved.version === 1 ? this.fromLoaderState(saved) : saved;
    const mine = this.state();
    for (const k of ['version', 'split', 'seq', 'seed', 'order'] as const)
      if (s[k] !== mine[k])
        throw new Error(`data state was saved with ${k}=${JSON.stringify(s[k])} but this run has ${k}=${JSON.stringify(mine[k])}; resume with the same data and settings`);
    const describe = (x: MixtureState['sources']): string => x.map((d) => `${d.name} (${d.windows} windows, weight ${d.weight})`).join(', ');
    if (JSON.stringify(s.sources) !== JSON.stringify(mine.sources))
      throw new Error(`data state was saved for the sources ${describe(s.sources)} but this run reads ${describe(mine.sources)}; resume with the same data`);
    const okCount = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
    if (!okCount(s.slots) || s.counts.length !== this.sources.length || !s.counts.every(okCount) || s.counts.reduce((a, b) => a + b, 0) !== s.slots)
      throw new Error(`data state is damaged (slots ${String(s.slots)}, counts ${JSON.stringify(s.counts)}); resume from another checkpoint`);
    this.slots = s.slots;
    this.counts = s.counts.slice();
    return { sameShape: s.batch === this.batch && s.worldSize === this.worldSize };
  }

  private fromLoaderState(l: LoaderState): MixtureState {
    if (this.sources.length !== 1) throw new Error('data state of a single dataset cannot resume a mixture; resume with the same data');
    const slots = l.step * l.batch * l.worldSize;
    return {
      version: 2, split: l.split, seq: l.seq, seed: l.seed, order: l.order,
      sources: [{ name: this.sources[0]!.name, windows: l.windows, weight: this.sources[0]!.weight }],
      slots, counts: [slots], batch: l.batch, worldSize: l.worldSize,
    };
  }

  close(): void {
    for (const l of this.loaders) l.close();
  }
}

export async function openMixture(opts: MixtureOptions): Promise<MixtureLoader> {
  if (opts.sources.length === 0) throw new Error('a data mixture needs at least one source');
  const rank = opts.rank ?? 0;
  const worldSize = opts.worldSize ?? 1;
  const order = opts.order ?? 'random';
  if (!(Number.isInteger(opts.batch) && opts.batch >= 1)) throw new Error(`loader: batch must be a positive integer, got ${opts.batch}`);
  if (!(Number.isInteger(worldSize) && worldSize >= 1)) throw new Error(`loader: worldSize must be a positive integer, got ${worldSize}`);
  if (!(Number.isInteger(rank) && rank >= 0 && rank < worldSize)) throw new Error(`loader: rank must be in [0, ${worldSize}), got ${rank}`);
  for (const s of opts.sources)
    if (!(s.weight > 0 && Number.isFinite(s.weight))) throw new Error(`data source '${s.name}': weight must be positive, got ${s.weight}`);
  const loaders: DataLoader[] = [];
  try {
    for (const s of opts.sources)
      loaders.push(await openLoader({ dir: s.dir, split: opts.split, seq: opts.seq, batch: 1, seed: opts.seed, order }));
  } catch (e) {
    for (const l of loaders) l.close();
    throw e;
  }
  const vocab = loaders.map((l) => l.manifest.tokenizer.sha256);
  const odd = vocab.findIndex((v) => v !== vocab[0]);
  if (odd > 0) {
    for (const l of loaders) l.close();
    throw new Error(`data sources '${opts.sources[0]!.name}' and '${opts.sources[odd]!.name}' were prepared with different tokenizers; prepare them with the same one`);
  }
  return new MixtureLoader(opts.sources, loaders, {
    split: opts.split, seq: opts.seq, batch: opts.batch, seed: opts.seed, rank, worldSize, order, onExhausted: opts.onExhausted ?? 'repeat',
  });
}
