/**
 * Corpus preparation: raw documents in, uint32 token shards + manifest.json out.
 *
 * Determinism: documents are read in input order on the main thread and cut into batches by count and size
 * (a rule that depends only on the documents); batches are numbered, encoded by a pool of worker threads and
 * written strictly in batch order. Each split (train/val) is one token stream cut into shards of exactly
 * `shardTokens` tokens (the last one shorter), so the bytes never depend on the worker count.
 *
 * Resumability: a shard is written as `<name>.tmp` and renamed when complete; then `progress.json` records it
 * (sha256 and where in the document stream it ended). A rerun with the same inputs and settings verifies the
 * recorded shards, deletes anything else, skips encoding every document already inside them and continues
 * where each split stopped, giving the same bytes as an uninterrupted run.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EncodeReply, EncodeRequest, EncodeWorkerInit } from './encode-worker.js';
import {
  type Manifest,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type PrepareSettings,
  type ShardRecord,
  type SourceRecord,
  type Split,
  isValDoc,
  writeJsonAtomic,
} from './manifest.js';
import { ProgressReporter } from './prepare-progress.js';
import { type InputFormat, type RawDoc, type SkipReason, type SourceDigest, type TextMode, detectFormat, readDocs } from './readers.js';
import { SHARD_HEADER_BYTES, ShardWriter, readShardHeader, sha256File } from './shard.js';
import { loadTokenizer } from './tokenizer.js';

export interface PrepareOptions {
  inputs: string[];
  out: string;
  /** tokenizer.json, an HF directory, or undefined for Qwen3. */
  tokenizer?: string;
  field?: string;
  valFraction?: number;
  /** Worker threads (default: the number of CPUs). */
  workers?: number;
  textMode?: TextMode;
  onError?: 'skip' | 'fail';
  /** Tokens per shard (default 2^27 = 512 MiB files). */
  shardTokens?: number;
  /** Longest document (and JSONL line) accepted, in bytes (default 256 MiB). */
  maxDocBytes?: number;
  /** Show progress on stderr (default true). */
  progress?: boolean;
  /** Messages for the user (default: stderr). */
  log?: (line: string) => void;
  /** Write into a non-empty --out that holds no dataset (files of other names are kept). */
  force?: boolean;
  /** Test hook: called after each shard is recorded. */
  onShard?: (split: Split, index: number) => void;
}

export class PrepareError extends Error {}

const PROGRESS_FILE = 'progress.json';
/** A batch closes at this many documents or characters, whichever comes first. */
const BATCH_DOCS = 256;
const BATCH_CHARS = 1 << 20;
/** Long documents are encoded in pieces of about this many characters, cut at pre-token boundaries. */
const PIECE_CHARS = 1 << 16;

interface Position {
  /** Accepted-document index whose tokens come next. */
  doc: number;
  /** Tokens of that document already written. */
  offset: number;
}

interface RecordedShard extends ShardRecord {
  end: Position;
}

interface Progress {
  key: string;
  shards: Record<Split, RecordedShard[]>;
}

interface InputFile {
  path: string;
  format: InputFormat;
  size: number | null;
  mtimeMs: number | null;
  statError?: string;
}

function expandInputs(inputs: string[]): InputFile[] {
  const out: InputFile[] = [];
  const visit = (p: string, top: boolean): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (top && code === 'ENOENT') throw new PrepareError(`input '${p}' does not exist; check the path given to --input`);
      out.push({ path: p, format: detectFormat(p), size: null, mtimeMs: null, statError: (e as Error).message });
      return;
    }
    if (st.isDirectory()) {
      const names = fs.readdirSync(p).filter((n) => !n.startsWith('.')).sort();
      for (const n of names) visit(path.join(p, n), false);
      return;
    }
    out.push({ path: p, format: detectFormat(p), size: st.size, mtimeMs: st.mtimeMs });
  };
  for (const i of inputs) visit(i, true);
  if (out.length === 0) throw new PrepareError(`no input files found under ${inputs.join(', ')}`);
  return out;
}

async function* unreadable(why: string): AsyncGenerator<RawDoc> {
  yield { skip: 'unreadable', detail: `cannot read the file (${why})`, line: 1 };
}

