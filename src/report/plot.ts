/**
 * Line plots to PNG with no dependencies: an RGB canvas, anti-aliased lines (per-series coverage masks, so joints
 * do not double-darken), a 5x8 bitmap font, "nice" 1-2-5 ticks with numeric labels, linear or log y axis,
 * title, axis labels and a legend. Used by `lmforge report` for loss, lr, throughput and grad-norm curves.
 */
import { encodePngRgb } from './png.js';

export type Rgb = readonly [number, number, number];

export interface Series {
  name: string;
  /** [x, y] pairs in any order of x; non-finite y (or y <= 0 on a log axis) breaks the line. */
  points: ReadonlyArray<readonly [number, number]>;
  color: Rgb;
  /** Line width in pixels (default 1.5). */
  width?: number;
  /** Draw a dot at each point (for sparse series such as evaluations). */
  markers?: boolean;
}

export interface PlotOptions {
  title: string;
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  /** Linear axis only: start the y axis at 0 (throughput: noise should not look like a collapse). */
  yFromZero?: boolean;
  width?: number;
  height?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Font: 5 columns x 8 rows ('#' on), row 7 is the descender row. Written by hand for this file.

const GLYPH_W = 5;
const GLYPH_H = 8;
const ADVANCE = 6;

const FONT_SRC: Record<string, string> = {
  '0': '.###. #...# #..## #.#.# ##..# #...# .###. .....',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. .....',
  '2': '.###. #...# ....# ...#. ..#.. .#... ##### .....',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###. .....',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#. .....',
  '5': '##### #.... ####. ....# ....# #...# .###. .....',
  '6': '..##. .#... #.... ####. #...# #...# .###. .....',
  '7': '##### ....# ...#. ..#.. .#... .#... .#... .....',
  '8': '.###. #...# #...# .###. #...# #...# .###. .....',
  '9': '.###. #...# #...# .#### ....# ...#. .##.. .....',
  A: '.###. #...# #...# ##### #...# #...# #...# .....',
  B: '####. #...# #...# ####. #...# #...# ####. .....',
  C: '.###. #...# #.... #.... #.... #...# .###. .....',
  D: '###.. #..#. #...# #...# #...# #..#. ###.. .....',
  E: '##### #.... #.... ####. #.... #.... ##### .....',
  F: '##### #.... #.... ####. #.... #.... #.... .....',
  G: '.###. #...# #.... #.### #...# #...# .#### .....',
  H: '#...# #...# #...# ##### #...# #...# #...# .....',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. .....',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##.. .....',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...# .....',
  L: '#.... #.... #.... #.... #.... #.... ##### .....',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...# .....',
  N: '#...# #...# ##..# #.#.# #..## #...# #...# .....',
  O: '.###. #...# #...# #...# #...# #...# .###. .....',
  P: '####. #...# #...# ####. #.... #.... #.... .....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.# .....',
  R: '####. #...# #...# ####. #.#.. #..#. #...# .....',
  S: '.#### #.... #.... .###. ....# ....# ####. .....',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. .....',
  U: '#...# #...# #...# #...# #...# #...# .###. .....',
  V: '#...# #...# #...# #...# #...# .#.#. ..#.. .....',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#. .....',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...# .....',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. .....',
  Z: '##### ....# ...#. ..#.. .#... #.... ##### .....',
  a: '..... ..... .###. ....# .#### #...# .#### .....',
  b: '#.... #.... ####. #...# #...# #...# ####. .....',
  c: '..... ..... .###. #.... #.... #...# .###. .....',
  d: '....# ....# .#### #...# #...# #...# .#### .....',
  e: '..... ..... .###. #...# ##### #.... .###. .....',
  f: '..##. .#..# .#... ###.. .#... .#... .#... .....',
  g: '..... ..... .#### #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...# .....',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###. .....',
  j: '...#. ..... ..##. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#. .....',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. .....',
  m: '..... ..... ##.#. #.#.# #.#.# #.#.# #.#.# .....',
  n: '..... ..... #.##. ##..# #...# #...# #...# .....',
  o: '..... ..... .###. #...# #...# #...# .###. .....',
  p: '..... ..... ####. #...# #...# ####. #.... #....',
  q: '..... ..... .#### #...# #...# .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #.... .....',
  s: '..... ..... .###. #.... .###. ....# ####. .....',
  t: '.#... .#... ###.. .#... .#... .#..# ..##. .....',
  u: '..... ..... #...# #...# #...# #..## .##.# .....',
  v: '..... ..... #...# #...# #...# .#.#. ..#.. .....',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#. .....',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...# .....',
  y: '..... ..... #...# #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... ##### .....',
  ' ': '..... ..... ..... ..... ..... ..... ..... .....',
  '.': '..... ..... ..... ..... ..... .##.. .##.. .....',
  ',': '..... ..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... ##### ..... ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. ..... .....',
  '=': '..... ..... ##### ..... ##### ..... ..... .....',
  '/': '....# ....# ...#. ..#.. .#... #.... #.... .....',
  '%': '##..# ##..# ...#. ..#.. .#... #..## #..## .....',
  ':': '..... .##.. .##.. ..... .##.. .##.. ..... .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#. .....',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#... .....',
  '[': '.###. .#... .#... .#... .#... .#... .###. .....',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###. .....',
  '_': '..... ..... ..... ..... ..... ..... ..... #####',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. .....',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.. .....',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#.. .....',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. ..... .....',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#. .....',
  "'": '..#.. ..#.. .#... ..... ..... ..... ..... .....',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#. .....',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#... .....',
};

/** Glyph bitmaps as rows of booleans, parsed once. */
export const FONT: ReadonlyMap<string, readonly boolean[][]> = new Map(
  Object.entries(FONT_SRC).map(([ch, src]) => {
    const rows = src.split(' ').map((r) => [...r].map((c) => c === '#'));
    if (rows.length !== GLYPH_H || rows.some((r) => r.length !== GLYPH_W)) throw new Error(`font: bad glyph '${ch}'`);
    return [ch, rows];
  }),
);

export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

// ---------------------------------------------------------------------------------------------------------------
// Canvas

export class Canvas {
  readonly rgb: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.rgb.set(background, i * 3);
  }

