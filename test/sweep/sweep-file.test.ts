/** Sweep files: parsing, the variants they expand to, budgets turned into steps, and refusals up front. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseSweep, readSweepFile, SweepFileError } from '../../src/sweep/sweep-file.js';
import { ffnHiddenFor, formatValue, resolveSweep, variantId } from '../../src/sweep/variants.js';
import { flopsPerToken } from '../../src/model/count.js';
import { getPreset } from '../../src/config/presets.js';
import { REPO_ROOT } from '../helpers.js';

const TINY = {
  model: 'cpu-tiny', seq: 16, micro_batch: 2, grad_accum: 2, warmup_steps: 1, sample_tokens: 0,
  'model.hidden_size': 32, 'model.n_layer': 2, 'model.n_head': 4, 'model.head_dim': 8, 'model.ffn_hidden': 64,
};

/** TINY without the keys a sweep varies (a varied key may not also be set for every run). */
const tinyWithout = (...keys: string[]): Record<string, string | number> =>
  Object.fromEntries(Object.entries(TINY).filter(([k]) => !keys.includes(k)));

test('a grid expands to every combination, first key slowest, with readable ids', () => {
  const s = parseSweep({ set: TINY, hold: { tokens: 640 }, grid: { 'model.n_kv_head': [1, 2], lr: [1e-3, 3e-3] } }, 'dir/x.yaml');
  assert.equal(s.name, 'x');
  assert.deepEqual(s.keys, ['model.n_kv_head', 'lr']);
  assert.deepEqual(s.variants.map((v) => variantId(v.values)), ['n_kv_head=1,lr=0.001', 'n_kv_head=1,lr=0.003', 'n_kv_head=2,lr=0.001', 'n_kv_head=2,lr=0.003']);
  assert.equal(formatValue(100000), '1e5');
  assert.equal(formatValue(2000000), '2e6');
  assert.equal(formatValue(262144), '262144');
  assert.equal(formatValue(2.67), '2.67');
});

test('the budget fixes the steps: tokens / (micro-batch x seq x accumulation x ranks), or FLOPs / FLOPs per token', () => {
  const s = parseSweep({ set: tinyWithout('seq'), hold: { tokens: 6400, seed: 9 }, grid: { seq: [16, 32] } }, 't.yaml');
  const { variants } = resolveSweep(s);
  assert.deepEqual(variants.map((v) => v.tc.steps), [100, 50]); // 64 and 128 tokens per step
  assert.deepEqual(variants.map((v) => v.cost.tokens), [6400, 6400]);
  assert.ok(variants.every((v) => v.tc.seed === 9));
  // Two ranks halve the steps.
  assert.deepEqual(resolveSweep(s, { nproc: 2 }).variants.map((v) => v.tc.steps), [50, 25]);
  // A FLOP budget: steps = flops / FLOPs per token / tokens per step, rounded.
  const f = parseSweep({ set: TINY, hold: { flops: 1e12 }, grid: { 'model.n_kv_head': [1, 4] } }, 'f.yaml');
  for (const v of resolveSweep(f).variants) {
    const fpt = flopsPerToken(v.model, 16).total;
    assert.equal(v.tc.steps, Math.round(1e12 / fpt / 64));
    assert.ok(Math.abs(v.cost.tokens * fpt - 1e12) <= 32 * fpt, 'within half a step of the budget');
  }
  // --set changes the budget or every run, but never a varied key.
  const c = resolveSweep(s, { cliSets: ['hold.tokens=640', 'lr=0.01'] }).variants;
  assert.deepEqual(c.map((v) => [v.tc.steps, v.tc.lr]), [[10, 0.01], [5, 0.01]]);
  assert.throws(() => resolveSweep(s, { cliSets: ['seq=64'] }), /the sweep varies 'seq'/);
  assert.throws(() => resolveSweep(s, { cliSets: ['steps=5'] }), /set by the sweep/);
});

test('ffn_ratio sets ffn_hidden to ratio x hidden, rounded to a multiple of 8', () => {
  assert.equal(ffnHiddenFor(2.67, 1024), 2736);
  assert.equal(ffnHiddenFor(3, 1024), 3072);
  assert.equal(ffnHiddenFor(2.67, 128), 344);
  const s = parseSweep({ set: tinyWithout('model.hidden_size'), hold: { tokens: 640 }, grid: { ffn_ratio: [2.67, 3.5], 'model.hidden_size': [32, 64] } }, 'r.yaml');
  const got = resolveSweep(s).variants.map((v) => [v.model.hidden_size, v.model.ffn_hidden]);
  assert.deepEqual(got, [[32, 88], [64, 168], [32, 112], [64, 224]]);
});

