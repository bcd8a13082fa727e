/**
 * Streaming document readers for every input format `prepare` takes: plain text (one document per file or per
 * blank-line-separated block), JSON Lines, JSON Lines compressed with gzip or zstd, and Parquet with a text
 * column. Each yields documents in file order, with bad ones marked by a skip reason instead of thrown, and
 * hashes the raw file bytes as it goes (the manifest records every source's size and sha256).
 * Memory is bounded: raw bytes stream in 1 MiB reads, and no line is buffered past `maxDocBytes`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

export type InputFormat = 'text' | 'text.gz' | 'text.zst' | 'jsonl' | 'jsonl.gz' | 'jsonl.zst' | 'parquet';
export type TextMode = 'file' | 'blank-lines';

/** Why a document (or the rest of a file) was not used. Every one of these is counted in the manifest. */
export type SkipReason =
  | 'invalid_utf8'
  | 'empty'
  | 'too_long'
  | 'not_json'
  | 'missing_field'
  | 'truncated'
  | 'unreadable';

export interface RawDoc {
  /** The document text (absent when skipped). */
  text?: string;
  skip?: SkipReason;
  /** What went wrong, for --on-error fail and the log. */
  detail?: string;
  /** 1-based line (JSONL, text) or row (Parquet) where the document starts. */
  line: number;
}

export interface ReadOptions {
  /** JSON / Parquet field holding the text. */
  field: string;
  textMode: TextMode;
  /** Documents (and JSONL lines) longer than this are skipped as too_long without being buffered whole. */
  maxDocBytes: number;
}

export interface SourceDigest {
  bytes: number;
  sha256: string;
}

/** By name: `.parquet`; `.jsonl`/`.ndjson`/`.json`, optionally + `.gz`/`.zst`; anything else is plain text (also + `.gz`/`.zst`). */
export function detectFormat(file: string): InputFormat {
  let f = file.toLowerCase();
  if (f.endsWith('.parquet')) return 'parquet';
  let comp = '';
  if (f.endsWith('.gz')) {
    comp = '.gz';
    f = f.slice(0, -3);
  } else if (f.endsWith('.zst') || f.endsWith('.zstd')) {
    comp = '.zst';
    f = f.slice(0, f.lastIndexOf('.'));
  }
  const json = f.endsWith('.jsonl') || f.endsWith('.ndjson') || f.endsWith('.json');
  return ((json ? 'jsonl' : 'text') + comp) as InputFormat;
}

function compressionOf(format: InputFormat): 'gzip' | 'zstd' | 'none' {
  return format.endsWith('.gz') ? 'gzip' : format.endsWith('.zst') ? 'zstd' : 'none';
}

const READ_CHUNK = 1 << 20;

/** Raw file bytes in order, hashed on the way. */
async function* rawChunks(file: string, digest: SourceDigest): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      digest.bytes += bytesRead;
      yield chunk;
    }
  } finally {
    await fh.close();
  }
  digest.sha256 = hash.digest('hex');
}

class TruncatedInput extends Error {}

async function* gunzipChunks(src: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
  const gunzip = zlib.createGunzip();
  const input = Readable.from(src, { objectMode: false });
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  try {
    for await (const c of gunzip) yield c as Buffer;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR' || /unexpected end/i.test(String(e)))
      throw new TruncatedInput(`gzip stream is truncated or corrupt (${(e as Error).message})`);
    throw e;
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

async function* unzstdChunks(src: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  const d = new ZstdDecompress((chunk) => {
    out.push(chunk);
  });
  const step = (c: Uint8Array, final: boolean): void => {
    try {
      d.push(c, final);
    } catch (e) {
      throw new TruncatedInput(`zstd stream is truncated or corrupt (${(e as Error).message})`);
    }
  };
  for await (const c of src) {
    step(c, false);
    if (out.length) {
      const o = out;
      out = [];
      yield* o;
    }
  }
  step(new Uint8Array(0), true);
  yield* out;
}

interface Line {
  bytes: Uint8Array | null; // null: the line was longer than the limit and was dropped
  line: number;
}

/** Splits a byte stream into lines ('\n', an optional '\r' before it is kept and trimmed by the caller). */
async function* lines(src: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Line> {
  let parts: Uint8Array[] = [];
  let partLen = 0;
  let overflow = false;
  let lineNo = 1;
  for await (const chunk of src) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!overflow) {
        if (partLen + (end - start) > maxBytes) {
          overflow = true;
          parts = [];
          partLen = 0;
        } else if (end > start) {
          parts.push(chunk.subarray(start, end));
          partLen += end - start;
        }
      }
      if (nl < 0) break;
      yield { bytes: overflow ? null : concat(parts, partLen), line: lineNo };
      lineNo++;
      parts = [];
      partLen = 0;
      overflow = false;
      start = nl + 1;
    }
    // Chunks are reused by nobody, but copy the pending tail so it doesn't pin a whole 1 MiB chunk per piece.
    if (parts.length > 64) parts = [concat(parts, partLen)];
  }
  if (overflow || partLen > 0) yield { bytes: overflow ? null : concat(parts, partLen), line: lineNo };
}

