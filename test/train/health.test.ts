/**
 * train/health.ts: the loss-health record, and "last good checkpoint" meaning good, not merely finite: a run
 * whose weights diverged while staying finite must not name a diverged checkpoint when it finally stops.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HealthTracker } from '../../src/train/health.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { checkpointDir, completedCheckpoints } from '../../src/io/run-dir.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { tinyConfig, tinyData } from './fixture.js';

let data = '';
const root = mkdtempSync(join(tmpdir(), 'lmf-health-'));
before(async () => {
  data = await tinyData();
});

/** A noisy, falling loss curve (seeded), as small-batch training gives. */
function noisyCurve(n: number, seed = 1): number[] {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, (_, i) => 3 + 8 * Math.exp(-i / 30) + (r() - 0.5) * 0.6);
}

test('a falling noisy loss is healthy; a spike, a NaN and a zero gradient are not; trouble ends with a healthy step', () => {
  const h = new HealthTracker();
  const curve = noisyCurve(200);
  curve.forEach((loss, i) => assert.equal(h.observe(i + 1, loss, 1.5), 'ok', `step ${i + 1} loss ${loss}`));
  assert.equal(h.troubleSince, null);
  assert.equal(h.observe(201, 40, 3), 'spike');
  assert.equal(h.observe(202, 1e9, 3), 'spike');
  assert.equal(h.observe(203, 5, 0), 'zero-gradient');
  assert.equal(h.observe(204, NaN, 3), 'non-finite');
  assert.equal(h.troubleSince, 201, 'trouble dates from its first step');
  const rec = h.record();
  assert.deepEqual([rec.finite, rec.loss, rec.troubleSince], [false, null, 201]);
  assert.ok(Math.abs(rec.lossMean! - 3.1) < 0.5, `the spikes barely moved the mean: ${rec.lossMean}`);
  assert.equal(h.observe(205, 3.1, 1), 'ok');
  assert.equal(h.troubleSince, null);
});

test('a lasting legitimate rise (new data) is absorbed within tens of steps; the record restores the tracker', () => {
  const h = new HealthTracker();
  for (let i = 1; i <= 100; i++) h.observe(i, 3 + 0.05 * Math.sin(i), 1);
  let firstOk = 0;
  for (let i = 101; i <= 300 && !firstOk; i++) if (h.observe(i, 4.5 + 0.05 * Math.sin(i), 1) === 'ok' && i > 101) firstOk = i;
  assert.ok(firstOk > 101 && firstOk < 160, `absorbed at step ${firstOk}`);
  const copy = HealthTracker.restore(JSON.parse(JSON.stringify(h.record())));
  for (const [step, loss] of [[301, 4.4], [302, 30], [303, 4.5]] as const) assert.equal(copy.observe(step, loss, 1), h.observe(step, loss, 1));
  assert.deepEqual(copy.record(), h.record());
  assert.equal(HealthTracker.restore(undefined).troubleSince, null);
});

test('finite divergence, then NaN: the run names the last checkpoint from before the divergence, kept from pruning', async () => {
  const run = join(root, 'diverge');
  const tc = tinyConfig(run, data, ['steps=12', 'checkpoint_every=1', 'keep_checkpoints=2', 'max_bad_steps=3']);
  const t = new Trainer(tc, resolveModelConfig(tc), run);
  await t.setup(false);
  const emb = t.model.layout.byName.get('model.embed_tokens.weight')!;
  await assert.rejects(
    t.run({
      afterStep: (step) => {
        // Weights blow up but stay finite after step 4 (checkpoint 4 holds them); they turn NaN after step 7.
        if (step === 4) t.model.setParam(emb, t.model.getParam(emb).map((x) => x * 1e4));
        if (step === 7) t.model.setParam(emb, new Float32Array(emb.size).fill(NaN));
      },
    }),
    /diverge at step 5; the last good checkpoint, saved before that, is .*step-00000003 \(intact\)\. .*--from-step 3/,
  );
  t.dispose();
  assert.ok(completedCheckpoints(run).includes(checkpointDir(run, 3)), 'the good checkpoint survived pruning');
  const state = JSON.parse(readFileSync(join(checkpointDir(run, 3), 'state.json'), 'utf8'));
  assert.deepEqual([state.health.finite, state.health.troubleSince], [true, null]);
  const src = openModelSource(checkpointDir(run, 3));
  assert.ok(src.tensors.read('model.embed_tokens.weight').every((x) => Math.abs(x) < 10));
  src.close();
  // Resuming from it with the same settings trains on, finite.
  const r = new Trainer(tinyConfig(run, data, ['steps=5', 'checkpoint_every=1']), resolveModelConfig(tc), run);
  await r.setup(true, { fromStep: 3 });
  const res = await r.run();
  assert.ok(Number.isFinite(res.lastTrainLoss));
  r.dispose();
});

test('lr = 1e6: the first update diverges, so no checkpoint is called good', async () => {
  const run = join(root, 'lr1e6');
  const tc = tinyConfig(run, data, ['steps=10', 'checkpoint_every=1', 'lr=1e6', 'max_bad_steps=3']);
  const t = new Trainer(tc, resolveModelConfig(tc), run);
  await t.setup(false);
  await assert.rejects(t.run(), /diverge at step 2, and no checkpoint saved before that is left/);
  t.dispose();
});
