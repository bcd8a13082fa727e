/**
 * Where a step's time goes, per op (`lmforge bench --profile`). While a profile is open, NativeBackend marks the
 * start of every op: on the CUDA engine with an event on its stream (the time between two marks is the first op's
 * device work, plus any time the device waited for the host to queue the next op); on the CPU, where an op
 * returns when it is done, with the host clock.
 */

/**
 * The row an op call is counted under: its name, and for matrix products the shape (M x N x K, and `dW` for the
 * transposed-A products of weight gradients), since which GEMMs dominate is the question a profile answers.
 */
export function opLabel(op: string, args: object): string {
  if (op !== 'matmul') return op;
  const a = args as { m: number; n: number; k: number; transA?: boolean };
  return `matmul ${a.m}x${a.n}x${a.k}${a.transA ? ' dW' : ''}`;
}

/** One op's share of the profiled work. */
export interface OpTime {
  op: string;
  calls: number;
  ms: number;
  /** Fraction of the profiled total. */
  share: number;
}

/** A device clock: marks queued in order, read back as the intervals between consecutive marks (ms). */
export interface DeviceClock {
  mark(): void;
  collect(): Float64Array;
}

export class OpProfile {
  private readonly ops: string[] = [];
  private readonly hostMarks: number[] = [];

  /** `device` null: the ops complete before they return, so the host clock times them. */
  constructor(private readonly device: DeviceClock | null) {}

  mark(op: string): void {
    this.ops.push(op);
    if (this.device) this.device.mark();
    else this.hostMarks.push(performance.now());
  }

  /** Ends the profile: every op's total time, largest first. */
  finish(): OpTime[] {
    let intervals: ArrayLike<number>;
    if (this.device) {
      intervals = this.device.collect();
    } else {
      const ends = this.hostMarks.length ? [...this.hostMarks.slice(1), performance.now()] : [];
      intervals = ends.map((t, i) => t - this.hostMarks[i]!);
    }
    if (intervals.length !== this.ops.length) {
      throw new Error(`internal: the profile marked ${this.ops.length} ops but read ${intervals.length} intervals`);
    }
    return summarizeOps(this.ops, intervals);
  }
}

/** Groups intervals by op name: calls, total ms and share of the whole, largest total first. */
export function summarizeOps(ops: readonly string[], ms: ArrayLike<number>): OpTime[] {
  const byOp = new Map<string, { calls: number; ms: number }>();
  let total = 0;
  for (let i = 0; i < ops.length; i++) {
    const t = ms[i]!;
    total += t;
    const row = byOp.get(ops[i]!) ?? { calls: 0, ms: 0 };
    row.calls++;
    row.ms += t;
    byOp.set(ops[i]!, row);
  }
  return [...byOp.entries()]
    .map(([op, r]) => ({ op, calls: r.calls, ms: r.ms, share: total > 0 ? r.ms / total : 0 }))
    .sort((a, b) => b.ms - a.ms || a.op.localeCompare(b.op));
}

/** A fixed-width table of a profile, for a terminal. */
export function formatProfile(rows: readonly OpTime[]): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const lines = ['op                       calls        ms   share'];
  for (const r of rows) {
    lines.push(`${r.op.padEnd(22)} ${String(r.calls).padStart(7)} ${r.ms.toFixed(3).padStart(9)} ${(100 * r.share).toFixed(1).padStart(6)}%`);
  }
  lines.push(`${'total'.padEnd(22)} ${String(rows.reduce((s, r) => s + r.calls, 0)).padStart(7)} ${total.toFixed(3).padStart(9)}`);
  return lines.join('\n');
}
