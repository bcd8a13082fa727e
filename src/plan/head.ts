/**
 * What the chunked output head holds at once on the CUDA engine in bf16 mode (src/engine/cuda/loss.cc), for the
 * memory plan: one chunk of bf16 logits (about 1 GiB: a multiple of 64 rows, the row stride the vocabulary rounded
 * up to 8; dlogits overwrite it in place), the chunk's head inputs in bf16, and one f64 loss per token, each in a
 * scratch area with the engine's 1/8 growth headroom. It does not grow with the batch beyond one chunk. The bf16
 * copy of the head weight the engine also keeps is the plan's bf16 weights (2 B per parameter), not counted here.
 */

/** Bytes of logits per chunk (loss.cc kChunkBytes). */
export const HEAD_CHUNK_BYTES = 2 ** 30;

/** Row stride of the logits chunk (loss.cc chunkStride). */
export function headChunkStride(vocab: number): number {
  return Math.ceil(vocab / 8) * 8;
}

/** Rows per chunk for `tokens` rows of the head (loss.cc chunkRows, bf16: 2-byte logits). */
export function headChunkRows(vocab: number, tokens: number): number {
  const r = Math.max(64, Math.floor(HEAD_CHUNK_BYTES / (headChunkStride(vocab) * 2) / 64) * 64);
  return Math.max(1, Math.min(r, tokens));
}

/** A scratch area of `bytes` as the engine allocates it (addon.cc scratch: at least 256 B, plus 1/8). */
function scratchArea(bytes: number): number {
  const b = Math.max(256, bytes);
  return b + Math.floor(b / 8);
}

/** Bytes the head holds for `tokens` rows with hidden size `hidden`. */
export function headScratchBytes(vocab: number, hidden: number, tokens: number): number {
  const rows = headChunkRows(vocab, tokens);
  return scratchArea(rows * headChunkStride(vocab) * 2) + scratchArea(rows * hidden * 2) + scratchArea(tokens * 8);
}