  /** Mixes `color` into pixel (x, y) with opacity a in [0, 1]; outside the canvas is ignored. */
  blend(x: number, y: number, color: Rgb, a: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    const i = (y * this.width + x) * 3;
    const k = Math.min(1, a);
    for (let c = 0; c < 3; c++) this.rgb[i + c] = Math.round(this.rgb[i + c]! * (1 - k) + color[c]! * k);
  }

  fillRect(x0: number, y0: number, w: number, h: number, color: Rgb): void {
    for (let y = Math.max(0, y0); y < Math.min(this.height, y0 + h); y++)
      for (let x = Math.max(0, x0); x < Math.min(this.width, x0 + w); x++) this.blend(x, y, color, 1);
  }

  /** Text with its top-left corner at (x, y); unknown characters draw as '?'. */
  text(x: number, y: number, s: string, color: Rgb, scale = 1): void {
    for (let n = 0; n < s.length; n++) {
      const g = FONT.get(s[n]!) ?? FONT.get('?')!;
      for (let r = 0; r < GLYPH_H; r++)
        for (let c = 0; c < GLYPH_W; c++)
          if (g[r]![c]) this.fillRect(x + (n * ADVANCE + c) * scale, y + r * scale, scale, scale, color);
    }
  }

  png(): Buffer {
    return encodePngRgb(this.width, this.height, this.rgb);
  }
}

/** Anti-aliased coverage of one series; max() keeps overlapping segments from darkening their joints. */
class Coverage {
  readonly a: Float32Array;
  constructor(
    readonly width: number,
    readonly height: number,
    readonly clip: { x0: number; y0: number; x1: number; y1: number },
  ) {
    this.a = new Float32Array(width * height);
  }

