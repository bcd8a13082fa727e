/**
 * `lmforge train` at the edges: resuming a finished run, a missing run, a run killed before its first checkpoint,
 * going back with --from-step, and a new run pointed at an existing one.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers.js';
import { tinyData, tinySets } from '../train/fixture.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-train-cli-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const run = join(root, 'run');
let sets: string[] = [];
let metrics = '';

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'train', '--quiet', ...args], { encoding: 'utf8' });
/** metrics.jsonl without the timing fields, which differ between runs. */
const strip = (text: string) =>
  text.trim().split('\n').map((l) => {
    const { step_s, tokens_per_s, gflops, mfu, time, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return JSON.stringify(rest);
  });

before(async () => {
  sets = tinySets(await tinyData(), ['steps=4', 'checkpoint_every=2', 'keep_checkpoints=3', 'eval_every=2']);
  const r = cli('--run-dir', run, '--set', ...sets);
  assert.equal(r.status, 0, r.stderr);
  metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8');
});

test('--resume of a finished run says so and changes nothing; raising steps continues it', () => {
  const final = join(run, 'checkpoints', 'step-00000004', 'model.safetensors');
  const mtime = statSync(final).mtimeMs;
  const r = cli('--resume', run);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /the run in .* is complete \(4 of 4 steps\); nothing to do\. To train further, raise steps/);
  assert.equal(readFileSync(join(run, 'metrics.jsonl'), 'utf8'), metrics, 'no duplicate eval record');
  assert.equal(statSync(final).mtimeMs, mtime, 'the final checkpoint was not rewritten');

  const more = join(root, 'more');
  cpSync(run, more, { recursive: true });
  const m = cli('--resume', more, '--set', 'steps=5');
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(strip(readFileSync(join(more, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l).step).slice(-2), [5, 5]);
});

test('--resume --from-step goes back to an earlier checkpoint and reproduces the run from there', () => {
  const back = join(root, 'back');
  cpSync(run, back, { recursive: true });
  const r = cli('--resume', back, '--from-step', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(strip(readFileSync(join(back, 'metrics.jsonl'), 'utf8')), strip(metrics));
  assert.deepEqual(readdirSync(join(back, 'checkpoints', 'abandoned')), ['step-00000004']);
  assert.match(cli('--from-step', '2').stderr, /--from-step needs --resume/);
});

test('--resume of a missing directory, or of one without a run, says what is missing', () => {
  let r = cli('--resume', join(root, 'absent'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--resume .*absent: no such run directory/);
  mkdirSync(join(root, 'empty'));
  r = cli('--resume', join(root, 'empty'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no train_config\.json there: the run was stopped before it started .*--run-dir/);
  assert.doesNotMatch(r.stderr, /ENOENT/);
});

test('--resume of a run killed before its first checkpoint starts it again from step 0, as if never killed', () => {
  const early = join(root, 'early');
  cpSync(run, early, { recursive: true });
  rmSync(join(early, 'checkpoints'), { recursive: true });
  const r = cli('--resume', early);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /has no complete checkpoint yet .*starts again from step 0/);
  assert.deepEqual(strip(readFileSync(join(early, 'metrics.jsonl'), 'utf8')), strip(metrics));
});

test('a new run pointed at an existing run is refused before it touches it; min_lr above lr is refused with the fix', () => {
  let r = cli('--run-dir', run, '--set', ...sets);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /already holds a run; continue it with 'lmforge train --resume/);
  assert.equal(readFileSync(join(run, 'metrics.jsonl'), 'utf8'), metrics);
  assert.ok(existsSync(join(run, 'checkpoints', 'step-00000002')), 'no checkpoint of the old run was pruned');
  r = cli('--run-dir', join(root, 'min-lr'), '--set', ...sets, 'min_lr=0.5');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /min_lr \(0\.5\) is above lr \(0\.03\); the decay would raise the lr\. Set min_lr <= lr/);
  assert.ok(!existsSync(join(root, 'min-lr')), 'a refused config created its run directory');
});