function concat(parts: Uint8Array[], len: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Uint8Array): string | null {
  try {
    return strictUtf8.decode(b);
  } catch {
    return null;
  }
}

function isBlank(s: string): boolean {
  return s.trim().length === 0;
}

/** A document from decoded text, or the reason it can't be one. */
function textDoc(text: string, line: number): RawDoc {
  return isBlank(text) ? { skip: 'empty', detail: 'document is empty or only whitespace', line } : { text, line };
}

function jsonDoc(bytes: Uint8Array | null, line: number, field: string, maxDocBytes: number): RawDoc | null {
  if (bytes === null) return { skip: 'too_long', detail: `line is longer than ${maxDocBytes} bytes (--max-doc-mb)`, line };
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 13) end--;
  const str = decodeUtf8(bytes.subarray(0, end));
  if (str === null) return { skip: 'invalid_utf8', detail: 'line is not valid UTF-8', line };
  if (isBlank(str)) return null; // blank lines between records are not documents
  let obj: unknown;
  try {
    obj = JSON.parse(str);
  } catch (e) {
    return { skip: 'not_json', detail: `line is not JSON (${(e as Error).message})`, line };
  }
  const v = obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Record<string, unknown>)[field] : undefined;
  if (typeof v !== 'string') return { skip: 'missing_field', detail: `line has no string field '${field}'`, line };
  return textDoc(v, line);
}

async function* jsonlDocs(src: AsyncIterable<Uint8Array>, opts: ReadOptions): AsyncGenerator<RawDoc> {
  for await (const l of lines(src, opts.maxDocBytes)) {
    const d = jsonDoc(l.bytes, l.line, opts.field, opts.maxDocBytes);
    if (d) yield d;
  }
}

async function* textDocs(src: AsyncIterable<Uint8Array>, opts: ReadOptions): AsyncGenerator<RawDoc> {
  if (opts.textMode === 'file') {
    const parts: Uint8Array[] = [];
    let len = 0;
    let over = false;
    for await (const c of src) {
      len += c.length;
      if (len > opts.maxDocBytes) over = true;
      if (!over) parts.push(c.slice());
    }
    if (over) {
      yield { skip: 'too_long', detail: `file is ${len} bytes, over the ${opts.maxDocBytes}-byte document limit (--max-doc-mb)`, line: 1 };
      return;
    }
    const s = decodeUtf8(concat(parts, len));
    yield s === null ? { skip: 'invalid_utf8', detail: 'file is not valid UTF-8', line: 1 } : textDoc(s, 1);
    return;
  }
  // blank-lines: a document is a run of non-blank lines.
  let block: Uint8Array[] = [];
  let blockLen = 0;
  let blockLine = 0;
  let over = false;
  const flush = (): RawDoc | null => {
    if (blockLine === 0) return null;
    const line = blockLine;
    const parts = block;
    const len = blockLen;
    const wasOver = over;
    block = [];
    blockLen = 0;
    blockLine = 0;
    over = false;
    if (wasOver) return { skip: 'too_long', detail: `paragraph is longer than ${opts.maxDocBytes} bytes (--max-doc-mb)`, line };
    const s = decodeUtf8(concat(parts, len));
    if (s === null) return { skip: 'invalid_utf8', detail: 'paragraph is not valid UTF-8', line };
    return textDoc(s.replace(/\r\n/g, '\n').replace(/\n$/, ''), line);
  };
  const NL = new Uint8Array([10]);
  for await (const l of lines(src, opts.maxDocBytes)) {
    const blank = l.bytes !== null && l.bytes.every((b) => b === 32 || b === 9 || b === 13);
    if (blank) {
      const d = flush();
      if (d) yield d;
      continue;
    }
    if (blockLine === 0) blockLine = l.line;
    if (l.bytes === null || blockLen + l.bytes.length + 1 > opts.maxDocBytes) {
      over = true;
      block = [];
      blockLen = 0;
    }
    if (!over && l.bytes) {
      block.push(l.bytes, NL);
      blockLen += l.bytes.length + 1;
    }
  }
  const d = flush();
  if (d) yield d;
}

