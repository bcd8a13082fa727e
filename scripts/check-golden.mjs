#!/usr/bin/env node
// Runs every golden case through `lmforge forward-backward` and prints the worst error per quantity against the
// tolerances of test/fixtures/golden/README.md. Exit status 1 on any failure. Cases: test/fixtures/golden plus
// $LMFORGE_SHARED/golden (default ../shared/golden) when present, or only --golden DIR.
//   node scripts/check-golden.mjs [--golden DIR] [--device cpu|cuda|cuda-interpret] [--bf16] [-- extra forward-backward flags]
// (the CUDA engines compute in bf16 unless LMFORGE_CUDA_PRECISION=fp32: pass --bf16 with them, or set that)
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { compareGolden, goldenArgs, listGoldenCases, readGoldenCase, FP32_TOLERANCES, BF16_TOLERANCES } = await import(join(root, 'dist/src/parity/golden.js'));
const arg = (n, d) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
const only = arg('golden', undefined);
const shared = process.env.LMFORGE_SHARED ?? join(root, '..', 'shared');
const cases = listGoldenCases(only ? [only] : [join(root, 'test', 'fixtures', 'golden'), join(shared, 'golden')]);
const device = arg('device', 'cpu');
const bf16 = process.argv.includes('--bf16');
const extra = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];
const tol = bf16 ? BF16_TOLERANCES : FP32_TOLERANCES;
const tmp = mkdtempSync(join(tmpdir(), 'lmf-golden-'));
let failed = 0;
const cols = ['logits', 'loss', 'grads', 'train.losses', 'train.grad_norms', 'train.final'];
console.log(`| case | ${cols.join(' | ')} | result |`);
console.log(`| --- | ${cols.map(() => '---').join(' | ')} | --- |`);
for (const [name, dir] of cases) {
  const c = readGoldenCase(dir);
  const out = join(tmp, `${name}.safetensors`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'lmforge.js'), ...goldenArgs(c, out), '--device', device, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) {
    failed++;
    console.log(`| ${name} | forward-backward failed: ${r.stderr.trim().split('\n').pop()} |`);
    continue;
  }
  const rep = compareGolden(c.dir, out, tol);
  if (rep.problems.length) failed++;
  console.log(`| ${name} | ${cols.map((k) => (rep.worst[k] ?? NaN).toExponential(1)).join(' | ')} | ${rep.problems.length ? 'FAIL: ' + rep.problems.slice(0, 3).join('; ') : 'pass'} |`);
}
const floors = Object.entries(tol.gradFloors ?? {}).flatMap(([c, f]) => Object.entries(f).map(([k, v]) => `${c} ${k} ${v} (its bf16 floor, docs/cuda.md)`));
console.log(`\ntolerances (${bf16 ? 'bf16' : 'fp32'}): logits ${tol.logits}, loss ${tol.loss} abs, grads ${tol.grads}` +
  `${floors.length ? ' except ' + floors.join(', ') : ''}, train.losses ${tol.trainLosses}, train.final ${tol.final ?? 'not held'}; device ${device}`);
process.exit(failed ? 1 : 0);
