/** `eval_tasks` in a training config: a YAML list, JSON or the short form on --set, and clear errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainConfig } from '../../src/config/train.js';

test('eval_tasks from a YAML file, from JSON and from the short form', () => {
  const f = join(mkdtempSync(join(tmpdir(), 'lmf-cfg-')), 'run.yaml');
  writeFileSync(f, 'steps: 10\neval_tasks_every: 5\neval_tasks:\n  - {task: hellaswag, data: hs.jsonl, limit: 200}\n  - task: piqa\n    data: piqa.parquet\n');
  const tc = loadTrainConfig(f, []);
  assert.deepEqual(tc.eval_tasks, [{ task: 'hellaswag', data: 'hs.jsonl', limit: 200 }, { task: 'piqa', data: 'piqa.parquet' }]);
  assert.equal(tc.eval_tasks_every, 5);
  assert.deepEqual(loadTrainConfig(undefined, []).eval_tasks, []);
  assert.deepEqual(loadTrainConfig(undefined, ['eval_tasks=[{"task":"mc","data":"a.jsonl"}]']).eval_tasks, [{ task: 'mc', data: 'a.jsonl' }]);
  assert.deepEqual(loadTrainConfig(undefined, ['eval_tasks=hellaswag:C:/x.jsonl:50,mc:b.jsonl']).eval_tasks, [
    { task: 'hellaswag', data: 'C:/x.jsonl', limit: 50 },
    { task: 'mc', data: 'b.jsonl' },
  ]);
  // --set replaces the file's list (as --resume passes the saved list back).
  assert.deepEqual(loadTrainConfig(f, [`eval_tasks=${JSON.stringify([{ task: 'mc', data: 'c.jsonl' }])}`]).eval_tasks, [{ task: 'mc', data: 'c.jsonl' }]);
});

test('eval_tasks errors name the entry and the fix', () => {
  assert.throws(() => loadTrainConfig(undefined, ['eval_tasks=[{"task":"mc"}]']), /eval_tasks\[0\]: 'data' must be/);
  assert.throws(() => loadTrainConfig(undefined, ['eval_tasks=[{"task":"mc","data":"a","limt":3}]']), /unknown key 'limt'/);
  assert.throws(() => loadTrainConfig(undefined, ['eval_tasks=[{"task":"mc","data":"a","limit":0}]']), /'limit' must be a whole number >= 1/);
  assert.throws(() => loadTrainConfig(undefined, ['eval_tasks=[oops']), /eval_tasks is not valid JSON/);
});
