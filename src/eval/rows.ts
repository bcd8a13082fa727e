/**
 * Rows of a task's data file, as the files are distributed: JSON Lines (`.jsonl`, `.json`, `.ndjson`, optionally
 * `.gz` / `.zst`) or Parquet (the Hugging Face hub's format; nested lists and structs come back as arrays and
 * objects). Every row keeps its place in the file (1-based line or row) so that errors can name it.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

export interface Row {
  fields: Record<string, unknown>;
  /** 1-based line (JSON Lines) or row (Parquet). */
  line: number;
}

/** A problem with the data, named by file and line; the CLI prints its message as one line. */
export class EvalDataError extends Error {}

/** "FILE:LINE" for JSON Lines, "FILE row N" for Parquet. */
export function where(file: string, line: number): string {
  return file.toLowerCase().endsWith('.parquet') ? `${file} row ${line}` : `${file}:${line}`;
}

function isParquet(file: string): boolean {
  return file.toLowerCase().endsWith('.parquet');
}

/** Parquet INT64 arrives as bigint; task fields are small, so plain numbers (recursively) are what parsers see. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

function readText(file: string): string {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EvalDataError(`${file}: cannot read the data file (${code ?? (e as Error).message})`);
  }
  const lower = file.toLowerCase();
  try {
    if (lower.endsWith('.gz')) raw = gunzipSync(raw);
    else if (lower.endsWith('.zst') || lower.endsWith('.zstd')) raw = Buffer.from(zstdDecompress(raw));
  } catch (e) {
    throw new EvalDataError(`${file}: cannot decompress (${(e as Error).message}); is the file complete?`);
  }
  return raw.toString('utf8');
}

/** Up to `limit` rows (all when undefined), in file order. Blank JSON lines are skipped. */
export async function readRows(file: string, limit?: number): Promise<Row[]> {
  const max = limit ?? Infinity;
  if (isParquet(file)) {
    let objects: Record<string, unknown>[];
    try {
      const buf = await asyncBufferFromFile(file);
      objects = await parquetReadObjects({ file: buf, compressors, rowEnd: Number.isFinite(max) ? max : undefined });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw new EvalDataError(`${file}: cannot read the data file (${(e as NodeJS.ErrnoException).code})`);
      throw new EvalDataError(`${file}: not a readable Parquet file (${(e as Error).message})`);
    }
    return objects.slice(0, max).map((o, i) => ({ fields: plain(o) as Record<string, unknown>, line: i + 1 }));
  }
  const rows: Row[] = [];
  const lines = readText(file).split('\n');
  for (let i = 0; i < lines.length && rows.length < max; i++) {
    const text = lines[i]!.trim();
    if (text === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new EvalDataError(`${where(file, i + 1)}: not valid JSON (${(e as Error).message}); each line must be one JSON object`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new EvalDataError(`${where(file, i + 1)}: expected a JSON object per line, got ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`);
    rows.push({ fields: v as Record<string, unknown>, line: i + 1 });
  }
  return rows;
}
