/**
 * A run's plots: RUN/plots/{loss,lr,throughput,grad_norm}.png from RUN/metrics.jsonl. `lmforge report` draws
 * them on demand, and `lmforge train` when a run ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMetricsDetailed, type MetricRecord } from '../train/metrics.js';
import { RUN_FILES } from '../io/run-dir.js';
import { removeStaleTemps, writeFileAtomic } from '../files/atomic.js';
import { plotPng, type Rgb, type Series } from './plot.js';
import { median } from './stats.js';

const BLUE = [31, 119, 180] as const;
const LIGHT_BLUE = [168, 200, 228] as const;
const ORANGE = [255, 127, 14] as const;
const GREEN = [44, 160, 44] as const;
const PURPLE = [148, 103, 189] as const;
const LIGHT_PURPLE = [212, 196, 228] as const;
const RED = [214, 39, 40] as const;

type Point = readonly [number, number];

/** [step, field] for every record of `kind` whose field is a number (null stands for a NaN and breaks the line). */
function pointsOf(records: MetricRecord[], kind: MetricRecord['kind'], field: string): Point[] {
  const out: Point[] = [];
  for (const r of records) {
    if (r.kind !== kind) continue;
    const v = r[field];
    if (typeof v === 'number') out.push([r.step, v]);
    else if (v === null) out.push([r.step, NaN]);
  }
  return out;
}

/** Exponential moving average with start-up bias correction, over a span of about 1/200 of the points (min 5). */
export function smooth(points: Point[]): Point[] {
  const span = Math.max(5, points.length / 200);
  const alpha = 2 / (span + 1);
  let m = 0, w = 0;
  const out: Point[] = [];
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    m = (1 - alpha) * m + alpha * y;
    w = (1 - alpha) * w + alpha;
    out.push([x, m / w]);
  }
  return out;
}

/** Few points: the series as is. Many (noisy) points: the raw series pale, with its EMA on top. */
function withTrend(name: string, points: Point[], color: Rgb, pale: Rgb): Series[] {
  if (points.length <= 100) return [{ name, points, color, width: 1.5 }];
  return [
    { name, points, color: pale, width: 1 },
    { name: `${name} (EMA)`, points: smooth(points), color, width: 2 },
  ];
}

const fmtRate = (x: number): string =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);

export interface ReportOptions {
  /** Where the PNGs go (default <runDir>/plots). */
  outDir?: string;
}

/** Draws the four plots; returns the files written. */
export function writeReport(runDir: string, opts: ReportOptions = {}): string[] {
  const { records } = readMetricsDetailed(runDir);
  const outDir = opts.outDir ?? path.join(runDir, RUN_FILES.plots);
  fs.mkdirSync(outDir, { recursive: true });
  removeStaleTemps(outDir, (n) => /\.png\.tmp-\d+$/.test(n));
  const name = path.basename(path.resolve(runDir));

  const train = pointsOf(records, 'train', 'loss');
  const val = pointsOf(records, 'eval', 'loss');
  const lossSeries = withTrend('train loss', train, BLUE, LIGHT_BLUE);
  lossSeries.push({ name: 'val loss', points: val, color: ORANGE, width: 2, markers: true });

  const lr = pointsOf(records, 'train', 'lr');
  const tps = pointsOf(records, 'train', 'tokens_per_s');
  const gn = pointsOf(records, 'train', 'grad_norm');
  const mfus = pointsOf(records, 'train', 'mfu').map((p) => p[1]).filter(Number.isFinite);
  const gflops = pointsOf(records, 'train', 'gflops').map((p) => p[1]).filter(Number.isFinite);
  const tpsVals = tps.map((p) => p[1]).filter(Number.isFinite);
  let tputTitle = `${name}: throughput`;
  if (tpsVals.length) {
    tputTitle += ` (median ${fmtRate(median(tpsVals))} tok/s`;
    if (mfus.length) tputTitle += `, MFU ${(median(mfus) * 100).toFixed(1)}%`;
    else if (gflops.length) tputTitle += `, ${median(gflops).toFixed(1)} GFLOP/s`;
    tputTitle += ')';
  }
  const gnVals = gn.map((p) => p[1]).filter((v) => Number.isFinite(v) && v > 0);
  const gnLog = gnVals.length > 1 && gnVals.reduce((a, b) => Math.max(a, b)) / gnVals.reduce((a, b) => Math.min(a, b)) > 20;

  const plots: Array<[string, Parameters<typeof plotPng>[0]]> = [
    ['loss', { title: `${name}: loss`, series: lossSeries, xLabel: 'step', yLabel: 'cross-entropy (nats)', logY: true }],
    ['lr', { title: `${name}: learning rate`, series: [{ name: 'lr', points: lr, color: GREEN }], xLabel: 'step', yLabel: 'lr' }],
    ['throughput', { title: tputTitle, series: withTrend('tokens/s', tps, PURPLE, LIGHT_PURPLE), xLabel: 'step', yLabel: 'tokens/s', yFromZero: true }],
    ['grad_norm', { title: `${name}: gradient norm`, series: [{ name: 'grad norm', points: gn, color: RED, width: 1.2 }], xLabel: 'step', yLabel: 'global L2 norm', logY: gnLog }],
  ];
  const written: string[] = [];
  for (const [file, p] of plots) {
    const dest = path.join(outDir, `${file}.png`);
    writeFileAtomic(dest, plotPng(p)); // a viewer never sees a half-written PNG
    written.push(dest);
  }
  return written;
}