async function* parquetDocs(file: string, opts: ReadOptions, digest: SourceDigest): AsyncGenerator<RawDoc> {
  // Parquet is read by byte ranges (footer, then one row group at a time); the checksum is a separate pass.
  for await (const c of rawChunks(file, digest)) void c;
  const buf = await asyncBufferFromFile(file);
  const meta = await parquetMetadataAsync(buf);
  const leaf = meta.schema.find((s) => s.name === opts.field);
  if (!leaf) {
    const names = meta.schema.slice(1).map((s) => s.name).join(', ');
    throw new Error(`${file}: Parquet file has no column '${opts.field}' (columns: ${names}); pass --field NAME`);
  }
  let rowStart = 0;
  for (const rg of meta.row_groups) {
    const n = Number(rg.num_rows);
    let rows: unknown[][] = [];
    await parquetRead({
      file: buf,
      metadata: meta,
      columns: [opts.field],
      rowStart,
      rowEnd: rowStart + n,
      compressors,
      utf8: false,
      onComplete: (r: unknown[][]) => {
        rows = r;
      },
    });
    for (let i = 0; i < rows.length; i++) {
      const v = rows[i]![0];
      const line = rowStart + i + 1;
      if (v instanceof Uint8Array) {
        if (v.length > opts.maxDocBytes) yield { skip: 'too_long', detail: `row is longer than ${opts.maxDocBytes} bytes`, line };
        else {
          const s = decodeUtf8(v);
          yield s === null ? { skip: 'invalid_utf8', detail: 'row is not valid UTF-8', line } : textDoc(s, line);
        }
      } else if (typeof v === 'string') yield textDoc(v, line);
      else yield { skip: 'missing_field', detail: `row has no string value in column '${opts.field}'`, line };
    }
    rowStart += n;
  }
}

/**
 * Every document of one input file, in order. A truncated compressed stream ends the file with one
 * `truncated` record (documents before the damage are kept; the partial line at the break is dropped);
 * an unreadable file yields one `unreadable` record.
 */
export async function* readDocs(file: string, format: InputFormat, opts: ReadOptions, digest: SourceDigest): AsyncGenerator<RawDoc> {
  let lastLine = 0;
  try {
    if (format === 'parquet') {
      for await (const d of parquetDocs(file, opts, digest)) {
        lastLine = d.line;
        yield d;
      }
      return;
    }
    // A partial line at a break in a compressed stream is never yielded: the exception leaves lines() first.
    const raw = rawChunks(file, digest);
    const comp = compressionOf(format);
    const bytes = comp === 'gzip' ? gunzipChunks(raw) : comp === 'zstd' ? unzstdChunks(raw) : raw;
    const docs = format.startsWith('text') ? textDocs(bytes, opts) : jsonlDocs(bytes, opts);
    for await (const d of docs) {
      lastLine = d.line;
      yield d;
    }
  } catch (e) {
    if (e instanceof TruncatedInput) {
      yield { skip: 'truncated', detail: e.message, line: lastLine + 1 };
      return;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code && /^E[A-Z]+$/.test(code)) {
      yield { skip: 'unreadable', detail: `cannot read the file (${(e as Error).message})`, line: lastLine + 1 };
      return;
    }
    throw e;
  }
}
