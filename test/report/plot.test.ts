import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderPlot, niceStep, linearTicks, logTicks, formatTick, FONT, textWidth, type Rgb } from '../../src/report/plot.js';
import { writeReport, smooth } from '../../src/report/run-plots.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { decodePng } from './png-decode.js';

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

test('nice ticks and short labels', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(0.0006, 6), 0.0001);
  assert.equal(niceStep(2000, 7), 200); // 285.7 -> 2 x 10^2
  assert.equal(niceStep(700, 6), 100); // 116.7 -> 1 x 10^2
  assert.deepEqual(linearTicks(0.3, 2.1, 5), [0.5, 1, 1.5, 2]);
  assert.deepEqual(linearTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.ok(linearTicks(0, 6e-4, 6).every((t, i, a) => i === 0 || close(t - a[i - 1]!, 1e-4)));
  assert.deepEqual(logTicks(0.3, 20), [0.5, 1, 2, 5, 10, 20]);
  assert.deepEqual(logTicks(1e-3, 1e5), [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000, 100000]); // 1 x 10^k only
  assert.deepEqual(logTicks(1e-6, 1e6), [1e-6, 1e-4, 0.01, 1, 100, 10000, 1e6]); // thinned to <= 10
  assert.equal(formatTick(3e-4, 1e-4), '3e-4');
  assert.equal(formatTick(2.5e-4, 5e-5), '2.5e-4');
  assert.equal(formatTick(1.5, 0.5), '1.5');
  assert.equal(formatTick(2, 0.5), '2.0');
  assert.equal(formatTick(12000, 2000), '12k');
  assert.equal(formatTick(8000, 2000), '8k');
  assert.equal(formatTick(8000, 500), '8000');
  assert.equal(formatTick(12500, 500), '12.5k');
  assert.equal(formatTick(2_500_000, 500_000), '2.5M');
  assert.equal(formatTick(0, 1), '0');
  assert.equal(formatTick(-0.5, 0.5), '-0.5');
});

test('font: every glyph is 5x8 and label characters are all present and distinct', () => {
  const needed = '0123456789.-+%/:() abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const seen = new Set<string>();
  for (const ch of needed) {
    const g = FONT.get(ch);
    assert.ok(g, `glyph '${ch}'`);
    assert.equal(g.length, 8);
    const key = g.map((r) => r.map((b) => (b ? '#' : '.')).join('')).join('/');
    if (ch !== ' ') assert.ok(!seen.has(key), `glyph '${ch}' duplicates another`);
    seen.add(key);
  }
  assert.equal(textWidth('abc'), 17);
  assert.equal(textWidth('abc', 2), 34);
});

/** Centroid of the pixels of one exact colour in the columns [x0, x1). */
function centroidY(rgb: Uint8Array, W: number, H: number, c: Rgb, x0: number, x1: number): number {
  let sum = 0, n = 0;
  for (let y = 0; y < H; y++)
    for (let x = x0; x < x1; x++) {
      const i = (y * W + x) * 3;
      if (rgb[i] === c[0] && rgb[i + 1] === c[1] && rgb[i + 2] === c[2]) {
        sum += y;
        n++;
      }
    }
  return n ? sum / n : NaN;
}

test('a rising line is drawn rising, a falling one falling, on linear and log axes', () => {
  const up: Rgb = [200, 0, 0], down: Rgb = [0, 0, 200];
  for (const logY of [false, true]) {
    const cv = renderPlot({
      title: 'test',
      logY,
      series: [
        { name: 'up', points: Array.from({ length: 50 }, (_, i) => [i, 1 + i] as const), color: up, width: 3 },
        { name: 'down', points: Array.from({ length: 50 }, (_, i) => [i, 100 - 1.5 * i] as const), color: down, width: 3 },
      ],
    });
    const W = cv.width, H = cv.height;
    const png = decodePng(cv.png());
    assert.deepEqual(png.rgb, cv.rgb);
    const l = Math.floor(W * 0.25), r = Math.floor(W * 0.75);
    // Screen y grows downwards: rising data means smaller y on the right.
    assert.ok(centroidY(png.rgb, W, H, up, r - 40, r) < centroidY(png.rgb, W, H, up, l, l + 40), `up, logY=${logY}`);
    assert.ok(centroidY(png.rgb, W, H, down, r - 40, r) > centroidY(png.rgb, W, H, down, l, l + 40), `down, logY=${logY}`);
  }
});

