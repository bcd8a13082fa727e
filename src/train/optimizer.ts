/**
 * The trainer's view of the optimizer under data parallelism. Two implementations:
 *
 * - `ReplicatedAdamW` (plain data parallel, and world size 1): gradients are summed over ranks with bucketed
 *   all-reduces, every rank holds the full AdamW moments and applies the same update.
 * - `ZeroAdamW` (ZeRO-1): gradients are reduce-scattered, so rank r receives the summed gradient of its
 *   contiguous slice of the flat buffer only; it keeps AdamW moments for that slice only (memory / N),
 *   updates its parameter slice (decay ranges clipped to the slice), then the parameters are all-gathered.
 *   Gradient clipping uses the global norm: each rank's slice sum of squares, all-reduced.
 *
 * Checkpoints store the moments in the unsharded layout either way (gathered to rank 0), so a run resumes on
 * any world size and with or without ZeRO.
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
import type { Decoder } from '../model/decoder.js';
import { decayRanges } from '../model/layout.js';
import { AdamW, adamwRanges, type AdamWConfig } from './adamw.js';
import { allReduceBuckets, DEFAULT_BUCKET_ELEMENTS } from '../parallel/buckets.js';
import type { ProcessGroup } from '../parallel/group.js';
import { clipRanges, shardLayout, type DecayRange, type Shard } from '../parallel/zero-shard.js';

export interface Moments {
  m: Float32Array;
  v: Float32Array;
}

export interface TrainOptimizer {
  /** Updates applied so far (AdamW bias correction). */
  readonly step: number;
  readonly cfg: AdamWConfig;
  /**
   * Reduces gradients over ranks (collective) and completes the step's statistics in engine memory, queued with
   * no host round trip: stats[0] the loss sum over ranks, stats[1] the squared global gradient norm
   * (f64 [loss sum, sum of squares], Decoder.stepStats).
   */
  reduceGradients(stats: Ptr): void;
  /**
   * One AdamW update with the reduced gradients, clipped to cfg.clip by the norm in `stats` and skipped by the
   * engine when a statistic is not finite (the caller learns it when it reads them, and calls undoStep).
   */
  update(lr: number, stats: Ptr): void;
  /** The last update was skipped (its statistics were not finite): it does not count for bias correction. */
  undoStep(): void;
  /** Collective: the full unsharded moments on rank 0, null on other ranks. */
  exportMoments(): Moments | null;
  /** Loads full unsharded moments (every rank passes the same arrays) and the update count. */
  importMoments(m: Float32Array, v: Float32Array, step: number): void;
  /** Bytes of optimizer state this rank holds (AdamW m and v). */
  stateBytes(): number;
  /** Bytes of other buffers this optimizer allocates (ZeRO-1: the reduced-gradient slice). */
  workspaceBytes(): number;
  describe(): string;
  dispose(): void;
}

export class ReplicatedAdamW implements TrainOptimizer {
  private readonly inner: AdamW;

  constructor(
    private readonly be: Backend,
    private readonly model: Decoder,
    private readonly group: ProcessGroup,
    cfg: AdamWConfig,
    private readonly bucketElements = DEFAULT_BUCKET_ELEMENTS,
  ) {
    this.inner = new AdamW(be, model, cfg);
  }

  get step(): number {
    return this.inner.step;
  }
  get cfg(): AdamWConfig {
    return this.inner.cfg;
  }
  reduceGradients(stats: Ptr): void {
    if (this.group.size > 1) {
      allReduceBuckets(this.group, this.model.gradPtr(0), this.model.layout.total, this.bucketElements);
      this.group.allReduce(stats, 1, 'sum'); // the loss sum; the squares below are of the already summed gradient
    }
    this.model.gradSquares(stats);
  }
  update(lr: number, stats: Ptr): void {
    this.inner.update(lr, 1, stats);
  }
  undoStep(): void {
    this.inner.step -= 1;
  }
  exportMoments(): Moments | null {
    if (this.group.rank !== 0) return null;
    const n = this.model.layout.total;
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    this.be.download({ buf: this.inner.m, offset: 0 }, m);
    this.be.download({ buf: this.inner.v, offset: 0 }, v);
    return { m, v };
  }
  importMoments(m: Float32Array, v: Float32Array, step: number): void {
    this.be.upload({ buf: this.inner.m, offset: 0 }, m);
    this.be.upload({ buf: this.inner.v, offset: 0 }, v);
    this.inner.step = step;
  }
  stateBytes(): number {
    return 2 * 4 * this.model.layout.total;
  }
  workspaceBytes(): number {
    return 0;
  }
  describe(): string {
    return this.group.size > 1 ? `AdamW, replicated on ${this.group.size} ranks` : 'AdamW';
  }
  dispose(): void {
    this.inner.dispose();
  }
}

