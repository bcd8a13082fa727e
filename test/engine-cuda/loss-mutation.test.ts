/**
 * The head's softmax kernels (src/engine/cuda/loss.cu) against a float64 reference on bf16 logits, as written and
 * with one thing broken at a time: each broken copy must fail the check. Copies of loss.cu are compiled with g++
 * against the interpreter objects `npm install` built, with a small driver (native/loss-check.cc: row losses, bf16
 * dlogits in place, log-probabilities and the first-index argmax, tied maxima, ignored rows, vocabularies of 517,
 * 4101 and 9 columns).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.js';
import { interpreterObjects } from './kernel-mutants.js';
import { device, skipReason } from './harness.js';

const interpretOnly = skipReason || (device !== 'cuda-interpret' ? 'runs on the interpreted engine only' : false);
const SOURCE = join(REPO_ROOT, 'src', 'engine', 'cuda', 'loss.cu');

test('a broken online softmax, tie rule or tail bound in loss.cu fails the check; the source as written passes', { skip: interpretOnly }, () => {
  const objects = interpreterObjects();
  for (const o of objects) assert.ok(existsSync(o), `${o} is missing: run npm install (it builds the interpreted engine)`);
  const source = readFileSync(SOURCE, 'utf8');
  // Each mutant changes one thing; the first string must occur exactly once in the source.
  const mutants: Record<string, [string, string]> = {
    'the running sum is not rescaled when the maximum grows': ['      s *= expf(m - lm);', '      s *= 1.f;'],
    "a thread's later equal maximum replaces its first": ['    if (lm > m) {', '    if (lm >= m) {'],
    'across threads, the larger index wins a tie': ['(ov == v && oi < i)', '(ov == v && oi > i)'],
    'the last vocab % 8 logits are not read': ['  if (j < vocab) {\n    v[0] = toF32(row[j]);', '  if (j < vocab - 1) {\n    v[0] = toF32(row[j]);'],
    'dlogits miss the one-hot at the target': ['if (q * kVec + c == t) v[c] -= gradScale;', 'if (q * kVec + c == t + 1) v[c] -= gradScale;'],
  };
  const dir = mkdtempSync(join(tmpdir(), 'lmf-loss-mutants-'));
  try {
    const flags = ['-std=c++17', '-O1', '-DLMF_CUDA_INTERPRET', '-Wno-unknown-pragmas',
      `-I${join(REPO_ROOT, 'src', 'engine', 'cuda', 'interpret', 'include')}`, `-I${join(REPO_ROOT, 'src', 'engine', 'cuda')}`];
    const variants: [string, string][] = [['as written', source]];
    for (const [name, [from, to]] of Object.entries(mutants)) {
      assert.equal(source.split(from).length, 2, `'${from}' occurs once in loss.cu`);
      variants.push([name, source.replace(from, to)]);
    }
    const builds = variants.map(([, text], i) => {
      const cu = join(dir, `loss-${i}.cc`);
      writeFileSync(cu, text);
      return { exe: join(dir, `check-${i}`), args: [...flags, join(REPO_ROOT, 'test', 'engine-cuda', 'native', 'loss-check.cc'), cu, ...objects, '-o', join(dir, `check-${i}`)] };
    });
    const script = builds.map((b) => `g++ ${b.args.map((a) => `'${a}'`).join(' ')} &`).join('\n') + '\nwait';
    const compiled = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    assert.equal(compiled.status, 0, compiled.stderr);
    const results = variants.map(([name], i) => {
      assert.ok(existsSync(builds[i]!.exe), `${name}: not built: ${compiled.stderr}`);
      const run = spawnSync(builds[i]!.exe, [], { encoding: 'utf8' });
      return { name, status: run.status, out: (run.stdout + run.stderr).trim() };
    });
    assert.equal(results[0]!.status, 0, `the source as written must pass: ${results[0]!.out}`);
    for (const r of results.slice(1)) assert.notEqual(r.status, 0, `mutant '${r.name}' passed: ${r.out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
