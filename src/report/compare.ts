/**
 * The comparison report of several runs (a sweep's variants, or any run directories): a Markdown table with one
 * row per run, the best run marked with a note on which others are within noise of it, and plots with every run
 * overlaid (validation loss against tokens and against training FLOPs, train loss against steps), as PNG and SVG.
 */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../files/atomic.js';
import { basename, dirname, join, resolve } from 'node:path';
import { readSweepState, SWEEP_FILES } from '../io/sweep-dir.js';
import type { LineChart } from './chart.js';
import { fmtBytes, fmtCount, fmtDuration, fmtFixed, fmtSci } from './format.js';
import { writeChart } from './render.js';
import { smooth } from './chart.js';
import { summariseRun, type RunSummary } from './run-summary.js';

export interface Comparison {
  title: string;
  /** Lines under the title: base, what was held, the predictions' assumption. */
  about: string[];
  /** The keys that vary, one column each. */
  keys: string[];
  runs: RunSummary[];
}

export interface ComparisonReport {
  markdown: string;
  /** report.md, then each plot's PNG and SVG. */
  files: string[];
  /** Index into runs of the best run (lowest final validation loss), or -1. */
  best: number;
  /** Runs whose final validation loss is within noise of the best one. */
  withinNoise: number[];
}

/** The y-axes of the plots fit the points after this share of the x-range, where the runs differ. */
const TAIL_FROM = 0.25;

/** Best run and those within noise of it: |difference of final val loss| < the larger of the two spreads. */
export function bestAndTies(runs: RunSummary[]): { best: number; withinNoise: number[] } {
  const candidates = runs.map((r, i) => [r, i] as const).filter(([r]) => r.finalValLoss !== null && r.state !== 'failed');
  if (candidates.length === 0) return { best: -1, withinNoise: [] };
  const [bestRun, best] = candidates.reduce((a, b) => (b[0].finalValLoss! < a[0].finalValLoss! ? b : a));
  const withinNoise = candidates
    .filter(([r, i]) => i !== best && Math.abs(r.finalValLoss! - bestRun.finalValLoss!) < Math.max(r.valNoise ?? 0, bestRun.valNoise ?? 0))
    .map(([, i]) => i);
  return { best, withinNoise };
}

const esc = (s: string): string => s.replace(/\|/g, '\\|');

function row(cells: string[]): string {
  return `| ${cells.map(esc).join(' | ')} |`;
}

function throughputColumn(runs: RunSummary[]): { head: string; cell: (r: RunSummary) => string } {
  if (runs.some((r) => r.mfu !== null)) return { head: 'MFU', cell: (r) => (r.mfu !== null ? `${(r.mfu * 100).toFixed(1)}%` : '—') };
  return { head: 'GFLOP/s', cell: (r) => fmtFixed(r.gflops, 0) };
}