  private mark(x: number, y: number, v: number): void {
    if (x < this.clip.x0 || y < this.clip.y0 || x > this.clip.x1 || y > this.clip.y1 || v <= 0) return;
    const i = y * this.width + x;
    if (v > this.a[i]!) this.a[i] = Math.min(1, v);
  }

  /** A segment of width w: each pixel centre's coverage falls off linearly over the last pixel at the edge. */
  segment(ax: number, ay: number, bx: number, by: number, w: number): void {
    const hw = w / 2;
    const x0 = Math.floor(Math.min(ax, bx) - hw - 1), x1 = Math.ceil(Math.max(ax, bx) + hw + 1);
    const y0 = Math.floor(Math.min(ay, by) - hw - 1), y1 = Math.ceil(Math.max(ay, by) + hw + 1);
    const dx = bx - ax, dy = by - ay;
    const len2 = dx * dx + dy * dy;
    for (let y = Math.max(y0, this.clip.y0); y <= Math.min(y1, this.clip.y1); y++)
      for (let x = Math.max(x0, this.clip.x0); x <= Math.min(x1, this.clip.x1); x++) {
        const px = x + 0.5 - ax, py = y + 0.5 - ay;
        const t = len2 > 0 ? Math.max(0, Math.min(1, (px * dx + py * dy) / len2)) : 0;
        const ex = px - t * dx, ey = py - t * dy;
        this.mark(x, y, hw + 0.5 - Math.sqrt(ex * ex + ey * ey));
      }
  }

  dot(cx: number, cy: number, r: number): void {
    this.segment(cx, cy, cx, cy, 2 * r);
  }

