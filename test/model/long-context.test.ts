/**
 * Long context on the CPU engine: memory grows linearly with the sequence length (the arena is planned per token;
 * attention keeps only the row log-sum-exp and per-thread blocks of 64 query rows), and a 32,768-token forward +
 * backward of a tiny model runs (LMFORGE_LONG_TESTS=1: about a minute on 2 cores).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { LONG } from '../helpers.js';

const be = createBackend('cpu');
const cfg = validateModelConfig({
  family: 'qwen3', vocab_size: 64, hidden_size: 32, n_layer: 2, n_head: 2, n_kv_head: 1, head_dim: 16, ffn_hidden: 64,
  context_length: 32768, rope_theta: 1e6,
}, 'long-context test');

function step(T: number): { arena: number; peak: number; loss: number } {
  const m = new Decoder(be, cfg);
  initWeights(m, { seed: 1, scaledResidual: true });
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 7) % 64);
  const before = be.allocatedBytes();
  m.run(ids, ids, { batch: 1, seq: T, backward: true, gradScale: 1 / T });
  const out = { arena: m.activationBytes, peak: be.peakAllocatedBytes() - before, loss: m.takeLoss() / T };
  m.dispose();
  return out;
}

test('activation memory is linear in the sequence length', () => {
  const a = step(1024);
  const b = step(4096);
  assert.ok(Number.isFinite(a.loss) && Number.isFinite(b.loss));
  const ratio = b.arena / a.arena;
  assert.ok(ratio > 3.9 && ratio < 4.1, `4x the tokens took ${ratio.toFixed(3)}x the arena`);
});

test('seq 32768: forward and backward of a tiny model, memory linear in T', { skip: !LONG && 'set LMFORGE_LONG_TESTS=1' }, () => {
  const rss0 = process.memoryUsage().rss;
  const small = step(8192);
  const big = step(32768);
  assert.ok(Number.isFinite(big.loss), `loss ${big.loss}`);
  assert.ok(big.arena / small.arena < 4.1, `arena ${big.arena} vs ${small.arena}`);
  // The whole process, kernels' scratch included, stays far from a T x T matrix (32768^2 floats = 4 GiB).
  const grown = process.memoryUsage().rss - rss0;
  assert.ok(grown < 1024 * 2 ** 20, `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
});
