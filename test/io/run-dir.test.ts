/** io/run-dir.ts: checkpoint names, `latest`, and pruning beyond keep_checkpoints. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CHECKPOINT_STATE, checkpointDir, completedCheckpoints, latestCheckpoint, markLatest, pruneCheckpoints,
} from '../../src/io/run-dir.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-run-dir-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A run directory holding complete checkpoints at `steps` (each a directory with state.json and a weight file). */
function runWith(name: string, steps: number[]): string {
  const run = path.join(tmp, name);
  for (const s of steps) {
    const dir = checkpointDir(run, s);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.safetensors'), `weights of step ${s}`);
    fs.writeFileSync(path.join(dir, CHECKPOINT_STATE), JSON.stringify({ step: s }));
  }
  if (steps.length) markLatest(run, checkpointDir(run, Math.max(...steps)));
  return run;
}

const names = (run: string): string[] => fs.readdirSync(path.join(run, 'checkpoints')).sort();

test('checkpoint directories are named by zero-padded step and sort in step order', () => {
  assert.equal(path.basename(checkpointDir('/r', 7)), 'step-00000007');
  assert.equal(path.basename(checkpointDir('/r', 12345678)), 'step-12345678');
  // Created in an order that is neither sorted nor reverse-sorted, whatever order the directory lists them in.
  const run = runWith('order', [20, 100, 9]);
  assert.deepEqual(completedCheckpoints(run).map((d) => path.basename(d)), ['step-00000009', 'step-00000020', 'step-00000100']);
  assert.equal(latestCheckpoint(run), checkpointDir(run, 100));
});

test('pruning keeps exactly the newest keep_checkpoints and deletes the older ones with their files', () => {
  const run = runWith('prune', [3, 5, 1, 4, 2]);
  assert.equal(fs.readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8'), 'step-00000005\n');
  pruneCheckpoints(run, 2);
  assert.deepEqual(names(run), ['latest', 'step-00000004', 'step-00000005']);
  assert.equal(fs.readFileSync(path.join(checkpointDir(run, 5), 'model.safetensors'), 'utf8'), 'weights of step 5');
  assert.equal(latestCheckpoint(run), checkpointDir(run, 5));
  pruneCheckpoints(run, 1);
  assert.deepEqual(names(run), ['latest', 'step-00000005']);
});

test('pruning deletes nothing while there are at most keep_checkpoints', () => {
  const run = runWith('few', [3, 6]);
  pruneCheckpoints(run, 2);
  assert.deepEqual(names(run), ['latest', 'step-00000003', 'step-00000006']);
  pruneCheckpoints(run, 5);
  assert.deepEqual(names(run), ['latest', 'step-00000003', 'step-00000006']);
});

test('pruning removes the temporary directories of interrupted saves, and leaves other files alone', () => {
  const run = runWith('leftovers', [2, 4]);
  const root = path.join(run, 'checkpoints');
  fs.mkdirSync(path.join(root, 'step-00000006.tmp-12345'));
  fs.writeFileSync(path.join(root, 'step-00000006.tmp-12345', 'model.safetensors'), 'half');
  fs.writeFileSync(path.join(root, 'notes.txt'), 'mine');
  pruneCheckpoints(run, 2);
  assert.deepEqual(names(run), ['latest', 'notes.txt', 'step-00000002', 'step-00000004']);
});

test('latest falls back to the newest complete checkpoint when the pointer is missing or names an incomplete one', () => {
  const run = runWith('fallback', [1, 2]);
  fs.writeFileSync(path.join(run, 'checkpoints', 'latest'), 'step-00000009\n');
  assert.equal(latestCheckpoint(run), checkpointDir(run, 2));
  fs.rmSync(path.join(checkpointDir(run, 2), CHECKPOINT_STATE));
  fs.rmSync(path.join(run, 'checkpoints', 'latest'));
  assert.equal(latestCheckpoint(run), checkpointDir(run, 1));
  assert.equal(latestCheckpoint(path.join(tmp, 'no-such-run')), null);
});

test('latest follows its pointer, even to an older checkpoint; only step-NNNNNNNN directories with state.json count', () => {
  const run = runWith('pointer', [1, 2]);
  markLatest(run, checkpointDir(run, 1));
  assert.equal(latestCheckpoint(run), checkpointDir(run, 1));
  const root = path.join(run, 'checkpoints');
  for (const name of ['backup-step-00000009', 'step-00000009-old', 'step-9']) {
    fs.mkdirSync(path.join(root, name));
    fs.writeFileSync(path.join(root, name, CHECKPOINT_STATE), '{}');
  }
  assert.deepEqual(completedCheckpoints(run).map((d) => path.basename(d)), ['step-00000001', 'step-00000002']);
  pruneCheckpoints(run, 1);
  assert.deepEqual(names(run), ['backup-step-00000009', 'latest', 'step-00000002', 'step-00000009-old', 'step-9']);
  assert.deepEqual(completedCheckpoints(path.join(tmp, 'no-such-run')), []);
});
