/**
 * Training progress on stderr. On a terminal: one line redrawn in place (bar, step/total, loss, lr, tokens/s,
 * MFU or GFLOP/s, ETA). Elsewhere (CI logs, files): a plain line every `every` steps, so logs stay readable.
 * `log(msg)` prints a line above the bar without garbling it.
 */
import type { StepReport } from '../train/trainer.js';

export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Step count at which the run ends. */
  total: number;
  stream?: ProgressStream;
  /** Plain-line interval when not a terminal; default: about 20 lines over the run, at least every step. */
  every?: number;
  /** Force terminal or plain mode (default: the stream's isTTY). */
  tty?: boolean;
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
  /** Minimum milliseconds between terminal redraws (default 100). */
  redrawMs?: number;
}

/** What one redraw shows: the trainer's per-step report. */
export type ProgressUpdate = StepReport;

const CLEAR_LINE = '\r\x1b[2K';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400 * 4) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** 1234 -> '1234', 12345 -> '12.3k', 4.5e6 -> '4.50M'. */
export function formatCount(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a < 1e4) return a < 100 ? x.toFixed(1) : x.toFixed(0);
  if (a < 1e6) return `${(x / 1e3).toFixed(a < 1e5 ? 1 : 0)}k`;
  if (a < 1e9) return `${(x / 1e6).toFixed(2)}M`;
  return `${(x / 1e9).toFixed(2)}G`;
}

export class Progress {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly every: number;
  private readonly now: () => number;
  private readonly redrawMs: number;
  private start: { step: number; t: number } | null = null;
  private lastDraw = -Infinity;
  private bar = '';
  private lastPrintedStep = -1;
  private last: ProgressUpdate | null = null;

  constructor(opts: ProgressOptions) {
    if (!(Number.isInteger(opts.total) && opts.total > 0))
      throw new Error(`Progress: total must be a positive integer, got ${opts.total}`);
    this.total = opts.total;
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.every = Math.max(1, Math.floor(opts.every ?? Math.ceil(opts.total / 20)));
    this.now = opts.now ?? (() => performance.now());
    this.redrawMs = opts.redrawMs ?? 100;
  }

  /** Seconds left, extrapolated from the steps done since the first update (so a resumed run is not skewed). */
  eta(step: number): number {
    if (!this.start || step <= this.start.step) return NaN;
    const perStep = (this.now() - this.start.t) / 1000 / (step - this.start.step);
    return perStep * (this.total - step);
  }

  /** The status text without the bar. */
  statusText(u: ProgressUpdate): string {
    const parts = [
      `step ${u.step}/${this.total}`,
      `loss ${Number.isFinite(u.loss) ? u.loss.toFixed(4) : String(u.loss)}`,
      `lr ${u.lr.toExponential(2)}`,
      `${formatCount(u.tokensPerS)} tok/s`,
    ];
    if (u.mfu !== undefined) parts.push(`MFU ${(u.mfu * 100).toFixed(1)}%`);
    else if (u.gflops !== undefined) parts.push(`${u.gflops.toFixed(1)} GFLOP/s`);
    parts.push(`ETA ${formatDuration(this.eta(u.step))}`);
    return parts.join(' | ');
  }

  update(u: ProgressUpdate): void {
    const t = this.now();
    if (!this.start) this.start = { step: u.step, t };
    this.last = u;
    if (!this.tty) {
      if (u.step % this.every === 0 || u.step === this.total) this.printPlain(u);
      return;
    }
    if (t - this.lastDraw < this.redrawMs && u.step !== this.total) return;
    this.lastDraw = t;
    this.bar = this.renderBar(u);
    this.stream.write(CLEAR_LINE + this.bar);
  }

  private printPlain(u: ProgressUpdate): void {
    if (u.step === this.lastPrintedStep) return;
    this.lastPrintedStep = u.step;
    this.stream.write(this.statusText(u) + '\n');
  }

  private renderBar(u: ProgressUpdate): string {
    const text = this.statusText(u);
    const cols = this.stream.columns ?? 100;
    const room = cols - text.length - 4; // '[', ']', two spaces, one spare column so the cursor never wraps
    if (room < 10) return text.slice(0, Math.max(0, cols - 1));
    const width = Math.min(30, room);
    const filled = Math.round((width * Math.min(u.step, this.total)) / this.total);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
  }

  /** Prints a line (an eval result, a checkpoint notice) above the bar, then redraws the bar. */
  log(msg: string): void {
    if (this.tty && this.bar) this.stream.write(CLEAR_LINE + msg + '\n' + this.bar);
    else this.stream.write(msg + '\n');
  }

  /** Alias of log, for callers that print through the progress display. */
  printLine(msg: string): void {
    this.log(msg);
  }

  /** Ends the display: the final state stays on screen (terminal) or is printed once more if not yet (plain). */
  done(): void {
    if (this.tty) {
      if (this.last) this.stream.write(CLEAR_LINE + this.renderBar(this.last));
      if (this.bar || this.last) this.stream.write('\n');
      this.bar = '';
    } else if (this.last) this.printPlain(this.last);
  }
}