export function comparisonMarkdown(c: Comparison, plots: { title: string; file: string }[] = []): { markdown: string; best: number; withinNoise: number[] } {
  const { best, withinNoise } = bestAndTies(c.runs);
  const tput = throughputColumn(c.runs);
  const L: string[] = [`# ${c.title}`, ''];
  for (const a of c.about) L.push(`- ${a}`);
  const done = c.runs.filter((r) => r.state === 'done').length;
  const known = c.runs.some((r) => r.state !== 'unknown');
  if (known) L.push(`- ${done} of ${c.runs.length} runs done`);
  L.push('');
  const head = [
    'run', ...c.keys.map((k) => k.replace(/^model\./, '')), 'params', 'FLOPs/token', 'tokens', 'train loss', 'val loss',
    'noise', 'bits/byte', 'tokens/s', tput.head, 'time (predicted)', 'memory (predicted)',
  ];
  if (known) head.push('state');
  L.push(row(head), row(head.map(() => '---')));
  c.runs.forEach((r, i) => {
    const label = i === best ? `**${r.label}** ★` : r.label;
    const wall = `${fmtDuration(r.wallSeconds)}${r.wallMeasured || r.wallSeconds === null ? '' : ' (steps)'}`;
    const mem = r.enginePeakBytes !== null ? `${fmtBytes(r.enginePeakBytes)} / ${fmtBytes(r.peakRssBytes)} RSS` : '—';
    const cells = [
      label, ...c.keys.map((k) => (k in r.values ? String(r.values[k]) : '—')), fmtCount(r.params), fmtSci(r.flopsPerToken), fmtCount(r.tokens),
      fmtFixed(r.finalTrainLoss, 4), fmtFixed(r.finalValLoss, 4), fmtFixed(r.valNoise, 4), fmtFixed(r.bitsPerByte, 3),
      fmtCount(r.tokensPerS), tput.cell(r),
      `${wall} (${fmtDuration(r.prediction?.seconds)})`, `${mem} (${fmtBytes(r.prediction?.memoryBytes)})`,
    ];
    if (known) cells.push(r.state);
    L.push(row(cells));
  });
  L.push('');
  if (best >= 0) {
    const b = c.runs[best]!;
    L.push(`★ Best: **${b.label}**, final validation loss ${fmtFixed(b.finalValLoss, 4)}.`);
    if (withinNoise.length) {
      const ties = withinNoise.map((i) => {
        const r = c.runs[i]!;
        const noise = Math.max(r.valNoise ?? 0, b.valNoise ?? 0);
        return `${r.label} (${fmtFixed(r.finalValLoss, 4)}, differs by ${fmtFixed(Math.abs(r.finalValLoss! - b.finalValLoss!), 4)} < noise ${fmtFixed(noise, 4)})`;
      });
      L.push(`Within noise of the best, so not told apart by these runs: ${ties.join('; ')}.`);
    } else L.push('Every other run differs from the best by more than the noise of either.');
    L.push('');
  }
  const failed = c.runs.filter((r) => r.state === 'failed');
  for (const r of failed) L.push(`- **${r.label} failed**: ${r.error ?? 'no error recorded'}`);
  if (failed.length) L.push('');
  L.push(
    'Columns: train loss is the mean of the last ten logged steps; val loss is the last evaluation, and noise the spread ' +
      '(max - min) of the last three; tokens/s and throughput are medians over the logged steps; time is the measured wall ' +
      'time of the run (\'(steps)\': the sum of logged step times, without evaluations) with the planner\'s prediction in ' +
      'brackets; memory is the engine\'s peak allocation and the process\'s peak resident set, with the predicted engine memory ' +
      '(fp32 weights, gradients, AdamW moments and the activation arena) in brackets.',
  );
  L.push('');
  for (const p of plots) L.push(`![${p.title}](${p.file})`, '');
  return { markdown: L.join('\n'), best, withinNoise };
}

/** The three overlay plots of a comparison. */
export function comparisonCharts(c: Comparison): [string, LineChart][] {
  const val = (x: (p: RunSummary['val'][number]) => number): LineChart['series'] =>
    c.runs.filter((r) => r.val.length).map((r) => ({ name: r.label, points: r.val.map((p) => [x(p), p.loss] as const), markers: true }));
  const train = c.runs
    .filter((r) => r.train.length)
    .map((r) => {
      const pts = r.train.map((p) => [p.step, p.loss] as const);
      return { name: r.label, points: pts.length > 100 ? smooth(pts) : pts, width: 1.5 };
    });
  return [
    ['val_loss_tokens', { title: `${c.title}: validation loss against tokens`, xLabel: 'tokens', yLabel: 'val loss (nats)', tailFrom: TAIL_FROM, series: val((p) => p.tokens) }],
    ['val_loss_flops', { title: `${c.title}: validation loss against training FLOPs`, xLabel: 'training FLOPs', yLabel: 'val loss (nats)', tailFrom: TAIL_FROM, series: val((p) => p.flops) }],
    ['train_loss_step', { title: `${c.title}: train loss (EMA) against steps`, xLabel: 'step', yLabel: 'train loss (nats)', tailFrom: TAIL_FROM, series: train }],
  ];
}

