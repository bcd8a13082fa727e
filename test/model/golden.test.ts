/**
 * Parity with Hugging Face transformers on the golden cases in ../shared/golden (see its README for how they were
 * made and the tolerances): logits, loss, every gradient, and three AdamW steps, through the CLI verb.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { readSafetensors } from '../../src/io/safetensors.js';
import { relErr, REPO_ROOT, SHARED } from '../helpers.js';

const GOLDEN = join(SHARED, 'golden');
const cases = existsSync(GOLDEN) ? readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'case.json'))) : [];

test('golden cases are present', () => {
  assert.ok(cases.length >= 4, `expected the golden cases in ${GOLDEN}`);
});

for (const name of cases) {
  test(`golden ${name}: forward-backward and 3 AdamW steps match transformers`, () => {
    const dir = join(GOLDEN, name);
    const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
    const out = join(mkdtempSync(join(tmpdir(), 'lmf-golden-')), 'out.safetensors');
    const t = c.train;
    const r = spawnSync(process.execPath, [
      join(REPO_ROOT, 'bin', 'lmforge.js'), 'forward-backward', '--model', dir, '--batch', join(dir, 'batch.safetensors'), '--out', out,
      '--train-steps', String(t.steps), '--lr', String(t.lr), '--beta1', String(t.betas[0]), '--beta2', String(t.betas[1]),
      '--eps', String(t.eps), '--weight-decay', String(t.weight_decay), '--clip', String(t.clip),
    ], { encoding: 'utf8' });
    assert.equal(r.status, 0, `forward-backward failed: ${r.stderr}`);
    const got = readSafetensors(out);
    const exp = readSafetensors(join(dir, 'expected.safetensors'));
    const problems: string[] = [];
    const check = (key: string, tol: number) => {
      if (!got.has(key)) return problems.push(`${key}: missing from output`);
      const e = relErr(got.toFloat64(key), exp.toFloat64(key));
      if (!(e <= tol)) problems.push(`${key}: relative error ${e.toExponential(2)} > ${tol}`);
    };
    check('logits', 1e-5);
    const loss = got.toFloat64('loss')[0]!;
    const eloss = exp.toFloat64('loss')[0]!;
    if (!(Math.abs(loss - eloss) <= 1e-5)) problems.push(`loss ${loss} vs ${eloss}`);
    const names = exp.names();
    for (const k of names.filter((n) => n.startsWith('grad.'))) check(k, 1e-4);
    const gl = got.toFloat64('train.losses');
    const el = exp.toFloat64('train.losses');
    el.forEach((v, i) => {
      if (!(Math.abs(gl[i]! - v) <= 1e-5 * Math.abs(v))) problems.push(`train.losses[${i}] ${gl[i]} vs ${v}`);
    });
    check('train.grad_norms', 1e-5);
    for (const k of names.filter((n) => n.startsWith('train.final.'))) check(k, 1e-4);
    // Every parameter's gradient and final weight the reference has, we have, and no more.
    const ours = got.names().filter((n) => n.startsWith('grad.')).sort();
    const theirs = names.filter((n) => n.startsWith('grad.')).sort();
    assert.deepEqual(ours, theirs);
    got.close();
    exp.close();
    rmSync(out, { force: true });
    assert.deepEqual(problems, []);
  });
}
