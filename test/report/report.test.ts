/**
 * `lmforge report RUN` on degenerate metrics: every series constant, nearly constant (lr 0.005 then
 * 0.005000000000000001, which once hung the tick loop until V8 died), a single point, all NaN, ±Inf, zero on a log
 * axis, denormals, and ranges up to the largest doubles. Each must return within seconds with four readable PNGs.
 * The report runs in a child process with a timeout, so a hang fails the test instead of stalling the suite.
 * Written against the verb and the run directory, not the renderer, so it holds for any plotting code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI } from '../helpers.js';
import { decodePng } from './png-decode.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-cases-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

type Value = number | string | null;
/** A train record line with `fields` written as raw JSON numbers ('1e999' parses to Infinity, null means NaN). */
function trainLine(step: number, fields: Record<string, Value>): string {
  const parts = Object.entries(fields).map(([k, v]) => `"${k}":${v === null ? 'null' : String(v)}`);
  return `{"kind":"train","step":${step},${parts.join(',')}}`;
}

/** A run of `n` train records whose field f takes values[f][i % len]; optional eval losses. */
function series(n: number, values: Record<string, Value[]>, evals: Value[] = []): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const f: Record<string, Value> = {};
    for (const [k, vs] of Object.entries(values)) f[k] = vs[i % vs.length] as Value;
    lines.push(trainLine(i + 1, f));
  }
  evals.forEach((v, i) => lines.push(`{"kind":"eval","step":${i + 1},"loss":${v}}`));
  return lines.join('\n') + '\n';
}

const CASES: Record<string, string> = {
  'constant everywhere': series(20, { loss: [3], lr: [0.005], grad_norm: [1], tokens_per_s: [1000] }, [3, 3]),
  // The run that crashed: train --set steps=2 warmup_steps=1 logs two learning rates one ulp apart.
  'nearly constant (one ulp apart)': series(2, { loss: [2.5, 2.5000000000000004], lr: [0.005, 0.005000000000000001], grad_norm: [0.7, 0.7000000000000001], tokens_per_s: [1e4, 10000.000000000002] }),
  'single point': series(1, { loss: [4.2], lr: [1e-3], grad_norm: [2], tokens_per_s: [500] }, [4.3]),
  'all NaN': series(10, { loss: [null], lr: [null], grad_norm: [null], tokens_per_s: [null] }),
  '+Inf and -Inf': series(12, { loss: ['1e999', 3, '-1e999'], lr: ['1e999', 1e-3], grad_norm: ['-1e999', '1e999'], tokens_per_s: ['1e999', 100] }, ['1e999', 2]),
  'zero and negative on log axes': series(8, { loss: [0, -1, 1e-3, 5], lr: [0, 0], grad_norm: [0, -2, 3], tokens_per_s: [0, 0] }),
  'denormals': series(6, { loss: [5e-324, 1e-310, 2], lr: [5e-324, 4e-324], grad_norm: [5e-324, 1], tokens_per_s: [5e-324, 1e-320] }),
  'huge ranges': series(9, { loss: [1e-300, 1e300, 1e-200, 1.7e308], lr: [-1.7e308, 1.7e308, 0], grad_norm: [1e-308, 1.7e308], tokens_per_s: [-1e300, 1e300, 1.7976931348623157e308] }, [1e-300, 1e300]),
  'tiny range at a huge magnitude': series(5, { loss: [1e300, 1.0000000000000002e300], lr: [1e20, 1.0000000000000001e20, 1.0000000000000003e20], grad_norm: [123456789.123, 123456789.12300001], tokens_per_s: [-5e-5, -5.000000000000001e-5] }),
};

for (const [name, metrics] of Object.entries(CASES)) {
  test(`lmforge report returns on degenerate series: ${name}`, () => {
    const run = path.join(tmp, name.replace(/\W+/g, '-'));
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), metrics);
    const r = spawnSync(process.execPath, [CLI, 'report', run], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: the report did not return`);
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.trim().split('\n');
    // Each plot as PNG and SVG.
    assert.deepEqual(files.map((f) => path.basename(f)).sort(), ['grad_norm', 'loss', 'lr', 'throughput'].flatMap((p) => [`${p}.png`, `${p}.svg`]));
    for (const f of files.filter((f) => f.endsWith('.png'))) {
      const png = decodePng(fs.readFileSync(f));
      assert.deepEqual([png.width, png.height], [800, 480], f);
    }
    for (const f of files.filter((f) => f.endsWith('.svg'))) assert.match(fs.readFileSync(f, 'utf8'), /^<svg[^>]+width="800" height="480"/, f);
  });
}

test('lmforge report: --out, the usage line, and a clear error for a directory without metrics', () => {
  const run = path.join(tmp, 'out-flag');
  fs.mkdirSync(run);
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), series(3, { loss: [3, 2, 1], lr: [1e-3] }));
  const out = path.join(tmp, 'elsewhere');
  let r = spawnSync(process.execPath, [CLI, 'report', run, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.endsWith('.png')).sort(), ['grad_norm.png', 'loss.png', 'lr.png', 'throughput.png']);
  assert.ok(!fs.existsSync(path.join(run, 'plots')));
  r = spawnSync(process.execPath, [CLI, 'report'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /report: give a run directory/);
  r = spawnSync(process.execPath, [CLI, 'report', path.join(tmp, 'nothing-here')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /nothing-here.* does not exist/);
});
