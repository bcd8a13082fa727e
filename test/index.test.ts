/** The library entry point (package.json "main"): its example trains, and every export is defined. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers.js';

test('package.json main resolves to the library entry, whose exports are all defined', async () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
  assert.ok(existsSync(join(REPO_ROOT, pkg.main)), `package.json main ${pkg.main} does not exist`);
  const lib = (await import(join(REPO_ROOT, pkg.main))) as Record<string, unknown>;
  for (const name of ['getPreset', 'loadTrainConfig', 'createBackend', 'loadTokenizer', 'prepare', 'openModelSource', 'Trainer', 'resolveModelConfig', 'plan'])
    assert.equal(typeof lib[name], 'function', name);
});

test('the entry point example trains a run', async () => {
  const { loadTrainConfig, Trainer, resolveModelConfig } = await import('../src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'lmforge-lib-'));
  try {
    const tc = loadTrainConfig(join(REPO_ROOT, 'config', 'cpu_tiny.yaml'), ['steps=2', 'warmup_steps=1', 'eval_every=0', 'sample_tokens=0', 'model.n_layer=1', 'seq=32', 'micro_batch=1']);
    const trainer = new Trainer(tc, resolveModelConfig(tc), join(dir, 'run'));
    await trainer.setup(false);
    const steps: number[] = [];
    const result = await trainer.run({ onStep: (r) => steps.push(r.step) });
    trainer.dispose();
    assert.deepEqual(steps, [1, 2]);
    assert.ok(Number.isFinite(result.lastTrainLoss));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