const PLOT_TITLES: Record<string, string> = {
  val_loss_tokens: 'validation loss against tokens',
  val_loss_flops: 'validation loss against training FLOPs',
  train_loss_step: 'train loss against steps',
};

/** Writes report.md and the plots into outDir. */
export function writeComparison(c: Comparison, outDir: string): ComparisonReport {
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const plots: { title: string; file: string }[] = [];
  for (const [name, chart] of comparisonCharts(c)) {
    const { png, svg } = writeChart(chart, join(outDir, name));
    files.push(png, svg);
    plots.push({ title: PLOT_TITLES[name]!, file: basename(png) });
  }
  const { markdown, best, withinNoise } = comparisonMarkdown(
    { ...c, about: [...c.about, `plots: the y-axes fit the last ${Math.round((1 - TAIL_FROM) * 100)}% of each x-range, where the runs differ`] },
    plots,
  );
  const md = join(outDir, 'report.md');
  writeFileAtomic(md, markdown + '\n');
  return { markdown, files: [md, ...files], best, withinNoise };
}

/** The comparison of a sweep's variants, from its sweep.json and run directories. */
export function sweepComparison(sweepDir: string): Comparison {
  const s = readSweepState(sweepDir);
  const holds = Object.entries(s.hold).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toLocaleString('en-US') : v}`);
  return {
    title: `Sweep ${s.name}`,
    about: [
      `sweep file \`${s.file}\`; base config \`${s.base ?? '(trainer defaults)'}\`; varied: ${s.keys.map((k) => `\`${k}\``).join(', ')}`,
      `held fixed per run: ${holds.join(', ')}${s.nproc > 1 ? `; ${s.nproc} data-parallel ranks per run` : ''}`,
      `predictions assume ${s.assumption}`,
    ],
    keys: s.keys,
    runs: s.variants.map((v) =>
      summariseRun(join(sweepDir, v.runDir), {
        label: v.id, values: v.values, state: v.state, error: v.error, measured: v.measured, prediction: v.prediction,
      }),
    ),
  };
}

export function writeSweepReport(sweepDir: string, outDir: string = join(sweepDir, SWEEP_FILES.report)): ComparisonReport {
  return writeComparison(sweepComparison(sweepDir), outDir);
}

/** Config keys (train keys, and model keys as model.KEY) whose values differ between the runs. */
export function differingKeys(runs: RunSummary[]): string[] {
  const flat = runs.map((r) => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.trainConfig ?? {})) if (k !== 'run_dir' && k !== 'model_overrides') out[k] = JSON.stringify(v);
    for (const [k, v] of Object.entries(r.model ?? {})) out[`model.${k}`] = JSON.stringify(v);
    return out;
  });
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))];
  return keys.filter((k) => new Set(flat.map((f) => f[k] ?? '')).size > 1);
}

/** The comparison of any run directories; the columns are the config keys that differ between them. */
export function runsComparison(dirs: string[]): Comparison {
  const names = dirs.map((d) => basename(resolve(d)));
  const runs = dirs.map((d, i) => {
    const dup = names.filter((n) => n === names[i]).length > 1;
    return summariseRun(d, { label: dup ? `${basename(dirname(resolve(d)))}/${names[i]}` : names[i] });
  });
  const keys = differingKeys(runs);
  for (const r of runs) {
    const vals: Record<string, string | number | boolean> = {};
    for (const k of keys) {
      const v = k.startsWith('model.') ? (r.model as unknown as Record<string, unknown> | null)?.[k.slice(6)] : r.trainConfig?.[k];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') vals[k] = v;
    }
    r.values = vals;
  }
  return { title: `Comparison of ${runs.length} runs`, about: [`runs: ${dirs.map((d) => `\`${d}\``).join(', ')}`], keys, runs };
}