test('report: four PNGs from a synthetic run, readable, with the series colours present', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-'));
  const log = new MetricsLog(dir);
  for (let s = 1; s <= 300; s++) {
    const loss = 3 + 8 * Math.exp(-s / 60) + 0.1 * Math.sin(s * 1.7);
    log.train({ step: s, loss: s === 150 ? NaN : loss, lr: 6e-4 * Math.min(1, s / 30), grad_norm: 0.4 + 10 * Math.exp(-s / 20), tokens_per_s: 9000 + 300 * Math.sin(s), mfu: 0.4 });
    if (s % 50 === 0) log.eval({ step: s, loss: loss + 0.1 });
  }
  log.close();
  const files = writeReport(dir);
  assert.deepEqual(files.map((f) => path.basename(f)), ['loss.png', 'lr.png', 'throughput.png', 'grad_norm.png']);
  // Pixels whose hue is that of a series (anti-aliasing mixes a line's colour with the white around it).
  type Px = [number, number, number];
  const count = (rgb: Uint8Array, is: (p: Px) => boolean): number => {
    let n = 0;
    for (let i = 0; i < rgb.length; i += 3) if (is([rgb[i]!, rgb[i + 1]!, rgb[i + 2]!])) n++;
    return n;
  };
  const blue = ([r, g, b]: Px): boolean => b > r + 60 && b > g + 40;
  const orange = ([r, g, b]: Px): boolean => r > g + 50 && g > b + 30;
  const green = ([r, g, b]: Px): boolean => g > r + 40 && g > b + 40;
  const red = ([r, g, b]: Px): boolean => r > g + 60 && r > b + 60;
  const loss = decodePng(fs.readFileSync(files[0]!));
  assert.deepEqual([loss.width, loss.height], [800, 480]);
  assert.ok(count(loss.rgb, blue) > 300, 'train loss (blue) drawn');
  assert.ok(count(loss.rgb, orange) > 50, 'val loss (orange) drawn');
  assert.ok(count(decodePng(fs.readFileSync(files[1]!)).rgb, green) > 300, 'lr (green) drawn');
  assert.equal(count(decodePng(fs.readFileSync(files[1]!)).rgb, red), 0, 'no red in the lr plot');
  assert.ok(count(decodePng(fs.readFileSync(files[3]!)).rgb, red) > 300, 'grad norm (red) drawn');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'plots')).sort(), ['grad_norm.png', 'loss.png', 'lr.png', 'throughput.png']);

  // A run with no records yet still gets its four (empty) plots rather than a crash.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-'));
  fs.writeFileSync(path.join(empty, 'metrics.jsonl'), '');
  for (const f of writeReport(empty)) assert.equal(decodePng(fs.readFileSync(f)).width, 800);
  assert.throws(() => writeReport(path.join(empty, 'missing')), /metrics.jsonl does not exist/);
});

test('EMA smoothing is bias-corrected and skips non-finite values', () => {
  const s = smooth([[1, 4], [2, NaN], [3, 4], [4, 4]]);
  assert.deepEqual(s, [[1, 4], [3, 4], [4, 4]]);
  // span 5 -> alpha 1/3: after 2 and 8, (1/3*2*(2/3) + 1/3*8) / (1 - (2/3)^2) = (4/9 + 8/3) / (5/9) = 5.6
  const t = smooth([[1, 2], [2, 8]]);
  assert.ok(close(t[1]![1], 5.6));
});

test('ticks of degenerate ranges: finite, bounded, never a hang', () => {
  // A range one ulp wide at 0.005: k * step cannot step through the multiples (k beyond 2^53).
  assert.deepEqual(linearTicks(0.005, 0.005000000000000001), []);
  assert.deepEqual(linearTicks(1e300, 1e300 * (1 + 2e-16)), []);
  for (const [lo, hi] of [[NaN, 1], [0, Infinity], [-Infinity, 0], [2, 1], [-1.7e308, 1.7e308]] as const) assert.deepEqual(linearTicks(lo, hi), [], `${lo}..${hi}`);
  assert.deepEqual(linearTicks(3, 3), [3]);
  assert.deepEqual(linearTicks(-1e300, 1e300, 4), [-1e300, -5e299, 0, 5e299, 1e300]);
  for (const [lo, hi] of [[0, 5], [-1, 10], [0, Infinity], [NaN, 10], [10, 1], [5e-324, 1]] as const) {
    const t = logTicks(lo, hi);
    assert.ok(t.length <= 12 && t.every(Number.isFinite), `${lo}..${hi}`);
  }
  assert.deepEqual(logTicks(1e-300, 1e300).length, 10);
  assert.equal(formatTick(1e300, 1e299), '1e300');
  assert.equal(formatTick(2.5e15, 5e14), '2.5e15');
  assert.equal(formatTick(5e11, 1e11), '500G');
});
