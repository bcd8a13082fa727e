/** The cost of one run before it starts: tokens, evaluations, time at an assumed rate, and engine memory. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assumedFlops, runCost, stepsForTokens } from '../../src/plan/run-cost.js';
import { getPreset } from '../../src/config/presets.js';
import { countParams, flopsPerToken } from '../../src/model/count.js';
import { activationArenaBytes } from '../../src/model/activations.js';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { ReplicatedAdamW } from '../../src/train/optimizer.js';
import { createProcessGroup } from '../../src/parallel/index.js';

const shape = { seq: 128, microBatch: 8, gradAccum: 2, ranks: 1, steps: 100, evalEvery: 25, evalBatches: 4, zero1: false };

test('tokens, evaluations and time follow from the shape and the assumed rate', () => {
  const m = getPreset('cpu-tiny');
  const c = runCost(m, shape, { gflops: 100 });
  const fpt = flopsPerToken(m, 128).total;
  assert.equal(c.params, countParams(m).total);
  assert.equal(c.tokensPerStep, 2048);
  assert.equal(c.tokens, 204800);
  // Evaluations at 0, 25, 50, 75 and the end (100): 5 x 4 batches x 8 x 128 tokens.
  assert.equal(c.evalTokens, 5 * 4 * 8 * 128);
  assert.ok(Math.abs(c.seconds - (204800 * fpt + (20480 * fpt) / 3) / 100e9) < 1e-9);
  assert.equal(runCost(m, { ...shape, evalEvery: 0 }, { gflops: 100 }).evalTokens, 2 * 4 * 8 * 128);
  assert.equal(runCost(m, { ...shape, evalEvery: 50 }, { gflops: 100 }).evalTokens, 3 * 4 * 8 * 128); // 0, 50, 100
  // A GPU assumption: ranks x peak x MFU.
  const g = assumedFlops({ gpu: 'b200', mfu: 0.4 }, 8);
  assert.equal(g.flops, 8 * 2.25e15 * 0.4);
  assert.equal(g.words, '8 x b200 at 40% MFU');
  assert.throws(() => assumedFlops({ gpu: 'b200', mfu: 1.5 }, 1), /fraction in \(0, 1\]/);
  assert.throws(() => assumedFlops({ gpu: 'tpu', mfu: 0.5 }, 1), /unknown GPU 'tpu'/);
  assert.equal(stepsForTokens(1000, 64), 16);
  assert.equal(stepsForTokens(1, 64), 1);
});

test('predicted engine memory equals what the engine allocates for the model, optimizer and activations', () => {
  const m = { ...getPreset('cpu-tiny'), vocab_size: 4096, n_layer: 2 };
  const be = createBackend('cpu');
  const before = be.allocatedBytes();
  const model = new Decoder(be, m);
  const opt = new ReplicatedAdamW(be, model, createProcessGroup(be), { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 });
  model.run(new Int32Array(2 * 32), new Int32Array(2 * 32), { batch: 2, seq: 32, backward: true, gradScale: 1 });
  const allocated = be.allocatedBytes() - before;
  assert.equal(model.activationBytes, activationArenaBytes(m, 2, 32));
  const predicted = runCost(m, { ...shape, seq: 32, microBatch: 2 }, { gflops: 1 }).memoryBytes;
  assert.ok(Math.abs(allocated - predicted) / predicted < 0.02, `allocated ${allocated}, predicted ${predicted}`);
  opt.dispose();
  model.dispose();
  // ZeRO-1 divides the moments by the ranks.
  const z = runCost(m, { ...shape, ranks: 4, zero1: true }, { gflops: 1 }).memoryBytes;
  const r = runCost(m, { ...shape, ranks: 4 }, { gflops: 1 }).memoryBytes;
  assert.equal(r - z, (8 * countParams(m).total * 3) / 4);
});
