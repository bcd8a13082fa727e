import type { Ptr } from '../engine/backend.js';

/** The position `elements` further into the same buffer. */
export function shift(p: Ptr, elements: number): Ptr {
  return { buf: p.buf, offset: p.offset + elements };
}
