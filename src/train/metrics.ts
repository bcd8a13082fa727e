/**
 * The run's metrics log: `<run>/metrics.jsonl`, one JSON object per line, `{kind, step, ...}`.
 *
 * Durability: every record is written synchronously on an append-mode descriptor (all of its bytes, or an error
 * naming the file: files/atomic.ts writeAll), so once `append` returns the line is in the kernel and a killed process loses nothing; a kill *during* the write can
 * leave at most that one line torn. Readers drop a torn last line, and opening the log for appending cuts it
 * off first so the next record starts on a clean line. (A power cut needs fsync: `sync()` does it, and the
 * trainer calls it at checkpoints.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES } from '../io/run-dir.js';
import { writeAll, writeFileAtomic } from '../files/atomic.js';

export type MetricKind = 'train' | 'eval' | 'event';
export type MetricValue = string | number | boolean | null;

/** Fields every record has; the rest are free-form scalars. */
export interface MetricRecord {
  kind: MetricKind;
  /** Optimizer steps completed when the record was written. */
  step: number;
  [field: string]: MetricValue | undefined;
}

/** What the trainer writes each logged step (the report plots these names). */
export interface TrainFields {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Tokens seen so far. */
  tokens?: number;
  /** Model FLOPs utilisation in [0, 1] on a GPU with a known peak. */
  mfu?: number;
  /** Achieved GFLOP/s (CPU, or a GPU without a peak). */
  gflops?: number;
  /** Seconds since the run started. */
  time?: number;
  [field: string]: MetricValue | undefined;
}
export interface TrainRecord extends TrainFields {
  kind: 'train';
}

/**
 * What the trainer writes after each evaluation: on the validation split (loss, ppl, bpb), or on a downstream
 * task (`task`, `n`, and the task's metrics such as acc, acc_norm, each with `<metric>_stderr`; src/eval).
 */
export interface EvalFields {
  step: number;
  loss?: number;
  task?: string;
  ppl?: number;
  bpb?: number;
  [field: string]: MetricValue | undefined;
}
export interface EvalRecord extends EvalFields {
  kind: 'eval';
}

/** Free-form happenings: checkpoint written, step skipped for a NaN, resume. */
export interface EventRecord extends MetricRecord {
  kind: 'event';
  event: string;
}

export class MetricsError extends Error {}

export const METRICS_FILE = RUN_FILES.metrics;
const KINDS: readonly string[] = ['train', 'eval', 'event'];

export function metricsPath(runDir: string): string {
  return path.join(runDir, METRICS_FILE);
}

export interface ReadResult {
  records: MetricRecord[];
  /** True when the last line was cut off mid-write (and was dropped). */
  tornTail: boolean;
}

/** Parses metrics text: a malformed last line is a torn write and is dropped; a malformed earlier line is an error. */
export function parseMetrics(text: string, source: string = METRICS_FILE): ReadResult {
  const lines = text.split('\n');
  // A complete file ends in '\n', so the final split piece is ''; anything else there is a torn write.
  const last = lines.pop() ?? '';
  const records: MetricRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const rec = parseRecord(line);
    if (typeof rec === 'string')
      throw new MetricsError(
        `${source}: line ${i + 1} is not a metrics record (${rec}): '${line.slice(0, 80)}'. ` +
          `The file was edited or corrupted; remove or fix that line.`,
      );
    records.push(rec);
  }
  let tornTail = false;
  if (last.trim() !== '') {
    // An unterminated last line that still parses whole is kept (e.g. a hand-written file without a final newline).
    const rec = parseRecord(last);
    if (typeof rec === 'string') tornTail = true;
    else records.push(rec);
  }
  return { records, tornTail };
}

/** Returns the record, or a string saying why the line is not one. */
function parseRecord(line: string): MetricRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'invalid JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o.kind !== 'string' || !KINDS.includes(o.kind)) return `kind must be one of ${KINDS.join(', ')}`;
  if (typeof o.step !== 'number' || !Number.isFinite(o.step)) return 'step must be a number';
  return o as MetricRecord;
}

/** Reads `<runDir>/metrics.jsonl`, tolerating a torn last line. A missing file is an error naming the path. */
export function readMetrics(runDir: string): MetricRecord[] {
  return readMetricsDetailed(runDir).records;
}

