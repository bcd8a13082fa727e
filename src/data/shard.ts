/**
 * Token shard files: a 32-byte little-endian header followed by uint32 token ids.
 *
 *   offset  size  field
 *   0       8     magic "LMFTOKS\0"
 *   8       4     format version (1)
 *   12      4     vocab size: every id in the file is below it
 *   16      8     token count (uint64)
 *   24      4     bytes per token (4)
 *   28      4     reserved (0)
 *
 * A shard is written under `<name>.tmp-<pid>` and renamed only once complete and synced, so a file with the
 * final name is always whole; its sha256 goes in the manifest.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { AtomicFile } from '../files/atomic.js';

export const SHARD_MAGIC = Buffer.from('LMFTOKS\0', 'latin1');
export const SHARD_VERSION = 1;
export const SHARD_HEADER_BYTES = 32;

export interface ShardHeader {
  version: number;
  vocabSize: number;
  tokens: number;
}

export function encodeShardHeader(h: ShardHeader): Buffer {
  const b = Buffer.alloc(SHARD_HEADER_BYTES);
  SHARD_MAGIC.copy(b, 0);
  b.writeUInt32LE(h.version, 8);
  b.writeUInt32LE(h.vocabSize, 12);
  b.writeBigUInt64LE(BigInt(h.tokens), 16);
  b.writeUInt32LE(4, 24);
  return b;
}

export function decodeShardHeader(b: Uint8Array, file: string): ShardHeader {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < SHARD_HEADER_BYTES)
    throw new Error(`${file}: ${buf.length} bytes is shorter than the ${SHARD_HEADER_BYTES}-byte shard header: the file is truncated; rerun 'lmforge prepare' into the same --out to rebuild it`);
  if (!buf.subarray(0, 8).equals(SHARD_MAGIC))
    throw new Error(`${file}: not an lmforge token shard (bad magic); point the loader at a directory written by 'lmforge prepare'`);
  const version = buf.readUInt32LE(8);
  if (version !== SHARD_VERSION)
    throw new Error(`${file}: shard format version ${version}, this lmforge reads version ${SHARD_VERSION}; re-prepare the data`);
  if (buf.readUInt32LE(24) !== 4) throw new Error(`${file}: unsupported token width ${buf.readUInt32LE(24)} bytes`);
  const tokens = Number(buf.readBigUInt64LE(16));
  return { version, vocabSize: buf.readUInt32LE(12), tokens };
}

/** Reads and checks a shard's header against its file size. */
export function readShardHeader(file: string): ShardHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot open the shard (${code ?? (e as Error).message}); rerun 'lmforge prepare' into the same --out to rebuild it`);
  }
  try {
    const b = Buffer.alloc(SHARD_HEADER_BYTES);
    const n = fs.readSync(fd, b, 0, SHARD_HEADER_BYTES, 0);
    const h = decodeShardHeader(b.subarray(0, n), file);
    const size = fs.fstatSync(fd).size;
    const want = SHARD_HEADER_BYTES + h.tokens * 4;
    if (size !== want)
      throw new Error(`${file}: header says ${h.tokens} tokens (${want} bytes) but the file has ${size} bytes: the shard is corrupt; rerun 'lmforge prepare' into the same --out to rebuild it`);
    return h;
  } finally {
    fs.closeSync(fd);
  }
}

/** sha256 of a whole file, streamed. */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Writes one shard of at most `capacity` tokens under a temporary name (files/atomic.ts: every byte written or
 * an error naming the file, never a short write taken for a whole one); `finish` writes the final header,
 * fsyncs and renames it into place, so a file under the final name always holds what its header says.
 */
export class ShardWriter {
  private out: AtomicFile;
  private buf: Uint32Array;
  private bufLen = 0;
  private written = 0;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly vocabSize: number,
    /** The token count the header announces; `finish` rewrites it if the shard ends short. */
    private readonly capacity: number,
  ) {
    this.out = new AtomicFile(file);
    this.out.writeAt(encodeShardHeader({ version: SHARD_VERSION, vocabSize, tokens: capacity }), 0);
    this.buf = new Uint32Array(Math.min(capacity, 1 << 18));
  }

  get count(): number {
    return this.written + this.bufLen;
  }

  get remaining(): number {
    return this.capacity - this.count;
  }

  /** Appends ids (at most `remaining`). */
  append(ids: Uint32Array): void {
    if (ids.length > this.remaining) throw new Error(`internal: shard ${this.file} overfilled`);
    let i = 0;
    while (i < ids.length) {
      const n = Math.min(ids.length - i, this.buf.length - this.bufLen);
      this.buf.set(ids.subarray(i, i + n), this.bufLen);
      this.bufLen += n;
      i += n;
      if (this.bufLen === this.buf.length) this.flushBuf();
    }
  }

  private flushBuf(): void {
    if (this.bufLen === 0) return;
    this.out.writeAt(new Uint8Array(this.buf.buffer, 0, this.bufLen * 4), SHARD_HEADER_BYTES + this.written * 4);
    this.written += this.bufLen;
    this.bufLen = 0;
  }

  /** Completes the shard: flush, final header, fsync, rename into place. Returns its sha256 and token count. */
  finish(): { sha256: string; tokens: number; bytes: number } {
    if (this.closed) throw new Error('internal: shard finished twice');
    this.closed = true;
    try {
      this.flushBuf();
      this.out.writeAt(encodeShardHeader({ version: SHARD_VERSION, vocabSize: this.vocabSize, tokens: this.written }), 0);
      const bytes = SHARD_HEADER_BYTES + this.written * 4;
      if (this.out.size !== bytes) throw new Error(`internal: shard ${this.file} has ${this.out.size} bytes, expected ${bytes}`);
    } catch (e) {
      this.out.abort();
      throw e;
    }
    this.out.commit();
    // The header is only final now, so the checksum is taken from the file (still in the page cache).
    return { sha256: sha256File(this.file), tokens: this.written, bytes: SHARD_HEADER_BYTES + this.written * 4 };
  }

  /** Abandons the shard and removes its temporary file. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.abort();
  }
}
