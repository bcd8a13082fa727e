/**
 * Progress of `prepare` on stderr: a redrawn bar with MB/s, docs/s, tokens/s and ETA when stderr is a
 * terminal, a plain line every few seconds otherwise (logs, CI).
 */
export interface ProgressCounts {
  bytesRead: number;
  docs: number;
  tokens: number;
}

export class ProgressReporter {
  private readonly t0 = performance.now();
  private last = 0;
  private readonly tty: boolean;
  private drawn = false;

  constructor(
    private readonly totalBytes: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 10_000,
  ) {
    this.tty = stream.isTTY === true;
  }

  update(c: ProgressCounts, force = false): void {
    const now = performance.now();
    const every = this.tty ? 200 : this.plainEveryMs;
    if (!force && now - this.last < every) return;
    this.last = now;
    const s = Math.max((now - this.t0) / 1000, 1e-3);
    const mbs = c.bytesRead / 1e6 / s;
    const frac = this.totalBytes > 0 ? Math.min(c.bytesRead / this.totalBytes, 1) : 0;
    const eta = frac > 0 && frac < 1 ? ((1 - frac) * s) / frac : 0;
    const stats =
      `${(c.bytesRead / 1e6).toFixed(1)}/${(this.totalBytes / 1e6).toFixed(1)} MB  ${mbs.toFixed(2)} MB/s  ` +
      `${fmt(c.docs / s)} docs/s  ${fmt(c.tokens / s)} tok/s  ETA ${fmtTime(eta)}`;
    if (this.tty) {
      const width = 24;
      const fill = Math.round(frac * width);
      this.stream.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(1).padStart(5)}%  ${stats}\x1b[K`);
      this.drawn = true;
    } else this.stream.write(`prepare: ${(frac * 100).toFixed(1)}%  ${stats}\n`);
  }

  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
  }
}

function fmt(x: number): string {
  if (x >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (x >= 1e3) return (x / 1e3).toFixed(1) + 'k';
  return x.toFixed(0);
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s) || s <= 0) return '--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}
