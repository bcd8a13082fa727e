/** The chart description -> ECharts option -> SVG -> PNG path: axes from any data, and pictures that show it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartOption, formatTick, niceBounds, niceStep, smooth, type LineChart } from '../../src/report/chart.js';
import { renderSvg, svgToPng } from '../../src/report/render.js';
import { decodePng } from './png-decode.js';

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

test('nice steps and bounds, including degenerate ranges, without loops', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(2000, 7), 200);
  assert.ok(close(niceStep(0.0006, 6), 0.0001));
  assert.deepEqual(niceBounds(0.3, 2.1, 5), { min: 0, max: 2.5, step: 0.5 });
  assert.deepEqual(niceBounds(5, 5), { min: 4.4, max: 5.6, step: 0.2 }); // constant: +-10%
  assert.deepEqual(niceBounds(0, 0), { min: -1, max: 1, step: 0.5 }); // constant zero
  // Learning rates equal up to the last bit (the crash of issue 16): treated as constant.
  const lr = niceBounds(0.005, 0.005000000000000001);
  assert.ok(lr.min < 0.005 && lr.max > 0.005 && lr.step > 1e-5, JSON.stringify(lr));
  const huge = niceBounds(-1e300, 1e300);
  assert.ok(Number.isFinite(huge.step) && huge.min <= -1e300 && huge.max >= 1e300);
  const overflow = niceBounds(-Number.MAX_VALUE, Number.MAX_VALUE); // the span itself overflows: the middle half
  assert.ok(Number.isFinite(overflow.step) && Number.isFinite(overflow.max - overflow.min) && overflow.min <= -Number.MAX_VALUE / 4, JSON.stringify(overflow));
  assert.deepEqual(niceBounds(NaN, 3), { min: 0, max: 1, step: 0.2 });
  for (const [lo, hi] of [[1e-300, 2e-300], [3, 1], [-7.5, -7.49999], [123456789, 123456790]]) {
    const b = niceBounds(lo!, hi!);
    assert.ok(b.min <= Math.min(lo!, hi!) && b.max >= Math.max(lo!, hi!) && (b.max - b.min) / b.step <= 12, `${lo}..${hi}: ${JSON.stringify(b)}`);
  }
});

test('tick labels are short', () => {
  assert.equal(formatTick(12000, 2000), '12k');
  assert.equal(formatTick(12500, 500), '12.5k');
  assert.equal(formatTick(2_500_000, 500_000), '2.5M');
  assert.equal(formatTick(3e9, 1e9), '3G');
  assert.equal(formatTick(1.5, 0.5), '1.5');
  assert.equal(formatTick(2, 0.5), '2.0');
  assert.equal(formatTick(0.0052, 0.0002), '0.0052');
  assert.equal(formatTick(3e-5, 1e-5), '3e-5');
  assert.equal(formatTick(1e300, 1e300), '1e+300');
  assert.equal(formatTick(0, 1), '0');
});

test('options: NaN/Inf become gaps, a log axis without positive values falls back to linear, axes are finite', () => {
  const o = chartOption({
    title: 't', xLabel: 'x', yLabel: 'y', logY: true,
    series: [{ name: 's', points: [[0, -1], [1, NaN], [2, Infinity], [NaN, 3], [3, 0]] }],
  }) as { yAxis: { type: string; min: number; max: number }; series: { data: unknown[] }[] };
  assert.equal(o.yAxis.type, 'value');
  assert.deepEqual(o.series[0]!.data, [[0, -1], [1, null], [2, null], [3, 0]]);
  assert.ok(Number.isFinite(o.yAxis.min) && Number.isFinite(o.yAxis.max));
  const log = chartOption({ title: 't', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 's', points: [[0, 0.3], [1, 20], [2, -5]] }] }) as {
    yAxis: { type: string; min: number; max: number }; series: { data: unknown[] }[];
  };
  assert.deepEqual([log.yAxis.type, log.yAxis.min, log.yAxis.max], ['log', 0.1, 100]);
  assert.deepEqual(log.series[0]!.data[2], [2, null]);
  // tailFrom fits y to the late points: the early spike at 12 is outside.
  const tail = chartOption({ title: 't', xLabel: 'x', yLabel: 'y', tailFrom: 0.25, series: [{ name: 's', points: [[0, 12], [50, 6.1], [100, 5.9]] }] }) as {
    yAxis: { max: number };
  };
  assert.ok(tail.yAxis.max < 7, String(tail.yAxis.max));
});

test('EMA smoothing is bias-corrected and skips non-finite values', () => {
  assert.deepEqual(smooth([[1, 4], [2, NaN], [3, 4], [4, 4]]), [[1, 4], [3, 4], [4, 4]]);
  // span 5 -> alpha 1/3: after 2 and 8, (1/3*2*(2/3) + 1/3*8) / (1 - (2/3)^2) = 5.6
  assert.ok(close(smooth([[1, 2], [2, 8]])[1]![1], 5.6));
});

/** Mean screen row of the pixels near a colour in the columns [x0, x1). */
function rowOf(rgb: Uint8Array, W: number, H: number, c: [number, number, number], x0: number, x1: number): number {
  let sum = 0, n = 0;
  for (let y = 0; y < H; y++)
    for (let x = x0; x < x1; x++) {
      const i = (y * W + x) * 3;
      if (Math.abs(rgb[i]! - c[0]) + Math.abs(rgb[i + 1]! - c[1]) + Math.abs(rgb[i + 2]! - c[2]) < 40) {
        sum += y;
        n++;
      }
    }
  return n ? sum / n : NaN;
}

test('SVG and PNG: a rising line is drawn rising and a falling one falling, with title and tick text', () => {
  for (const logY of [false, true]) {
    const chart: LineChart = {
      title: 'Rising and falling', xLabel: 'step', yLabel: 'value', logY,
      series: [
        { name: 'up', points: Array.from({ length: 50 }, (_, i) => [i, 1 + i] as const), color: '#c80000', width: 3, markers: false },
        { name: 'down', points: Array.from({ length: 50 }, (_, i) => [i, 100 - 1.5 * i] as const), color: '#0000c8', width: 3, markers: false },
      ],
    };
    const svg = renderSvg(chart);
    assert.match(svg, /^<svg[^>]+width="800" height="480"/);
    assert.match(svg, />Rising and falling</);
    assert.match(svg, />step</);
    const png = decodePng(svgToPng(svg));
    assert.deepEqual([png.width, png.height], [800, 480]);
    const W = png.width, H = png.height;
    const l = 150, r = 650;
    // Screen y grows downwards: rising data sits higher (smaller y) on the right.
    assert.ok(rowOf(png.rgb, W, H, [200, 0, 0], r - 40, r) < rowOf(png.rgb, W, H, [200, 0, 0], l, l + 40), `up, logY=${logY}`);
    assert.ok(rowOf(png.rgb, W, H, [0, 0, 200], r - 40, r) > rowOf(png.rgb, W, H, [0, 0, 200], l, l + 40), `down, logY=${logY}`);
    // Text was rasterised with the bundled font: dark pixels in the title band.
    let dark = 0;
    for (let y = 5; y < 30; y++) for (let x = 250; x < 550; x++) if (png.rgb[(y * W + x) * 3]! < 100) dark++;
    assert.ok(dark > 200, `title pixels: ${dark}`);
  }
});
