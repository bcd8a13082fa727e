/**
 * ZeRO-1 shard layout: the flat parameter buffer cut into `size` contiguous ranges of S = ceil(total / size)
 * elements (the buffer padded to a multiple of the world size; the padding is never stored, so the last
 * range is shorter), and the parts of the AdamW decay ranges that fall inside one rank's range.
 */
export interface Shard {
  /** Elements per full shard, S = ceil(total / size): what each rank allocates for m, v and its gradient slice. */
  capacity: number;
  /** Elements of each rank's range (the last may be shorter, or 0 when total < size). */
  counts: number[];
  /** This rank's range in the flat buffer. */
  start: number;
  count: number;
}

export function shardLayout(total: number, size: number, rank: number): Shard {
  if (!(Number.isInteger(size) && size >= 1)) throw new Error(`shard: world size must be a positive integer, got ${size}`);
  if (!(Number.isInteger(rank) && rank >= 0 && rank < size)) throw new Error(`shard: rank ${rank} outside [0, ${size})`);
  const capacity = Math.ceil(total / size);
  const counts = Array.from({ length: size }, (_, r) => Math.max(0, Math.min(capacity, total - r * capacity)));
  const start = Math.min(total, rank * capacity);
  return { capacity, counts, start, count: counts[rank]! };
}

export interface DecayRange {
  offset: number;
  size: number;
  decay: boolean;
}

/** The pieces of `ranges` (global offsets) inside [start, start + count), still in global offsets. */
export function clipRanges(ranges: readonly DecayRange[], start: number, count: number): DecayRange[] {
  const end = start + count;
  const out: DecayRange[] = [];
  for (const r of ranges) {
    const a = Math.max(r.offset, start);
    const b = Math.min(r.offset + r.size, end);
    if (b > a) out.push({ offset: a, size: b - a, decay: r.decay });
  }
  return out;
}
