/**
 * A run's plots: RUN/plots/{loss,lr,throughput,grad_norm}.{png,svg} from RUN/metrics.jsonl, and tasks.{png,svg}
 * when the run scored downstream tasks (eval_tasks). `lmforge report` draws them on demand, and `lmforge train`
 * when a run ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMetricsDetailed, type MetricRecord } from '../train/metrics.js';
import { RUN_FILES } from '../io/run-dir.js';
import { removeStaleTemps } from '../files/atomic.js';
import { PALETTE, smooth, type ChartSeries, type LineChart, type Point } from './chart.js';
import { writeChart } from './render.js';
import { median } from './stats.js';

export { smooth };

const BLUE = '#1f77b4';
const ORANGE = '#ff7f0e';
const GREEN = '#2ca02c';
const PURPLE = '#9467bd';
const RED = '#d62728';

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

/** Few points: the series as is. Many (noisy) points: the raw series pale, with its EMA on top. */
export function withTrend(name: string, points: Point[], color: string): ChartSeries[] {
  if (points.length <= 100) return [{ name, points, color, width: 1.5 }];
  return [
    { name, points, color, width: 1, faint: true },
    { name: `${name} (EMA)`, points: smooth(points), color, width: 2 },
  ];
}

/** Downstream-task accuracies (eval records with a `task`, src/eval): one series per task and metric. */
function taskSeries(records: MetricRecord[]): ChartSeries[] {
  const palette = PALETTE;
  const byName = new Map<string, Point[]>();
  for (const r of records) {
    if (r.kind !== 'eval' || typeof r.task !== 'string') continue;
    for (const metric of ['acc', 'acc_norm']) {
      const v = r[metric];
      if (typeof v !== 'number') continue;
      const name = `${r.task} ${metric}`;
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name)!.push([r.step, v]);
    }
  }
  return [...byName].map(([name, points], i) => ({ name, points, color: palette[i % palette.length]!, width: 1.5, markers: true }));
}

const fmtRate = (x: number): string =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);

export interface ReportOptions {
  /** Where the pictures go (default <runDir>/plots). */
  outDir?: string;
}

/** Draws the plots as PNG and SVG; returns the PNG files (each has its .svg beside it). */
export function writeReport(runDir: string, opts: ReportOptions = {}): string[] {
  const { records } = readMetricsDetailed(runDir);
  const outDir = opts.outDir ?? path.join(runDir, RUN_FILES.plots);
  fs.mkdirSync(outDir, { recursive: true });
  removeStaleTemps(outDir, (n) => /\.(png|svg)\.tmp-\d+$/.test(n));
  const name = path.basename(path.resolve(runDir));

  const train = pointsOf(records, 'train', 'loss');
  const val = pointsOf(records, 'eval', 'loss');
  const lossSeries = withTrend('train loss', train, BLUE);
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
  // Stage boundaries of a staged run, from its 'stage' events (the first stage starts at 0: no line).
  const marks = records
    .filter((r) => r.kind === 'event' && r.event === 'stage' && r.step > 0)
    .map((r) => ({ x: r.step, label: typeof r.name === 'string' ? r.name : `stage ${String(r.stage)}` }));
  const gnLog = gnVals.length > 1 && gnVals.reduce((a, b) => Math.max(a, b)) / gnVals.reduce((a, b) => Math.min(a, b)) > 20;

  const plots: Array<[string, LineChart]> = [
    ['loss', { title: `${name}: loss`, series: lossSeries, xLabel: 'step', yLabel: 'cross-entropy (nats)' }],
    ['lr', { title: `${name}: learning rate`, series: [{ name: 'lr', points: lr, color: GREEN }], xLabel: 'step', yLabel: 'lr' }],
    ['throughput', { title: tputTitle, series: withTrend('tokens/s', tps, PURPLE), xLabel: 'step', yLabel: 'tokens/s', yFromZero: true }],
    ['grad_norm', { title: `${name}: gradient norm`, series: [{ name: 'grad norm', points: gn, color: RED, width: 1.2 }], xLabel: 'step', yLabel: 'global L2 norm', logY: gnLog }],
  ];
  const tasks = taskSeries(records);
  if (tasks.length) plots.push(['tasks', { title: `${name}: downstream tasks`, series: tasks, xLabel: 'step', yLabel: 'accuracy', yFromZero: true }]);
  return plots.map(([file, chart]) => writeChart(marks.length ? { ...chart, marks } : chart, path.join(outDir, file)).png);
}
