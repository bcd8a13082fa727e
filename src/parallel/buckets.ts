/**
 * Gradient bucketing: the flat gradient buffer is all-reduced in a few large pieces rather than one call per
 * tensor (latency) or one giant call (no pipelining inside the MPI library, int count limits). Buckets go from
 * the end of the buffer to the front, the order in which backward finishes the layers (output head first), so
 * an engine that runs backward asynchronously can start reducing early buckets while later layers compute.
 */
import type { Ptr } from '../engine/backend.js';
import type { ProcessGroup } from './group.js';

/** 25 MiB of f32, PyTorch DDP's default bucket size. */
export const DEFAULT_BUCKET_ELEMENTS = (25 * 1024 * 1024) / 4;

export interface Bucket {
  offset: number;
  size: number;
}

export function bucketRanges(total: number, bucketElements = DEFAULT_BUCKET_ELEMENTS): Bucket[] {
  if (!(Number.isInteger(bucketElements) && bucketElements >= 1))
    throw new Error(`bucket size must be a positive integer number of elements, got ${bucketElements}`);
  const out: Bucket[] = [];
  for (let end = total; end > 0; end -= bucketElements) {
    const offset = Math.max(0, end - bucketElements);
    out.push({ offset, size: end - offset });
  }
  return out;
}

/** Sums buf[0, total) over ranks, bucket by bucket (in place). */
export function allReduceBuckets(group: ProcessGroup, base: Ptr, total: number, bucketElements = DEFAULT_BUCKET_ELEMENTS): number {
  const buckets = bucketRanges(total, bucketElements);
  for (const b of buckets) group.allReduce({ buf: base.buf, offset: base.offset + b.offset }, b.size, 'sum');
  return buckets.length;
}
