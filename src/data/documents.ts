/**
 * Document boundaries inside packed training rows. Prepared data ends every document with the EOS token, so in a
 * row of inputs a new document begins right after each EOS (the EOS itself belongs to the document it ends), and
 * every row begins a segment too (its first document usually started in an earlier window).
 *
 * The boundaries are given the way varlen attention kernels take them: cumulative sequence lengths over the
 * flattened batch*seq tokens, [0, s1, s2, ..., batch*seq], never a seq x seq mask.
 */
export interface DocumentSegments {
  /** Segment starts over the flattened tokens, then batch*seq: length segments + 1, strictly increasing. */
  cuSeqlens: Int32Array;
  /** Each token's position within its segment (0 at every segment start). */
  positions: Int32Array;
}

export function documentSegments(ids: Int32Array, batch: number, seq: number, eotId: number): DocumentSegments {
  if (ids.length !== batch * seq) throw new Error(`internal: ${ids.length} ids for batch ${batch} x seq ${seq}`);
  const starts: number[] = [];
  const positions = new Int32Array(ids.length);
  for (let b = 0; b < batch; b++) {
    let start = b * seq;
    starts.push(start);
    for (let t = 0; t < seq; t++) {
      const n = b * seq + t;
      if (t > 0 && ids[n - 1] === eotId) {
        start = n;
        starts.push(n);
      }
      positions[n] = n - start;
    }
  }
  starts.push(ids.length);
  return { cuSeqlens: Int32Array.from(starts), positions };
}
