/**
 * Parity with Hugging Face transformers on the golden cases in test/fixtures/golden and ../shared/golden (see its
 * README for how they were made): logits, loss, every gradient, and three AdamW steps, through the CLI verb.
 *
 * The tolerances are the README's, written here (and checked against the README's text), and the errors are
 * computed here: neither comes from src/parity/golden.ts, so loosening or breaking the comparison there cannot
 * make this test pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { FP32_TOLERANCES, goldenArgs, readGoldenCase } from '../../src/parity/golden.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { CLI, GOLDEN_FIXTURES, goldenCases, relErr as relL2 } from '../helpers.js';

const cases = goldenCases();

/** The golden README's float32 tolerances. */
const README_TOLERANCES = {
  /** relative L2 error of the logits */
  logits: 1e-5,
  /** absolute error of the loss */
  loss: 1e-5,
  /** relative L2 error of every gradient */
  grads: 1e-4,
  /** relative error of each train.losses entry (and of the gradient norms) */
  trainLosses: 1e-5,
  /** relative L2 error of every train.final tensor */
  final: 1e-4,
};

test('golden cases are present', () => {
  assert.ok(cases.size >= 4, 'expected the four public golden cases in test/fixtures/golden');
});

test("the tolerances are the golden README's, and the library's float32 tolerances are no looser", () => {
  const readme = readFileSync(join(GOLDEN_FIXTURES, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  assert.match(readme, /logits relative error \(L2 norm of the difference over L2 norm of the reference\) at most 1e-5/);
  assert.match(readme, /loss within 1e-5 absolute/);
  assert.match(readme, /every gradient's relative error at most 1e-4/);
  assert.match(readme, /`train\.losses` within 1e-5 relative and every `train\.final` tensor within 1e-4 relative/);
  for (const [k, v] of Object.entries(README_TOLERANCES)) assert.ok(Number(FP32_TOLERANCES[k as keyof typeof FP32_TOLERANCES]) <= Number(v), `${k}`);
});

for (const [name, dir] of cases) {
  test(`golden ${name}: forward-backward and AdamW steps match transformers at float32 tolerances`, () => {
    const c = readGoldenCase(dir);
    const tmp = mkdtempSync(join(tmpdir(), 'lmf-golden-'));
    const out = join(tmp, 'out.safetensors');
    const r = spawnSync(process.execPath, [CLI, ...goldenArgs(c, out)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `forward-backward failed: ${r.stderr}`);
    const got = readSafetensors(out);
    const exp = readSafetensors(join(dir, 'expected.safetensors'));
    const T = README_TOLERANCES;
    const problems: string[] = [];
    const check = (what: string, err: number, limit: number) => {
      if (!(err <= limit)) problems.push(`${what}: error ${err.toExponential(2)} > ${limit}`);
    };
    try {
      check('logits', relL2(got.toFloat64('logits'), exp.toFloat64('logits')), T.logits);
      check('loss', Math.abs(got.toFloat64('loss')[0]! - exp.toFloat64('loss')[0]!), T.loss);
      const grads = exp.names().filter((n) => n.startsWith('grad.'));
      assert.ok(grads.length >= 5, 'the case has gradients');
      assert.deepEqual(got.names().filter((n) => n.startsWith('grad.')).sort(), [...grads].sort(), 'the same gradients as the reference');
      for (const g of grads) check(g, relL2(got.toFloat64(g), exp.toFloat64(g)), T.grads);
      const losses = exp.toFloat64('train.losses');
      const gotLosses = got.toFloat64('train.losses');
      assert.equal(gotLosses.length, losses.length, 'train.losses entries');
      losses.forEach((v, i) => check(`train.losses[${i}]`, Math.abs(gotLosses[i]! - v) / Math.abs(v), T.trainLosses));
      check('train.grad_norms', relL2(got.toFloat64('train.grad_norms'), exp.toFloat64('train.grad_norms')), T.trainLosses);
      const finals = exp.names().filter((n) => n.startsWith('train.final.'));
      assert.equal(finals.length, grads.length, 'a final weight per gradient');
      for (const f of finals) check(f, relL2(got.toFloat64(f), exp.toFloat64(f)), T.final);
    } finally {
      got.close();
      exp.close();
      rmSync(tmp, { recursive: true, force: true });
    }
    assert.deepEqual(problems, []);
  });
}
