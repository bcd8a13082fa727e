/**
 * A line chart described apart from the library that draws it, and its ECharts option. The same option feeds the
 * server-side SVG/PNG renderer (render.ts) and the dashboard in the browser, which loads this compiled file as an
 * ES module: it must import nothing at run time.
 *
 * Axes are computed here, not left to the library, so that degenerate data (a constant series, one point, NaN,
 * +-Inf, ranges of 1e300) always gives finite, readable axes: non-finite values become gaps, a zero-width range
 * is widened, and tick steps are "nice" numbers found without loops.
 */
import type { EChartsOption } from 'echarts';

export type Point = readonly [number, number];

export interface ChartSeries {
  name: string;
  points: readonly Point[];
  /** CSS colour (default: the palette by series index). */
  color?: string;
  /** Line width in pixels (default 2). */
  width?: number;
  /** A symbol at every point (default: only when there are few points). */
  markers?: boolean;
  /** Drawn pale, under the others (raw values beneath their moving average). */
  faint?: boolean;
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic y (falls back to linear when no value is positive). */
  logY?: boolean;
  /** The y-axis starts at zero (when every value is positive). */
  yFromZero?: boolean;
  /** Fit the y-axis to the points from this fraction of the x-range on, so late differences are visible. */
  tailFrom?: number;
  series: ChartSeries[];
  /** Dashed vertical lines at these x values, each labelled (the stage boundaries of a staged run). */
  marks?: ReadonlyArray<{ x: number; label: string }>;
}

export interface OptionSettings {
  /** Tooltip, zoom and a scrolling legend for the browser. */
  interactive?: boolean;
  /** Canvas width in pixels, for laying out the legend (default 800). */
  width?: number;
  fontFamily?: string;
}

