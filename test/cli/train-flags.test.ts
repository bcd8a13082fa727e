/**
 * `lmforge train` flags that spell config keys: --device (as the other verbs have it) and --zero1, including
 * --zero1=false on a resume, which docs/distributed.md promises turns ZeRO-1 off again.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { prepare } from '../../src/data/prepare.js';
import { latestCheckpoint } from '../../src/io/run-dir.js';
import { CLI, REPO_ROOT } from '../helpers.js';

const root = mkdtempSync(join(tmpdir(), 'lmforge-train-flags-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
let data = '';

before(async () => {
  const file = join(root, 'corpus.txt');
  writeFileSync(file, readFileSync(join(REPO_ROOT, 'docs', 'data.md'), 'utf8'));
  data = join(root, 'data');
  await prepare({ inputs: [file], out: data, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
});

/** A two-step run of a one-layer model, small enough to take a second or two. */
const tiny = (): string[] => [
  `data=${data}`, 'seq=16', 'micro_batch=2', 'steps=2', 'warmup_steps=1', 'eval_every=0', 'eval_batches=1', 'sample_tokens=0',
  'threads=1', 'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
];

function train(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'train', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const savedState = (run: string): { zero1?: boolean; step: number } => JSON.parse(readFileSync(join(latestCheckpoint(run)!, 'state.json'), 'utf8'));

test('--zero1 shards the optimizer; a resume keeps it; --zero1=false on a resume turns it off', () => {
  const run = join(root, 'zero1');
  let r = train(['--device', 'cpu', '--zero1', '--run-dir', run, '--set', ...tiny()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /optimizer: AdamW with ZeRO-1 over 1 ranks/);
  assert.deepEqual([savedState(run).step, savedState(run).zero1], [2, true]);
  const kept = join(root, 'zero1-kept');
  cpSync(run, kept, { recursive: true });

  r = train(['--resume', run, '--zero1=false', '--set', 'steps=3']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /optimizer: AdamW;/);
  assert.deepEqual([savedState(run).step, savedState(run).zero1], [3, false]);

  r = train(['--resume', kept, '--set', 'steps=3']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /optimizer: AdamW with ZeRO-1/);
  assert.deepEqual([savedState(kept).step, savedState(kept).zero1], [3, true]);
});

test('--device picks the backend like --set device=...; a bad or unavailable device is a one-line error', () => {
  let r = train(['--device', 'gpu', '--set', ...tiny()]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /key 'device' must be one of 'cpu', 'cuda', 'cuda-interpret', 'auto', got string 'gpu'/);
  r = train(['--device', 'auto', '--run-dir', join(root, 'auto'), '--set', ...tiny()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /lmforge train: .*parameters\), (cpu|cuda)/i);
  r = train(['--device', 'cuda', '--run-dir', join(root, 'cuda'), '--set', ...tiny()]);
  if (r.status !== 0) assert.match(r.stderr, /CUDA backend unavailable: .*use --device cpu meanwhile/);
});