test('invalid sweeps are refused up front, every problem named', () => {
  const bad = (raw: unknown, re: RegExp): void => {
    assert.throws(() => resolveSweep(parseSweep(raw, 'bad.yaml')), (e: Error) => e instanceof SweepFileError && re.test(e.message), String(re));
  };
  bad({ set: TINY, hold: { tokens: 640 }, grid: { 'model.n_kv_head': [1, 3] } }, /variant 'n_kv_head=3'.*n_head 4 is not a multiple of n_kv_head 3.*divisor of n_head \(1, 2, 4\)/s);
  bad({ set: tinyWithout('seq'), hold: { tokens: 640 }, grid: { seq: [16, 512] } }, /variant 'seq=512': seq 512 exceeds the model's context_length 256/);
  bad({ set: TINY, grid: { lr: [1] } }, /give exactly one budget per run/);
  bad({ set: TINY, hold: { tokens: 640, flops: 1 }, grid: { lr: [1] } }, /exactly one budget/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { lr: [1] }, variants: [{ lr: 1 }] }, /exactly one of grid/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { 'model.n_kv_heads': [1] } }, /unknown model key 'n_kv_heads' \(did you mean 'model.n_kv_head'\?\)/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { stesp: [1] } }, /unknown key 'stesp' \(did you mean 'steps'\?\)/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { steps: [1, 2] } }, /'steps' is set by the sweep/);
  bad({ set: TINY, hold: { tokens: 640, seed: 1 }, grid: { seed: [1, 2] } }, /'seed' is both varied and held fixed/);
  bad({ set: { ...TINY, lr: 1 }, hold: { tokens: 640 }, grid: { lr: [1, 2] } }, /'lr' is both varied and set/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { lr: [1, 1] } }, /listed twice/);
  bad({ set: { ...TINY, warmup_steps: 30 }, hold: { tokens: 640 }, grid: { lr: [1] } }, /warmup_steps 30 >= steps 10/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { lr: [1] }, assume: { gpu: 'b200', mfu: 40 } }, /assume.mfu: a fraction/);
  bad({ set: TINY, hold: { tokens: 640 }, grid: { lr: [1] }, colour: 1 }, /unknown top-level key 'colour'/);
  // Several problems in one message.
  assert.throws(
    () => parseSweep({ hold: { tokns: 1 }, grid: { x: [] } }, 'many.yaml'),
    (e: Error) => /problems:/.test(e.message) && /hold.tokns/.test(e.message) && /grid.x/.test(e.message),
  );
});

test('the ready ablation files parse and resolve (full size on 8 ranks, CPU scale on 1)', () => {
  const dir = join(REPO_ROOT, 'config', 'ablations');
  const full = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  const cpu = readdirSync(join(dir, 'cpu')).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(full, ['context.yaml', 'ffn_ratio.yaml', 'gqa.yaml', 'rope_theta.yaml']);
  assert.deepEqual(cpu, full);
  const counts: Record<string, number> = { 'context.yaml': 3, 'ffn_ratio.yaml': 3, 'gqa.yaml': 3, 'rope_theta.yaml': 4 };
  for (const f of full) {
    const { variants } = resolveSweep(readSweepFile(join(dir, f)), { nproc: 8 });
    assert.equal(variants.length, counts[f], f);
    for (const v of variants) assert.equal(v.cost.tokens, v.tc.steps * 8 * v.tc.micro_batch * v.tc.seq * v.tc.grad_accum);
  }
  for (const f of cpu) {
    const { variants } = resolveSweep(readSweepFile(join(dir, 'cpu', f)));
    assert.equal(variants.length, counts[f], f);
    const minutes = variants.reduce((a, v) => a + v.cost.seconds, 0) / 60;
    assert.ok(minutes > 7 && minutes < 13, `${f}: ${minutes.toFixed(1)} planned minutes on 2 cores (about 10 wanted)`);
  }
  const gqa = resolveSweep(readSweepFile(join(dir, 'gqa.yaml')), { nproc: 8 }).variants;
  assert.deepEqual(gqa.map((v) => v.model.n_head / v.model.n_kv_head), [4, 2, 1]);
  assert.equal(getPreset('qwen3-0.6b').n_head, 16);
});
