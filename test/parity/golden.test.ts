/**
 * Parity with Hugging Face transformers on the golden cases in test/fixtures/golden and ../shared/golden (see its README for how they were
 * made and the tolerances): logits, loss, every gradient, and three AdamW steps, through the CLI verb.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { compareGolden, FP32_TOLERANCES, goldenArgs, readGoldenCase } from '../../src/parity/golden.js';
import { CLI, goldenCases } from '../helpers.js';

const cases = goldenCases();

test('golden cases are present', () => {
  assert.ok(cases.size >= 4, 'expected the four public golden cases in test/fixtures/golden');
});

for (const [name, dir] of cases) {
  test(`golden ${name}: forward-backward and AdamW steps match transformers at float32 tolerances`, () => {
    const c = readGoldenCase(dir);
    const tmp = mkdtempSync(join(tmpdir(), 'lmf-golden-'));
    const out = join(tmp, 'out.safetensors');
    const r = spawnSync(process.execPath, [CLI, ...goldenArgs(c, out)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `forward-backward failed: ${r.stderr}`);
    const report = compareGolden(c.dir, out, FP32_TOLERANCES);
    rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(report.problems, []);
  });
}
