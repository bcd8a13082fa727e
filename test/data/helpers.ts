/** Shared helpers for the data tests: temp dirs, running the CLI, reading shards back. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/data/manifest.js';
import { SHARD_HEADER_BYTES, readShardHeader } from '../../src/data/shard.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = path.join(REPO, 'bin', 'lmforge.js');
export const FIXTURES = path.join(REPO, 'test', 'data', 'fixtures');

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lmforge-${tag}-`));
}

export function runCli(args: string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** All tokens of one split, concatenated in shard order. */
export function readSplit(dir: string, split: 'train' | 'val'): Uint32Array {
  const m = readManifest(dir);
  const parts = m.splits[split].shards.map((s) => {
    const f = path.join(dir, s.file);
    const h = readShardHeader(f);
    const b = fs.readFileSync(f);
    return new Uint32Array(b.buffer.slice(b.byteOffset + SHARD_HEADER_BYTES, b.byteOffset + SHARD_HEADER_BYTES + h.tokens * 4));
  });
  const out = new Uint32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Splits a token stream into documents at each separator (the separator is dropped). */
export function splitDocs(ids: Uint32Array, eot: number): number[][] {
  const docs: number[][] = [];
  let cur: number[] = [];
  for (const id of ids) {
    if (id === eot) {
      docs.push(cur);
      cur = [];
    } else cur.push(id);
  }
  if (cur.length) throw new Error('stream does not end with a separator');
  return docs;
}

/** Every file of a directory with its bytes, for byte-identical comparisons. */
export function dirBytes(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const n of fs.readdirSync(dir).sort()) m.set(n, fs.readFileSync(path.join(dir, n)));
  return m;
}

/** Deterministic pseudo-random generator for test inputs. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Varied text: multilingual, code, emoji, whitespace runs, combining characters, digits, special-token strings. */
export function variedTexts(seed: number, count: number): string[] {
  const r = rng(seed);
  const atoms = [
    'The quick brown fox', "it's", "WE'LL", 'jumps', 'über', 'naïve café', 'e\u0301', 'a\u0308\u0301', '\u1100\u1161',
    '日本語のテキスト', '中文分词', '한국어', 'Русский текст', 'عربي', 'हिन्दी', 'ελληνικά', '🙂', '👩‍👩‍👧', '🇫🇷', '🚀🚀',
    'def f(x):\n    return x**2', '{"a": [1, 2, 3]}', 'for (let i = 0; i < n; i++) {}', '\t\t', '   ', '\n\n\n', '\r\n', ' \n ',
    '12345678', '3.14159', '$100', '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<|fim_prefix|>',
    '\u00a0', '\u3000', 'x\u200by', '\ufeff', '...', '!!!', '—', '«»', 'ﬁ', 'Ａ',
  ];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 24);
    let s = '';
    for (let j = 0; j < n; j++) s += atoms[Math.floor(r() * atoms.length)]! + (r() < 0.6 ? ' ' : '');
    out.push(s);
  }
  return out;
}

/**
 * The documented split rule, worked in integers on the fraction's decimal digits (independent of the implementation):
 * document i is validation when floor((i+1)·f) > floor(i·f).
 */
export function isValExact(index: number, fraction: number): boolean {
  const [whole, digits = ''] = String(fraction).split('.');
  if (String(fraction).includes('e')) throw new Error(`isValExact: write the fraction ${fraction} with plain decimals`);
  const p = Number(whole! + digits);
  const q = 10 ** digits.length;
  return Math.floor(((index + 1) * p) / q) > Math.floor((index * p) / q);
}
