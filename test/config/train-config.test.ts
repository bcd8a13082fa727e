import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadTrainConfig } from '../../src/config/train.js';
import { resolveModelConfig } from '../../src/train/trainer.js';
import { REPO_ROOT } from '../helpers.js';

/** Training configs under dir; config/ablations/ holds sweep files (test/sweep/sweep-file.test.ts checks them). */
function configFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (p === join(REPO_ROOT, 'config', 'ablations')) return [];
    return statSync(p).isDirectory() ? configFiles(p) : /\.(ya?ml|json)$/.test(f) ? [p] : [];
  });
}

test('every shipped training config validates and resolves its model', () => {
  const files = configFiles(join(REPO_ROOT, 'config'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    const tc = loadTrainConfig(f, []);
    const m = resolveModelConfig(tc);
    assert.ok(m.vocab_size >= 151936 || tc.model.startsWith('gpt2'), `${f}: vocabulary too small for the Qwen3 tokenizer`);
  }
});

test('the no-argument defaults equal config/cpu_tiny.yaml', () => {
  const a = loadTrainConfig(undefined, []);
  const b = loadTrainConfig(join(REPO_ROOT, 'config', 'cpu_tiny.yaml'), []);
  assert.deepEqual(a, b);
});

test('train config errors name the key and the fix', () => {
  assert.throws(() => loadTrainConfig(undefined, ['micro_bach=4']), /micro_bach.*micro_batch/);
  assert.throws(() => loadTrainConfig(undefined, ['lr=-1']), /lr/);
  assert.throws(() => loadTrainConfig(undefined, ['model.n_heads=4']), /n_heads.*n_head/);
  assert.throws(() => resolveModelConfig(loadTrainConfig(undefined, ['model.n_kv_head=3'])), /n_kv_head/);
});
