/**
 * `manifest.json`: what a prepared dataset directory holds and how it was made. It is written last (to a
 * temporary name, then renamed), so its presence means every shard it lists is complete. It holds no
 * timestamps: the same inputs and options give the same manifest bytes.
 */
import fs from 'node:fs';
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
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); rerun 'lmforge prepare' to rewrite it`);
  }
  if (m.format !== MANIFEST_FORMAT) throw new Error(`${file}: not an lmforge dataset manifest (format '${String(m.format)}')`);
  if (m.version !== MANIFEST_VERSION) throw new Error(`${file}: manifest version ${m.version}, this lmforge reads ${MANIFEST_VERSION}; re-prepare the data`);
  return m;
}

/** Writes JSON to a temporary name, fsyncs and renames, so readers never see a half-written file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = file + '.tmp';
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