function shardName(split: Split, index: number): string {
  return `${split}-${String(index).padStart(5, '0')}.bin`;
}

/** One split's token stream, cut into fixed-size shards. */
class SplitStream {
  shards: RecordedShard[];
  private writer: ShardWriter | null = null;
  tokens = 0;

  constructor(
    readonly split: Split,
    private readonly dir: string,
    private readonly vocabSize: number,
    private readonly shardTokens: number,
    done: RecordedShard[],
    private readonly onComplete: () => void,
  ) {
    this.shards = done.slice();
    this.tokens = done.reduce((a, s) => a + s.tokens, 0);
  }

  /** Where this split resumes: after its last recorded shard. */
  get resume(): Position {
    return this.shards.length ? this.shards[this.shards.length - 1]!.end : { doc: 0, offset: 0 };
  }

  /** Appends document `doc`'s tokens, dropping the first `skip` (already in a recorded shard). */
  append(doc: number, ids: Uint32Array, skip: number): void {
    let i = skip;
    while (i < ids.length) {
      if (!this.writer) this.writer = new ShardWriter(path.join(this.dir, shardName(this.split, this.shards.length)), this.vocabSize, this.shardTokens);
      const n = Math.min(this.writer.remaining, ids.length - i);
      this.writer.append(ids.subarray(i, i + n));
      i += n;
      this.tokens += n;
      if (this.writer.remaining === 0) this.close({ doc, offset: i });
    }
  }

  private close(end: Position): void {
    const w = this.writer!;
    this.writer = null;
    const r = w.finish();
    this.shards.push({ file: path.basename(w.file), tokens: r.tokens, bytes: r.bytes, sha256: r.sha256, end });
    this.onComplete();
  }

  /** Writes the last, shorter shard. */
  finish(end: Position): void {
    if (this.writer && this.writer.count > 0) this.close(end);
    else this.writer?.abort();
  }

  abort(): void {
    this.writer?.abort();
  }
}

/** Verifies recorded shards (size, header, checksum); keeps the longest valid prefix of each split. */
function verifiedShards(dir: string, recorded: RecordedShard[], log: (s: string) => void): RecordedShard[] {
  const ok: RecordedShard[] = [];
  for (const s of recorded) {
    const f = path.join(dir, s.file);
    try {
      const h = readShardHeader(f);
      if (h.tokens !== s.tokens || sha256File(f) !== s.sha256) throw new Error('checksum mismatch');
      ok.push(s);
    } catch (e) {
      log(`prepare: ${s.file} fails verification (${(e as Error).message}); it and later shards will be rebuilt`);
      break;
    }
  }
  return ok;
}

class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private readonly pending = new Map<number, { resolve: (r: { ids: Uint32Array; lens: Uint32Array }) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  static async start(n: number, init: EncodeWorkerInit): Promise<WorkerPool> {
    const pool = new WorkerPool();
    const url = new URL('./encode-worker.js', import.meta.url);
    await Promise.all(
      Array.from({ length: n }, () => {
        const w = new Worker(url, { workerData: init });
        pool.workers.push(w);
        return new Promise<void>((resolve, reject) => {
          const onMsg = (m: EncodeReply | { ready: true }): void => {
            if ('ready' in m) {
              pool.idle.push(w);
              resolve();
              return;
            }
            pool.onReply(w, m);
          };
          w.on('message', onMsg);
          w.on('error', (e) => {
            pool.fail(e);
            reject(e);
          });
          w.on('exit', (code) => {
            if (code !== 0) pool.fail(new Error(`encode worker exited with code ${code}`));
          });
        });
      }),
    );
    return pool;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private onReply(w: Worker, m: EncodeReply): void {
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    const next = this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
    if (!p) return;
    if (m.ok) p.resolve({ ids: m.ids, lens: m.lens });
    else p.reject(new Error(`tokenizer failed: ${m.error}`));
  }

  private async acquire(): Promise<Worker> {
    if (this.failure) throw this.failure;
    const w = this.idle.pop();
    if (w) return w;
    return new Promise((r) => this.waiting.push(r));
  }

