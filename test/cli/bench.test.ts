/** `lmforge bench`: one JSON line with the timing, throughput and memory fields docs/benchmarks.md and docs/cuda.md name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI } from '../helpers.js';

const bench = (...args: string[]) => spawnSync(process.execPath, [CLI, 'bench', ...args], { encoding: 'utf8' });

test('bench prints one JSON line: step times, tokens/s, GFLOP/s, engine peak and host RSS', () => {
  const r = bench('--preset', 'cpu-tiny', '--steps', '3', '--batch', '2', '--seq', '8', '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]!) as Record<string, number | string | null>;
  assert.deepEqual([j.name, j.device, j.params, j.B, j.T, j.threads, j.steps, j.mfu], ['cpu-tiny', 'cpu', 20235648, 2, 8, 1, 3, null]);
  const min = j.step_s_min as number, med = j.step_s as number, max = j.step_s_max as number;
  assert.ok(min > 0 && min <= med && med <= max, `${min} <= ${med} <= ${max}`);
  // 16 tokens a step at the median step time; the model's FLOPs per token at seq 8.
  assert.ok(Math.abs((j.tokens_per_s as number) - 16 / med) <= 0.05 + 1e-3 * (16 / med));
  assert.ok((j.gflops_per_s as number) > 0);
  // The engine held weights, gradients and AdamW state at least: 4 x 20.2M floats.
  assert.ok((j.engine_peak_mib as number) >= (4 * 4 * 20235648) / 2 ** 20, `engine peak ${j.engine_peak_mib}`);
  assert.ok((j.peak_rss_mib as number) > (j.engine_peak_mib as number) * 0.5);
  assert.ok((j.activation_mib as number) > 0);
});

test('bench: --help, a missing preset and an unknown one', () => {
  let r = bench('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: lmforge bench --preset NAME/);
  r = bench();
  assert.equal(r.status, 2);
  r = bench('--preset', 'cpu-huge');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown preset 'cpu-huge'. Presets: .*cpu-tiny/);
});
