/**
 * Parity with Hugging Face transformers on the golden cases in ../shared/golden (see its README for how they were
 * made and the tolerances): logits, loss, every gradient, and three AdamW steps, through the CLI verb.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { compareGolden, FP32_TOLERANCES, goldenArgs, readGoldenCase } from '../../src/train/golden.js';
import { CLI, SHARED } from '../helpers.js';

const GOLDEN = join(SHARED, 'golden');
const cases = existsSync(GOLDEN) ? readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'case.json'))) : [];

test('golden cases are present', () => {
  assert.ok(cases.length >= 4, `expected the golden cases in ${GOLDEN}`);
});

for (const name of cases) {
  test(`golden ${name}: forward-backward and AdamW steps match transformers at float32 tolerances`, () => {
    const c = readGoldenCase(join(GOLDEN, name));
    const tmp = mkdtempSync(join(tmpdir(), 'lmf-golden-'));
    const out = join(tmp, 'out.safetensors');
    const r = spawnSync(process.execPath, [CLI, ...goldenArgs(c, out)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `forward-backward failed: ${r.stderr}`);
    const report = compareGolden(c.dir, out, FP32_TOLERANCES);
    rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(report.problems, []);
  });
}
