/**
 * `manifest.json`: what a prepared dataset directory holds and how it was made. It is written last (to a
 * temporary name, then renamed), so its presence means every shard it lists is complete. It holds no
 * timestamps: the same inputs and options give the same manifest bytes.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../files/atomic.js';
import path from 'node:path';
import type { InputFormat, SkipReason, TextMode } from './readers.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'lmforge-token-shards';
export const MANIFEST_VERSION = 1;

export type Split = 'train' | 'val';

export interface ShardRecord {
  /** File name inside the dataset directory. */
  file: string;
  tokens: number;
  bytes: number;
  sha256: string;
}

export interface SplitSummary {
  docs: number;
  tokens: number;
  /** UTF-8 bytes of the documents' text (for bits per byte: loss in nats * tokens / (ln 2 * textBytes)). */
  textBytes: number;
  shards: ShardRecord[];
}

export interface SourceRecord {
  path: string;
  format: InputFormat;
  /** null when the file could not be read. */
  bytes: number | null;
  sha256: string | null;
  /** Documents read from it (accepted + skipped). */
  docs: number;
  accepted: number;
  skipped: Partial<Record<SkipReason, number>>;
}

export interface PrepareSettings {
  field: string;
  textMode: TextMode;
  valFraction: number;
  shardTokens: number;
  maxDocBytes: number;
  onError: 'skip' | 'fail';
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  tokenizer: {
    /** sha256 of the tokenizer.json bytes: the tokenizer's identity. */
    sha256: string;
    /** Base name of the tokenizer file used (the path itself is machine-specific). */
    file: string;
    vocabSize: number;
    eotId: number;
    /** Literal special-token strings inside documents are encoded as ordinary text. */
    addedTokensInText: false;
  };
  shard: { headerBytes: number; dtype: 'uint32'; separator: 'eot-after-each-document' };
  settings: PrepareSettings;
  /** How documents are assigned: accepted document i (0-based, in input order) is val when floor((i+1)f) > floor(if). */
  splitRule: 'every-1/f-th-document';
  sources: SourceRecord[];
  docs: { read: number; accepted: number; skipped: number };
  skipped: Partial<Record<SkipReason, number>>;
  splits: Record<Split, SplitSummary>;
}

export function isValDoc(index: number, fraction: number): boolean {
  if (fraction <= 0) return false;
  return Math.floor((index + 1) * fraction) > Math.floor(index * fraction);
}

export function readManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${dir}: no ${MANIFEST_FILE}; this is not a prepared dataset (run 'lmforge prepare --input ... --out ${dir}', or finish an interrupted one by rerunning the same command)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); rerun 'lmforge prepare' to rewrite it`);
  }
  return checkManifest(parsed, file);
}

/**
 * Checks the parts of a manifest the loader and trainer rely on, so a damaged or hand-edited one gives one line
 * naming the field, never a TypeError deep in the loader. Shard names must be plain file names inside the
 * dataset directory: a manifest cannot make the loader open `../../etc/passwd`.
 */
export function checkManifest(parsed: unknown, file: string): Manifest {
  const fix = "rerun 'lmforge prepare' for this directory to rewrite it";
  const bad = (what: string): never => {
    throw new Error(`${file}: ${what}; the manifest is damaged or was edited: ${fix}`);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!isObj(parsed)) bad('the top level is not a JSON object');
  const m = parsed as Record<string, unknown>;
  if (m.format !== MANIFEST_FORMAT) throw new Error(`${file}: not an lmforge dataset manifest (format '${String(m.format)}')`);
  if (m.version !== MANIFEST_VERSION) throw new Error(`${file}: manifest version ${String(m.version)}, this lmforge reads ${MANIFEST_VERSION}; re-prepare the data`);
  const tok = m.tokenizer;
  if (!isObj(tok)) bad("'tokenizer' is missing or not an object");
  const t = tok as Record<string, unknown>;
  if (!(count(t.vocabSize) && (t.vocabSize as number) > 0)) bad(`tokenizer.vocabSize ${JSON.stringify(t.vocabSize)} is not a positive integer`);
  if (!(count(t.eotId) && (t.eotId as number) < (t.vocabSize as number)))
    bad(`tokenizer.eotId ${JSON.stringify(t.eotId)} is not a token id below vocabSize ${String(t.vocabSize)}`);
  if (typeof t.sha256 !== 'string') bad('tokenizer.sha256 is missing');
  if (!isObj(m.docs) || !count(m.docs.skipped)) bad("'docs' is missing or has no skipped count");
  if (!isObj(m.splits)) bad("'splits' is missing or not an object");
  const splits = m.splits as Record<string, unknown>;
  for (const name of ['train', 'val'] as const) {
    const sp = splits[name];
    if (sp === undefined) bad(`there is no '${name}' split (prepare always writes both, an empty one as tokens: 0)`);
    if (!isObj(sp)) bad(`splits.${name} is not an object`);
    const o = sp as Record<string, unknown>;
    for (const k of ['docs', 'tokens', 'textBytes'] as const)
      if (!count(o[k])) bad(`splits.${name}.${k} ${JSON.stringify(o[k])} is not a whole number >= 0`);
    if (!Array.isArray(o.shards)) bad(`splits.${name}.shards is not a list`);
    let sum = 0;
    (o.shards as unknown[]).forEach((sh, i) => {
      const where = `splits.${name}.shards[${i}]`;
      if (!isObj(sh)) bad(`${where} is not an object`);
      const r = sh as Record<string, unknown>;
      const f = r.file;
      if (typeof f !== 'string' || f === '' || f === '.' || f === '..' || /[/\\\0]/.test(f))
        throw new Error(`${file}: ${where}.file ${JSON.stringify(f)} is not a file name inside the dataset directory; refusing to open it (${fix})`);
      if (!count(r.tokens)) bad(`${where}.tokens ${JSON.stringify(r.tokens)} is not a whole number >= 0`);
      if (typeof r.sha256 !== 'string') bad(`${where}.sha256 is missing`);
      sum += r.tokens as number;
    });
    if (sum !== o.tokens) bad(`splits.${name}.tokens is ${String(o.tokens)} but its shards hold ${sum}`);
  }
  return parsed as Manifest;
}

/** Writes JSON safely (files/atomic.ts), so readers never see a half-written file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