export function readMetricsDetailed(runDir: string): ReadResult {
  const file = metricsPath(runDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new MetricsError(`${file} does not exist: is '${runDir}' a run directory written by 'lmforge train'?`);
    throw e;
  }
  return parseMetrics(text, file);
}

/** JSON.stringify that writes non-finite numbers as null (JSON has no NaN) so a NaN loss stays a valid line. */
function serialise(rec: MetricRecord): string {
  return JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

/** kind and step lead the line; a stray `kind` field in the input cannot change the record's kind. */
function withKind(kind: MetricKind, fields: { step: number; [field: string]: MetricValue | undefined }): MetricRecord {
  const rec: MetricRecord = { kind, step: fields.step };
  for (const [k, v] of Object.entries(fields)) if (k !== 'kind' && k !== 'step') rec[k] = v;
  return rec;
}

export interface OpenOptions {
  /**
   * Resuming from a checkpoint taken after this many steps: records with a larger step (written after that
   * checkpoint by the run that died) are dropped, so the resumed run re-writes them without duplicates.
   */
  resumeStep?: number;
}

export class MetricsLog {
  readonly file: string;
  private fd: number | null;

  /** Opens (creating the run directory and the file as needed) for appending. */
  constructor(runDir: string, opts: OpenOptions = {}) {
    fs.mkdirSync(runDir, { recursive: true });
    this.file = metricsPath(runDir);
    if (opts.resumeStep !== undefined) MetricsLog.truncateAfter(runDir, opts.resumeStep);
    else MetricsLog.cutTornTail(this.file);
    this.fd = fs.openSync(this.file, 'a');
  }

  /** Rewrites the log atomically keeping only records with step <= `step` (and dropping a torn tail). */
  static truncateAfter(runDir: string, step: number): { kept: number; dropped: number } {
    const file = metricsPath(runDir);
    if (!fs.existsSync(file)) return { kept: 0, dropped: 0 };
    const { records } = parseMetrics(fs.readFileSync(file, 'utf8'), file);
    const kept = records.filter((r) => r.step <= step);
    writeFileAtomic(file, kept.map((r) => serialise(r) + '\n').join(''));
    return { kept: kept.length, dropped: records.length - kept.length };
  }

  /** If the file does not end in a newline, cuts it back to the last complete line. */
  private static cutTornTail(file: string): void {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return;
    }
    if (size === 0) return;
    const fd = fs.openSync(file, 'r+');
    try {
      // Scan back from the end in chunks for the last '\n'.
      const chunk = Buffer.alloc(Math.min(size, 1 << 16));
      let end = size;
      let keep = -1;
      while (end > 0 && keep < 0) {
        const start = Math.max(0, end - chunk.length);
        const n = fs.readSync(fd, chunk, 0, end - start, start);
        if (end === size && chunk[n - 1] === 0x0a) return; // already clean
        const at = chunk.subarray(0, n).lastIndexOf(0x0a);
        if (at >= 0) keep = start + at + 1;
        end = start;
      }
      fs.ftruncateSync(fd, Math.max(0, keep));
    } finally {
      fs.closeSync(fd);
    }
  }

  append(rec: MetricRecord): void {
    if (this.fd === null) throw new MetricsError(`${this.file}: append after close`);
    const before = fs.fstatSync(this.fd).size;
    try {
      writeAll(this.fd, Buffer.from(serialise(rec) + '\n', 'utf8'), this.file);
    } catch (e) {
      // A full disk may have taken part of the line: cut it off so a later append starts on a clean line.
      try {
        fs.ftruncateSync(this.fd, before);
      } catch {
        /* the reader drops a torn last line anyway */
      }
      throw e;
    }
  }

  train(rec: TrainFields): void {
    this.append(withKind('train', rec));
  }

  eval(rec: EvalFields): void {
    this.append(withKind('eval', rec));
  }

  event(step: number, event: string, fields: Record<string, MetricValue> = {}): void {
    // kind, step and event come first in the line and cannot be overridden by a field of the same name.
    this.append(withKind('event', Object.assign({ step, event }, fields, { step, event })));
  }

  /** fsync: survives a power cut, not just a killed process. */
  sync(): void {
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }
}
