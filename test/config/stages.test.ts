import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadTrainConfig, trainConfigFromRecord } from '../../src/config/train.js';
import { resolveStages } from '../../src/config/stages.js';

const dir = mkdtempSync(join(tmpdir(), 'lmf-stages-cfg-'));
function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

const STAGED = `
model: cpu-tiny
lr: 1.0e-3
min_lr: 1.0e-4
seq: 64
warmup_steps: 5
data:
  - {path: data/web, weight: 0.7}
  - {path: data/math, weight: 0.3, name: maths}
stages:
  - {name: general, steps: 20}
  - {name: reasoning, steps: 10, lr: 5.0e-4, schedule: cosine, warmup_steps: 0,
     data: [{path: data/web, weight: 0.3}, {path: data/math, weight: 0.7}]}
  - {name: long, tokens: 4000, seq: 256, micro_batch: 2, rope_theta: 1.0e6, reset_optimizer: true, warmup_steps: 1}
`;

test('a staged config resolves every stage: top-level defaults, own keys, tokens to steps, min_lr following lr', () => {
  const tc = loadTrainConfig(file('staged.yaml', STAGED), []);
  assert.equal(tc.stages.length, 3);
  assert.deepEqual(tc.data, [{ path: 'data/web', weight: 0.7 }, { path: 'data/math', weight: 0.3, name: 'maths' }]);
  const st = resolveStages(tc, 1e4, 512, 1);
  assert.deepEqual(st.map((s) => [s.name, s.start, s.end, s.seq, s.microBatch]), [
    ['general', 0, 20, 64, 8],
    ['reasoning', 20, 30, 64, 8],
    // 4000 tokens of 2 x 1 x 256 per step: 7.8 -> 8 steps.
    ['long', 30, 38, 256, 2],
  ]);
  assert.deepEqual(st.map((s) => s.ropeTheta), [1e4, 1e4, 1e6]);
  assert.deepEqual(st.map((s) => [s.lr, s.minLr]), [[1e-3, 1e-4], [5e-4, 5e-5], [1e-3, 1e-4]]);
  assert.deepEqual(st.map((s) => s.resetOptimizer), [false, false, true]);
  assert.deepEqual(st.map((s) => s.seed), [tc.seed, tc.seed + 1, tc.seed + 2]);
  assert.deepEqual(st[1]!.data.map((d) => d.weight), [0.3, 0.7]);
  // With 4 ranks the token-length stage is 2 steps.
  assert.equal(resolveStages(tc, 1e4, 512, 4)[2]!.steps, 2);
  // With only step lengths the top-level steps is their sum.
  assert.equal(loadTrainConfig(file('s2.yaml', 'stages: [{steps: 3}, {steps: 4}]\n'), []).steps, 7);
});

test('recompute per stage: the top level by default, a stage\'s own, --set stages.N.recompute; a wrong mode names the allowed ones', () => {
  const f = file('staged-recompute.yaml', STAGED);
  const tc = loadTrainConfig(f, ['recompute=mlp', 'stages.3.recompute=block']);
  assert.deepEqual(resolveStages(tc, 1e4, 512, 1).map((s) => s.recompute), ['mlp', 'mlp', 'block']);
  assert.deepEqual(resolveStages(loadTrainConfig(f, []), 1e4, 512, 1).map((s) => s.recompute), ['none', 'none', 'none']);
  assert.throws(() => loadTrainConfig(f, ['stages.2.recompute=blocks']), /'recompute' must be one of 'none', 'mlp', 'block', got string 'blocks'/);
});

test('stages.N.KEY=VALUE overrides one stage; a saved config round-trips', () => {
  const f = file('staged2.yaml', STAGED);
  const tc = loadTrainConfig(f, ['stages.2.steps=4', 'stages.3.seq=128', 'stages.1.data=data/other']);
  assert.equal(tc.stages[1]!.steps, 4);
  assert.equal(tc.stages[2]!.seq, 128);
  assert.equal(tc.stages[0]!.data, 'data/other');
  const again = trainConfigFromRecord(JSON.parse(JSON.stringify(tc)), [], 'saved');
  assert.deepEqual(again, tc);
  assert.throws(() => loadTrainConfig(f, ['stages.4.steps=1']), /stage 4 does not exist; the config has 3/);
  assert.throws(() => loadTrainConfig(f, ['stages.1.sequence=5']), /unknown key 'sequence'.*did you mean 'seq'/);
});

test('stage errors name the stage, the key and the fix', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => loadTrainConfig(file('bad.yaml', text), []), re);
  bad('stages: [{steps: 5, hidden_size: 64}]\n', /stages\[1\]: 'hidden_size' cannot change between stages.*only rope_theta/);
  bad('stages: [{steps: 5, tokens: 100}]\n', /exactly one of 'steps' or 'tokens'/);
  bad('stages: [{seq: 5}]\n', /stages\[1\].*exactly one of 'steps' or 'tokens'/);
  bad('stages: [{steps: 5, sq: 5}]\n', /unknown key 'sq'.*did you mean 'seq'/);
  bad('stages: [{steps: 5, data: [{path: a, weight: 0}]}]\n', /'weight' must be a positive number/);
  bad('data: [a, b]\n', /needs a weight in a mixture/);
  bad('data: [{path: x/a, weight: 1}, {path: y/a, weight: 1}]\n', /two entries are called 'a'; give them distinct 'name's/);
  bad('steps: 9\nstages: [{steps: 3}, {steps: 4}]\n', /'steps' is 9 at the top level but the stages add up to 7/);
  bad('stages: []\nlr: -1\n', /lr/);
  bad('stages: {steps: 3}\n', /non-empty list of stages/);
  assert.throws(() => resolveStages(loadTrainConfig(file('long.yaml', 'stages: [{steps: 1, seq: 4096}]\n'), []), 1e6, 256, 1), /stage 1.*seq 4096 exceeds the model's context_length 256/);
});