export class ZeroAdamW implements TrainOptimizer {
  step = 0;
  readonly shard: Shard;
  /** Moments and reduced gradients of this rank's slice (capacity elements each; index = offset - shard.start). */
  readonly m: DeviceBuffer;
  readonly v: DeviceBuffer;
  readonly gradSlice: DeviceBuffer;
  private readonly ranges: DecayRange[];

  constructor(private readonly be: Backend, private readonly model: Decoder, private readonly group: ProcessGroup, public cfg: AdamWConfig) {
    this.shard = shardLayout(model.layout.total, group.size, group.rank);
    // At least one element so every rank has a buffer to address even with an empty slice.
    const cap = Math.max(1, this.shard.capacity);
    this.m = be.alloc('f32', cap);
    this.v = be.alloc('f32', cap);
    this.gradSlice = be.alloc('f32', cap);
    this.ranges = clipRanges(decayRanges(model.layout), this.shard.start, this.shard.count);
  }

  private local(buf: DeviceBuffer, globalOffset: number): Ptr {
    return { buf, offset: globalOffset - this.shard.start };
  }

  reduceGradients(stats: Ptr): void {
    const { be, shard } = this;
    this.group.reduceScatter(this.model.gradPtr(0), { buf: this.gradSlice, offset: 0 }, shard.counts);
    const squares = { buf: stats.buf, offset: stats.offset + 1 };
    be.fill(squares, 1, 0);
    if (shard.count > 0) be.sumSquares(squares, { buf: this.gradSlice, offset: 0 }, shard.count);
    // Loss sums and slice squares together: [global loss sum, squared global norm].
    this.group.allReduce(stats, 2, 'sum');
  }

  update(lr: number, stats: Ptr): void {
    this.step += 1;
    const { model } = this;
    const { start, count } = this.shard;
    adamwRanges(this.be, this.ranges, this.cfg, { lr, step: this.step, gradScale: 1, stats }, {
      start, n: count, param: model.paramPtr(start), grad: this.local(this.gradSlice, start),
      m: this.local(this.m, start), v: this.local(this.v, start),
    });
    // In place: this rank's updated slice already sits at its displacement in the parameter buffer; the bf16
    // weight copy (if any) is refreshed whole after the gather, so AdamW does not write it here.
    model.writeParams((p) => this.group.allGather(model.paramPtr(this.shard.start), p, this.shard.counts));
  }

  exportMoments(): Moments | null {
    const { be, group, shard } = this;
    const n = this.model.layout.total;
    const root = group.rank === 0;
    const full = root ? be.alloc('f32', n) : null;
    const out: Moments | null = root ? { m: new Float32Array(n), v: new Float32Array(n) } : null;
    try {
      for (const [src, key] of [[this.m, 'm'], [this.v, 'v']] as const) {
        group.gather({ buf: src, offset: 0 }, full ? { buf: full, offset: 0 } : null, shard.counts, 0);
        if (full && out) be.download({ buf: full, offset: 0 }, out[key]);
      }
    } finally {
      if (full) be.free(full);
    }
    return out;
  }

  importMoments(m: Float32Array, v: Float32Array, step: number): void {
    const { start, count } = this.shard;
    if (count > 0) {
      this.be.upload({ buf: this.m, offset: 0 }, m.subarray(start, start + count));
      this.be.upload({ buf: this.v, offset: 0 }, v.subarray(start, start + count));
    }
    this.step = step;
  }

  stateBytes(): number {
    return 2 * 4 * Math.max(1, this.shard.capacity);
  }
  workspaceBytes(): number {
    return 4 * Math.max(1, this.shard.capacity);
  }
  describe(): string {
    const { start, count } = this.shard;
    return `AdamW with ZeRO-1 over ${this.group.size} ranks (this rank: elements [${start}, ${start + count}))`;
  }
  undoStep(): void {
    this.step -= 1;
  }

  dispose(): void {
    for (const b of [this.m, this.v, this.gradSlice]) this.be.free(b);
  }
}

/** Optimizer-state bytes per rank the plan (src/plan/plan.ts) predicts for ZeRO-1: AdamW m + v, 8 B/param / N. */
export function zero1StateBytes(params: number, worldSize: number): number {
  return 8 * Math.ceil(params / worldSize);
}