  /** Waits for a free worker, then hands back the (boxed, so not awaited here) promise of the batch's result. */
  async submit(req: EncodeRequest): Promise<{ result: Promise<{ ids: Uint32Array; lens: Uint32Array }> }> {
    const w = await this.acquire();
    const result = new Promise<{ ids: Uint32Array; lens: Uint32Array }>((resolve, reject) => this.pending.set(req.id, { resolve, reject }));
    // Observed at once; drainOne awaits it again in order.
    result.catch(() => undefined);
    w.postMessage(req);
    return { result };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

interface BatchMeta {
  docs: { index: number; split: Split }[];
  result: Promise<{ ids: Uint32Array; lens: Uint32Array }>;
}

function settingsOf(o: PrepareOptions): PrepareSettings {
  const s: PrepareSettings = {
    field: o.field ?? 'text',
    textMode: o.textMode ?? 'file',
    valFraction: o.valFraction ?? 0.005,
    shardTokens: o.shardTokens ?? 1 << 27,
    maxDocBytes: o.maxDocBytes ?? 256 << 20,
    onError: o.onError ?? 'skip',
  };
  if (!(s.valFraction >= 0 && s.valFraction < 1)) throw new PrepareError(`--val-fraction must be in [0, 1), got ${s.valFraction}`);
  if (!Number.isInteger(s.shardTokens) || s.shardTokens < 1) throw new PrepareError(`--shard-tokens must be a positive integer, got ${s.shardTokens}`);
  if (s.textMode !== 'file' && s.textMode !== 'blank-lines') throw new PrepareError(`--text-mode must be 'file' or 'blank-lines', got '${String(s.textMode)}'`);
  if (s.onError !== 'skip' && s.onError !== 'fail') throw new PrepareError(`--on-error must be 'skip' or 'fail', got '${String(s.onError)}'`);
  if (!(s.maxDocBytes > 0)) throw new PrepareError(`--max-doc-mb must be positive`);
  return s;
}

/** What a directory may hold before a fresh prepare: leftovers of one killed before it wrote progress.json. */
const FRESH_LEFTOVER = /^((train|val)-\d+\.bin|progress\.json)\.tmp(-\d+)?$/;

/**
 * --out must be a directory that is missing, empty, or a dataset this command prepared (it has progress.json).
 * Anything else is refused unless `force`: prepare would write beside foreign files and replace any of the
 * same names (manifest.json).
 */
function checkOutDir(dir: string, force: boolean): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new PrepareError(`--out ${dir} exists and is not a directory; choose a directory for the dataset`);
  const names = fs.readdirSync(dir);
  if (names.includes(PROGRESS_FILE) || force) return;
  const foreign = names.filter((n) => !FRESH_LEFTOVER.test(n));
  if (foreign.length)
    throw new PrepareError(
      `--out ${dir} is not empty (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', ...' : ''}) and holds no dataset being prepared; ` +
        `choose a new or empty directory, or pass --force to write the dataset (manifest.json, progress.json, train-*.bin, val-*.bin) beside what is there`,
    );
}

/** Prepares (or finishes preparing) a dataset directory. Returns its manifest. */
export async function prepare(opts: PrepareOptions): Promise<Manifest> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const settings = settingsOf(opts);
  const tok = loadTokenizer(opts.tokenizer);
  if (tok.eotId < 0) throw new PrepareError(`${tok.path}: the tokenizer has no '<|endoftext|>' token, which lmforge uses as the document separator`);
  const files = expandInputs(opts.inputs);
  const workers = Math.max(1, Math.floor(opts.workers ?? os.availableParallelism()));
  const dir = opts.out;
  checkOutDir(dir, opts.force === true);
  fs.mkdirSync(dir, { recursive: true });

  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, tokenizer: tok.sha256, settings, files: files.map((f) => [f.path, f.size, f.mtimeMs]) }))
    .digest('hex');

  // Resume state: a complete manifest for the same key means there is nothing to do.
  const manifestPath = path.join(dir, MANIFEST_FILE);
  const progressPath = path.join(dir, PROGRESS_FILE);
  let prior: Progress | null = null;
  try {
    prior = JSON.parse(fs.readFileSync(progressPath, 'utf8')) as Progress;
  } catch {
    prior = null;
  }
  if (prior && prior.key !== key) {
    const listed = fs.readdirSync(dir).filter((n) => /^(train|val)-\d+\.bin$/.test(n));
    if (listed.length)
      throw new PrepareError(`${dir} holds shards prepared from other inputs or settings; choose a new --out or empty that directory`);
    prior = null;
  }
  if (!prior && fs.readdirSync(dir).some((n) => /^(train|val)-\d+\.bin$/.test(n)))
    throw new PrepareError(`${dir} holds shards but no ${PROGRESS_FILE} to say how they were made; choose a new --out or empty that directory`);
  if (prior && fs.existsSync(manifestPath)) {
    const done = verifiedShards(dir, [...prior.shards.train, ...prior.shards.val], log);
    if (done.length === prior.shards.train.length + prior.shards.val.length) {
      log(`prepare: ${dir} is already prepared from these inputs (all shards verified)`);
      return JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
    }
  }
  fs.rmSync(manifestPath, { force: true });
  const recorded: Record<Split, RecordedShard[]> = {
    train: prior ? verifiedShards(dir, prior.shards.train, log) : [],
    val: prior ? verifiedShards(dir, prior.shards.val, log) : [],
  };
  // Anything else that looks like ours (partial .tmp files, shards past a failed one) is removed.
  const keep = new Set([...recorded.train, ...recorded.val].map((s) => s.file));
  for (const n of fs.readdirSync(dir))
    if ((/^(train|val)-\d+\.bin(\.tmp(-\d+)?)?$/.test(n) && !keep.has(n)) || /\.json\.tmp(-\d+)?$/.test(n)) fs.rmSync(path.join(dir, n), { force: true });
  if (keep.size) log(`prepare: resuming: ${keep.size} complete shard(s) verified and kept`);

  const saveProgress = (): void => writeJsonAtomic(progressPath, { key, shards: { train: streams.train.shards, val: streams.val.shards } });
  const streams: Record<Split, SplitStream> = {
    train: new SplitStream('train', dir, tok.vocabSize, settings.shardTokens, recorded.train, () => {
      saveProgress();
      opts.onShard?.('train', streams.train.shards.length - 1);
    }),
    val: new SplitStream('val', dir, tok.vocabSize, settings.shardTokens, recorded.val, () => {
      saveProgress();
      opts.onShard?.('val', streams.val.shards.length - 1);
    }),
  };
  saveProgress();
  // Fixed now: the streams' own positions move on as this run completes shards.
  const start: Record<Split, Position> = { train: streams.train.resume, val: streams.val.resume };
  const resumeFrom = Math.min(start.train.doc, start.val.doc);

  // Rust-side parallelism off: the worker threads are the parallelism (and one worker means one core).
  process.env.TOKENIZERS_PARALLELISM = 'false';
  const pool = await WorkerPool.start(workers, { plainJson: tok.plainJson(), eotId: tok.eotId, pieceChars: PIECE_CHARS });

  const totalBytes = files.reduce((a, f) => a + (f.size ?? 0), 0);
  const reporter = opts.progress === false ? null : new ProgressReporter(totalBytes);
  const counts = { bytesRead: 0, docs: 0, tokens: 0 };
  const skipped: Partial<Record<SkipReason, number>> = {};
  const splitDocs: Record<Split, number> = { train: 0, val: 0 };
  const textBytes: Record<Split, number> = { train: 0, val: 0 };
  const sources: SourceRecord[] = [];
  let accepted = 0;
  let read = 0;

  // Batches in flight, in order; the writer drains them from the front.
  const inflight: BatchMeta[] = [];
  let batchId = 0;
  let cur: { texts: string[]; docs: BatchMeta['docs']; chars: number } = { texts: [], docs: [], chars: 0 };

  const drainOne = async (): Promise<void> => {
    const b = inflight.shift()!;
    const { ids, lens } = await b.result;
    let o = 0;
    for (let j = 0; j < b.docs.length; j++) {
      const { index, split } = b.docs[j]!;
      const docIds = ids.subarray(o, o + lens[j]!);
      o += lens[j]!;
      const r = start[split];
      if (index < r.doc) continue;
      streams[split].append(index, docIds, index === r.doc ? r.offset : 0);
      counts.tokens += docIds.length;
    }
  };
  const dispatch = async (): Promise<void> => {
    if (cur.texts.length === 0) return;
    const req: EncodeRequest = { id: batchId++, texts: cur.texts };
    const docs = cur.docs;
    cur = { texts: [], docs: [], chars: 0 };
    // Bounded memory: at most 2 batches per worker are queued or being encoded.
    while (inflight.length >= 2 * workers) await drainOne();
    inflight.push({ docs, result: (await pool.submit(req)).result });
  };

  try {
    for (const f of files) {
      const digest: SourceDigest = { bytes: 0, sha256: '' };
      const src: SourceRecord = { path: f.path, format: f.format, bytes: null, sha256: null, docs: 0, accepted: 0, skipped: {} };
      sources.push(src);
      const before = counts.bytesRead;
      const docs: AsyncIterable<RawDoc> = f.statError ? unreadable(f.statError) : readDocs(f.path, f.format, settings, digest);
      for await (const d of docs) {
        read++;
        src.docs++;
        counts.bytesRead = before + digest.bytes;
        if (d.skip) {
          if (settings.onError === 'fail')
            throw new PrepareError(`${f.path}:${d.line}: ${d.detail ?? d.skip} (rerun with --on-error skip to skip and count such input)`);
          skipped[d.skip] = (skipped[d.skip] ?? 0) + 1;
          src.skipped[d.skip] = (src.skipped[d.skip] ?? 0) + 1;
          continue;
        }
        const text = d.text!;
        const index = accepted++;
        src.accepted++;
        const split: Split = isValDoc(index, settings.valFraction) ? 'val' : 'train';
        splitDocs[split]++;
        textBytes[split] += Buffer.byteLength(text, 'utf8');
        counts.docs++;
        if (index < resumeFrom) continue; // already inside complete shards
        cur.texts.push(text);
        cur.docs.push({ index, split });
        cur.chars += text.length;
        if (cur.texts.length >= BATCH_DOCS || cur.chars >= BATCH_CHARS) await dispatch();
        reporter?.update(counts);
      }
      counts.bytesRead = before + digest.bytes;
      if (digest.sha256) {
        src.bytes = digest.bytes;
        src.sha256 = digest.sha256;
      }
    }
    await dispatch();
    while (inflight.length) await drainOne();
    streams.train.finish({ doc: accepted, offset: 0 });
    streams.val.finish({ doc: accepted, offset: 0 });
    reporter?.update(counts, true);
  } catch (e) {
    streams.train.abort();
    streams.val.abort();
    // Let batches already handed to workers settle so no rejection goes unobserved.
    await Promise.allSettled(inflight.map((b) => b.result));
    throw e;
  } finally {
    reporter?.done();
    await pool.close();
  }

  const strip = (s: RecordedShard[]): ShardRecord[] => s.map(({ file, tokens, bytes, sha256 }) => ({ file, tokens, bytes, sha256 }));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    tokenizer: { sha256: tok.sha256, file: path.basename(tok.path), vocabSize: tok.vocabSize, eotId: tok.eotId, addedTokensInText: false },
    shard: { headerBytes: SHARD_HEADER_BYTES, dtype: 'uint32', separator: 'eot-after-each-document' },
    settings,
    splitRule: 'every-1/f-th-document',
    sources,
    docs: { read, accepted, skipped: read - accepted },
    skipped,
    splits: {
      train: { docs: splitDocs.train, tokens: streams.train.tokens, textBytes: textBytes.train, shards: strip(streams.train.shards) },
      val: { docs: splitDocs.val, tokens: streams.val.tokens, textBytes: textBytes.val, shards: strip(streams.val.shards) },
    },
  };
  writeJsonAtomic(manifestPath, manifest);
  const nSkipped = read - accepted;
  if (nSkipped > 0) {
    const parts = Object.entries(skipped).map(([k, v]) => `${v} ${k}`);
    log(`prepare: skipped ${nSkipped} of ${read} documents: ${parts.join(', ')} (counts per source in ${manifestPath}; --on-error fail stops at the first)`);
  }
  if (settings.valFraction > 0 && splitDocs.val === 0)
    log(`prepare: warning: no document went to the val split (${accepted} documents, --val-fraction ${settings.valFraction}); use more documents, a larger --val-fraction, or --text-mode blank-lines`);
  return manifest;
}