/** Exponential moving average with start-up bias correction, over a span of about 1/200 of the points (min 5). */
export function smooth(points: readonly Point[]): Point[] {
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

/** Ten distinguishable colours (Tableau 10). */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** 1, 2 or 5 times a power of ten, near span / target. */
export function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

export interface Bounds {
  min: number;
  max: number;
  /** Tick interval. */
  step: number;
}

/** A readable axis range around [lo, hi]: widened when empty or zero-width, snapped to a nice step. */
export function niceBounds(lo: number, hi: number, target = 5): Bounds {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return { min: 0, max: 1, step: 0.2 };
  if (lo > hi) [lo, hi] = [hi, lo];
  const mag = Math.max(Math.abs(lo), Math.abs(hi));
  // A range below float resolution of its magnitude is a constant series: show it +-10% (or +-1 around zero).
  if (hi - lo <= mag * 1e-9) {
    const pad = mag > 0 ? mag * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  // A span beyond the float range (-1.7e308 .. 1.7e308): show the middle half of it; the rest is off the chart.
  if (!Number.isFinite(hi - lo)) {
    lo = Math.max(lo, -Number.MAX_VALUE / 4);
    hi = Math.min(hi, Number.MAX_VALUE / 4);
  }
  const span = hi - lo;
  const step = niceStep(span, target);
  // toPrecision drops the float noise of k x step (5.6000000000000005 -> 5.6).
  const min = Number((Math.floor(lo / step) * step).toPrecision(12));
  const max = Number((Math.ceil(hi / step) * step).toPrecision(12));
  return { min, max, step };
}

/** Short tick labels: 12k, 2.5M, 3e-4, 0.25, 1.5e+20 for huge values. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (!Number.isFinite(a)) return String(v);
  const s = Number.isFinite(step) && step > 0 ? step : a;
  if (a >= 1e15 || a < 1e-4) return v.toExponential(Math.max(0, Math.min(6, Math.floor(Math.log10(a)) - Math.floor(Math.log10(s)))));
  const unit = a >= 1e12 ? [1e12, 'T'] as const : a >= 1e9 ? [1e9, 'G'] as const : a >= 1e6 ? [1e6, 'M'] as const : a >= 1e4 ? [1e3, 'k'] as const : [1, ''] as const;
  const decimals = Math.max(0, Math.min(8, -Math.floor(Math.log10(s / unit[0]) + 1e-9)));
  return `${(v / unit[0]).toFixed(decimals)}${unit[1]}`;
}

/** Roughly how many legend rows the names need at this width (ECharts wraps a plain legend). */
function legendRows(names: string[], width: number): number {
  let rows = 1, x = 0;
  for (const n of names) {
    const w = 40 + 7 * n.length;
    if (x > 0 && x + w > width - 40) {
      rows++;
      x = 0;
    }
    x += w;
  }
  return rows;
}

type Range = [number, number];

function extent(values: Iterable<number>): Range | null {
  let lo = Infinity, hi = -Infinity;
  for (const v of values)
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  return lo <= hi ? [lo, hi] : null;
}

/** The ECharts option for a chart. */
export function chartOption(chart: LineChart, settings: OptionSettings = {}): EChartsOption {
  const width = settings.width ?? 800;
  const fontFamily = settings.fontFamily ?? 'DejaVu Sans, Verdana, sans-serif';
  const xs = extent(chart.series.flatMap((s) => s.points.map((p) => p[0]))) ?? [0, 1];
  const tailX = chart.tailFrom !== undefined ? xs[0] + chart.tailFrom * (xs[1] - xs[0]) : -Infinity;
  const yValues = (keep: (p: Point) => boolean): number[] =>
    chart.series.flatMap((s) => s.points.filter((p) => Number.isFinite(p[0]) && keep(p)).map((p) => p[1]));
  const positive = extent(yValues((p) => p[1] > 0 && p[0] >= tailX)) ?? extent(yValues((p) => p[1] > 0));
  const logY = chart.logY === true && positive !== null;
  const finiteY = (p: Point): boolean => Number.isFinite(p[1]) && (!logY || p[1] > 0);

  const xb = niceBounds(xs[0], xs[1], 6);
  const xAxisBounds = { min: Math.max(xb.min, xs[0] >= 0 ? 0 : -Infinity), max: xb.max };
  let yAxis: Record<string, unknown>;
  if (logY) {
    const [lo, hi] = positive!;
    let min = Math.pow(10, Math.floor(Math.log10(lo))), max = Math.pow(10, Math.ceil(Math.log10(hi)));
    if (!(max > min)) max = min * 10;
    if (!Number.isFinite(max)) max = Number.MAX_VALUE;
    if (!(min > 0)) min = Number.MIN_VALUE;
    yAxis = { type: 'log', logBase: 10, min, max, axisLabel: { formatter: (v: number) => formatTick(v, v) } };
  } else {
    let ys = extent(yValues((p) => p[0] >= tailX)) ?? extent(yValues(() => true)) ?? [0, 1];
    if (chart.yFromZero && ys[0] > 0) ys = [0, ys[1]];
    const b = niceBounds(ys[0], ys[1], 5);
    yAxis = {
      type: 'value', min: b.min, max: b.max, scale: true,
      ...(Number.isFinite(b.step) ? { interval: b.step } : {}),
      axisLabel: { formatter: (v: number) => formatTick(v, b.step) },
    };
  }
  const names = chart.series.map((s) => s.name);
  const rows = settings.interactive ? 1 : legendRows(names, width);
  const top = 36 + 22 * rows + 14;
  const series = chart.series.map((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const data = s.points.filter((p) => Number.isFinite(p[0])).map((p) => [p[0], finiteY(p) ? p[1] : null]);
    const markers = s.markers ?? data.length <= 30;
    return {
      type: 'line' as const,
      name: s.name,
      data,
      color,
      showSymbol: markers,
      symbol: 'circle',
      symbolSize: 5,
      connectNulls: false,
      clip: true,
      z: s.faint ? 1 : 2,
      lineStyle: { width: s.width ?? 2, color, opacity: s.faint ? 0.35 : 1, type: s.dashed ? ('dashed' as const) : ('solid' as const) },
      itemStyle: { color, opacity: s.faint ? 0.35 : 1 },
      emphasis: { disabled: !settings.interactive },
      ...(data.length > 2000 ? { sampling: 'lttb' as const } : {}),
      ...(i === 0 && chart.marks?.length ? { markLine: markLines(chart.marks) } : {}),
    };
  });
  const option: EChartsOption = {
    animation: false,
    backgroundColor: '#ffffff',
    color: PALETTE,
    textStyle: { fontFamily },
    title: { text: chart.title, left: 'center', top: 8, textStyle: { fontSize: 15, fontWeight: 'bold', fontFamily } },
    legend: { top: 34, left: 'center', type: settings.interactive ? 'scroll' : 'plain', data: names, itemWidth: 22, itemGap: 18, textStyle: { fontFamily } },
    grid: { left: 70, right: 30, top, bottom: 56, containLabel: false },
    xAxis: {
      type: 'value', name: chart.xLabel, nameLocation: 'middle', nameGap: 30, ...xAxisBounds,
      ...(Number.isFinite(xb.step) ? { interval: xb.step } : {}),
      axisLabel: { formatter: (v: number) => formatTick(v, xb.step) },
      splitLine: { show: true, lineStyle: { color: '#e6e6e6' } },
    },
    yAxis: {
      ...yAxis, name: chart.yLabel, nameLocation: 'middle', nameGap: 52,
      splitLine: { show: true, lineStyle: { color: '#e6e6e6' } },
    } as EChartsOption['yAxis'],
    series,
  };
  if (settings.interactive) {
    option.tooltip = { trigger: 'axis', valueFormatter: (v) => (typeof v === 'number' ? Number(v.toPrecision(5)).toString() : String(v)) };
    option.dataZoom = [{ type: 'inside', xAxisIndex: 0, filterMode: 'none' }];
  }
  return option;
}

/** The marks as an ECharts markLine: grey dashed verticals, labelled at the top. */
function markLines(marks: ReadonlyArray<{ x: number; label: string }>): Record<string, unknown> {
  return {
    silent: true,
    symbol: 'none',
    lineStyle: { color: '#6e6e6e', type: 'dashed', width: 1 },
    label: { position: 'insideEndTop', color: '#6e6e6e', formatter: (p: { name?: string }) => p.name ?? '' },
    data: marks.filter((m) => Number.isFinite(m.x)).map((m) => ({ xAxis: m.x, name: m.label })),
  };
}