  paint(canvas: Canvas, color: Rgb): void {
    for (let y = this.clip.y0; y <= this.clip.y1; y++)
      for (let x = this.clip.x0; x <= this.clip.x1; x++) {
        const v = this.a[y * this.width + x]!;
        if (v > 0) canvas.blend(x, y, color, v);
      }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ticks and labels

/** The 1-2-5 step nearest to range/target. */
export function niceStep(range: number, target = 6): number {
  if (!(range > 0)) return 1;
  const raw = range / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return Number(((n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag).toPrecision(12));
}

/** Most ticks an axis asks for; a range that would need more (or a degenerate one) gets none. */
const MAX_TICKS = 1000;

/**
 * Multiples of a nice step inside [lo, hi], or [] for a range with no usable ticks (empty, non-finite, or narrower
 * than the spacing of doubles at its magnitude, where k * step cannot step through the multiples).
 */
export function linearTicks(lo: number, hi: number, target = 6): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi >= lo)) return [];
  const step = niceStep(hi - lo, target);
  if (!(Number.isFinite(step) && step > 0)) return [];
  const eps = step * 1e-9;
  const first = Math.ceil((lo - eps) / step);
  const last = Math.floor((hi + eps) / step);
  // Counting k (not testing k * step against hi) keeps the loop finite even where k++ no longer changes k.
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(last)) || last - first > MAX_TICKS) return [];
  const out: number[] = [];
  for (let k = first; k <= last; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/** Log-axis ticks: 1-2-5 x 10^k over several decades, or plain nice values (placed logarithmically) within one. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0 && Number.isFinite(hi) && hi >= lo)) return [];
  const decades = Math.log10(hi / lo);
  if (decades < 1.2) return linearTicks(lo, hi, 5).filter((t) => t > 0);
  const mults = decades <= 3 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of mults) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  // Thin out when there are too many for a readable axis.
  const stride = Math.ceil(out.length / 10);
  return out.filter((_, i) => i % stride === 0);
}

/**
 * A short tick label: e-notation below 0.001 and from 10^12 up, k/M/G suffixes from 10,000 up (1,000 when ticks step
 * by thousands), otherwise as many decimals as the spacing `step` between ticks needs (0.5, 1.0, 1.5, not 0.5, 1, 1.5).
 */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const trim = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (a >= 1e12 || a < 1e-3) {
    // e-notation, with as many digits as the spacing of the ticks needs (none beyond 3).
    const e = Math.floor(Math.log10(a) + 1e-12);
    const digits = Math.max(0, Math.min(3, e - Math.floor(Math.log10(step) + 1e-9)));
    const [m, x] = v.toExponential(digits).split('e');
    return `${trim(m!)}e${x!.replace('+', '')}`;
  }
  // k/M/G from 10,000 up, and from 1,000 when the ticks step by thousands (so 8k sits beside 10k, not 8000).
  if (a >= 1e4 || (a >= 1e3 && step >= 1e3)) {
    const [d, suffix] = a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
    const decimals = Math.max(0, Math.min(3, -Math.floor(Math.log10(step / d) + 1e-9)));
    return trim((v / d).toFixed(decimals)) + suffix;
  }
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

// ---------------------------------------------------------------------------------------------------------------
// The plot

const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [232, 232, 232];
const TEXT: Rgb = [30, 30, 30];

/**
 * Largest magnitude drawn (and, on a log axis, its inverse the smallest): the axis arithmetic (ranges, padding, a
 * decade either side) stays finite with doubles. Points beyond it are treated like NaN and break the line.
 */
const MAX_MAGNITUDE = 1e300;

/** Drawable points of a series (positive y on a log axis), as runs separated where the line must break. */
function runs(s: Series, logY: boolean): Array<Array<readonly [number, number]>> {
  const sorted = [...s.points].sort((p, q) => p[0] - q[0]);
  const out: Array<Array<readonly [number, number]>> = [];
  let cur: Array<readonly [number, number]> = [];
  for (const p of sorted) {
    const ok = Math.abs(p[0]) <= MAX_MAGNITUDE && Math.abs(p[1]) <= MAX_MAGNITUDE && (!logY || p[1] >= 1 / MAX_MAGNITUDE);
    if (ok) cur.push(p);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Keeps, per pixel column, the first, lowest, highest and last point: the same picture from far fewer segments. */
function decimate(pts: Array<readonly [number, number]>, toPx: (x: number) => number): Array<readonly [number, number]> {
  if (pts.length < 2000) return pts;
  const out: Array<readonly [number, number]> = [];
  let col = NaN;
  let bucket: Array<readonly [number, number]> = [];
  const flush = (): void => {
    if (!bucket.length) return;
    let lo = bucket[0]!, hi = bucket[0]!;
    for (const p of bucket) {
      if (p[1] < lo[1]) lo = p;
      if (p[1] > hi[1]) hi = p;
    }
    const keep = new Set([bucket[0]!, lo, hi, bucket[bucket.length - 1]!]);
    for (const p of bucket) if (keep.has(p)) out.push(p);
    bucket = [];
  };
  for (const p of pts) {
    const c = Math.floor(toPx(p[0]));
    if (c !== col) {
      flush();
      col = c;
    }
    bucket.push(p);
  }
  flush();
  return out;
}

export function renderPlot(opts: PlotOptions): Canvas {
  const W = opts.width ?? 800, H = opts.height ?? 480;
  const logY = opts.logY === true;
  const cv = new Canvas(W, H);
  const seriesRuns = opts.series.map((s) => runs(s, logY));
  const all = seriesRuns.flat(2);

  const titleScale = 2;
  cv.text(Math.round((W - textWidth(opts.title, titleScale)) / 2), 10, opts.title, TEXT, titleScale);
  if (all.length === 0) {
    const msg = 'no data recorded';
    cv.text(Math.round((W - textWidth(msg, 2)) / 2), Math.round(H / 2) - 8, msg, [120, 120, 120], 2);
    return cv;
  }

  // Data ranges, padded; a flat series gets a band around its value.
  // Loops, not Math.min(...xs): a long run has more points than the call stack takes arguments.
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const [x, y] of all) {
    if (x < xMin) xMin = x;
    if (x > xMax) xMax = x;
    if (y < yMin) yMin = y;
    if (y > yMax) yMax = y;
  }
  // A range below the precision of its values is a flat series: give it a band as if it were exactly flat.
  const flat = (lo: number, hi: number): boolean => hi - lo <= 1e-9 * Math.max(Math.abs(lo), Math.abs(hi));
  if (flat(xMin, xMax)) {
    const d = Math.max(1, Math.abs(xMin) * 1e-6);
    xMax = xMin + d;
    xMin -= d;
  }
  // Steps start near 0: start the axis there; pad the right so end-point markers are not cut by the frame.
  if (xMin >= 0 && xMin <= 0.2 * (xMax - xMin)) xMin = 0;
  xMax += (xMax - xMin) * 0.015;
  if (logY) {
    if (yMax / yMin < 1.05) {
      yMin /= 1.05;
      yMax *= 1.05;
    }
    // 5% of the decades either side, at most one decade (so the axis stays inside the doubles).
    const pad = Math.min(1, (Math.log10(yMax) - Math.log10(yMin)) * 0.05);
    yMin /= 10 ** pad;
    yMax *= 10 ** pad;
  } else {
    if (flat(yMin, yMax)) {
      const c = yMin;
      const d = Math.abs(c) * 0.1 || 1;
      yMin = c - d;
      yMax = c + d;
    }
    const pad = (yMax - yMin) * 0.05;
    // Non-negative quantities near zero (lr, throughput) start the axis at 0 rather than below it.
    yMin = yMin >= 0 && (yMin - pad < 0 || opts.yFromZero) ? 0 : yMin - pad;
    yMax += pad;
  }

  // Within about a decade a log axis gets dense linear ticks, thinned below by pixel spacing; over several decades
  // it gets 1-2-5 x 10^k, each labelled with its own precision.
  const manyDecades = logY && Math.log10(yMax / yMin) >= 1.2;
  const yTicks = logY ? (manyDecades ? logTicks(yMin, yMax) : linearTicks(yMin, yMax, 12).filter((t) => t > 0)) : linearTicks(yMin, yMax);
  const yStep = yTicks.length > 1 ? Math.abs(yTicks[1]! - yTicks[0]!) : Math.abs(yTicks[0] ?? 1);
  const yLabels = yTicks.map((t) => formatTick(t, manyDecades ? t : yStep));
  const left = 16 + Math.max(0, ...yLabels.map((l) => textWidth(l))) + 8;
  const top = 44, right = W - 20, bottom = H - 44;
  const plotRect = { x0: left, y0: top, x1: right, y1: bottom };

  const xToPx = (x: number): number => left + ((x - xMin) / (xMax - xMin)) * (right - left);
  const yToPx = logY
    ? (y: number): number => bottom - ((Math.log(y) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin))) * (bottom - top)
    : (y: number): number => bottom - ((y - yMin) / (yMax - yMin)) * (bottom - top);

  // Grid and tick labels, bottom up; a tick closer than 24 px to the last one drawn is skipped.
  let lastTickY = Infinity;
  yTicks.forEach((t, i) => {
    const py = Math.round(yToPx(t));
    if (py < top || py > bottom || lastTickY - py < 24) return;
    lastTickY = py;
    cv.fillRect(left, py, right - left, 1, GRID);
    cv.fillRect(left - 4, py, 4, 1, AXIS);
    cv.text(left - 8 - textWidth(yLabels[i]!), py - 3, yLabels[i]!, TEXT);
  });
  const xTicks = linearTicks(xMin, xMax, 7);
  const xStep = xTicks.length > 1 ? xTicks[1]! - xTicks[0]! : 1;
  let lastLabelRight = -Infinity;
  for (const t of xTicks) {
    const px = Math.round(xToPx(t));
    if (px < left || px > right) continue;
    cv.fillRect(px, top, 1, bottom - top, GRID);
    cv.fillRect(px, bottom, 1, 4, AXIS);
    const label = formatTick(t, xStep);
    const lx = Math.round(px - textWidth(label) / 2);
    if (lx > lastLabelRight + 8) {
      cv.text(lx, bottom + 8, label, TEXT);
      lastLabelRight = lx + textWidth(label);
    }
  }
  // Frame.
  cv.fillRect(left, top, right - left + 1, 1, AXIS);
  cv.fillRect(left, bottom, right - left + 1, 1, AXIS);
  cv.fillRect(left, top, 1, bottom - top + 1, AXIS);
  cv.fillRect(right, top, 1, bottom - top + 1, AXIS);

  if (opts.xLabel) cv.text(Math.round((left + right - textWidth(opts.xLabel)) / 2), bottom + 24, opts.xLabel, TEXT);
  const yLabel = (opts.yLabel ?? '') + (logY ? ' (log scale)' : '');
  if (yLabel.trim()) cv.text(left, top - 14, yLabel.trim(), TEXT);

  // Series, in order, each composited from its own coverage mask.
  const masks: Coverage[] = [];
  opts.series.forEach((s, si) => {
    const cov = new Coverage(W, H, plotRect);
    const w = s.width ?? 1.5;
    for (const run of seriesRuns[si]!) {
      const pts = decimate(run, xToPx).map((p) => [xToPx(p[0]), yToPx(p[1])] as const);
      if (pts.length === 1) cov.dot(pts[0]![0], pts[0]![1], Math.max(w, 2));
      for (let i = 1; i < pts.length; i++) cov.segment(pts[i - 1]![0], pts[i - 1]![1], pts[i]![0], pts[i]![1], w);
      if (s.markers) for (const p of pts) cov.dot(p[0], p[1], w + 1.5);
    }
    cov.paint(cv, s.color);
    masks.push(cov);
  });

  // Legend (two or more series), in whichever inside corner hides the least data.
  const named = opts.series.filter((s, i) => s.name && seriesRuns[i]!.length > 0);
  if (named.length > 1) {
    const lw = 28 + Math.max(...named.map((s) => textWidth(s.name))) + 12;
    const lh = 8 + named.length * 14;
    const corners: Array<[number, number]> = [
      [right - lw - 8, top + 8],
      [right - lw - 8, bottom - lh - 8],
      [left + 8, top + 8],
      [left + 8, bottom - lh - 8],
    ];
    const hidden = ([x0, y0]: [number, number]): number => {
      let sum = 0;
      for (const m of masks) for (let y = y0; y < y0 + lh; y++) for (let x = x0; x < x0 + lw; x++) sum += m.a[y * W + x]!;
      return sum;
    };
    let [lx, ly] = corners[0]!;
    let best = Infinity;
    for (const c of corners) {
      const h = hidden(c);
      if (h < best - 1e-6) [best, lx, ly] = [h, c[0], c[1]];
    }
    cv.fillRect(lx, ly, lw, lh, [255, 255, 255]);
    cv.fillRect(lx, ly, lw, 1, [180, 180, 180]);
    cv.fillRect(lx, ly + lh - 1, lw, 1, [180, 180, 180]);
    cv.fillRect(lx, ly, 1, lh, [180, 180, 180]);
    cv.fillRect(lx + lw - 1, ly, 1, lh, [180, 180, 180]);
    named.forEach((s, i) => {
      const cy = ly + 8 + i * 14;
      cv.fillRect(lx + 6, cy + 2, 18, 3, s.color);
      cv.text(lx + 30, cy, s.name, TEXT);
    });
  }
  return cv;
}

/** The plot as PNG bytes. */
export function plotPng(opts: PlotOptions): Buffer {
  return renderPlot(opts).png();
}
