/**
 * The activation arena is the whole of a training step's activation memory: running forward + backward allocates
 * exactly the arena that `activationBytes` reports (up to the engine's 64-byte rounding of its three buffers) and
 * nothing more, not even transiently, so `bench`'s activation and peak numbers stay true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { validateModelConfig } from '../../src/config/schema.js';

const be = createBackend('cpu');

// In increasing size, so each case's arena sets a new engine high-water mark that the test can read.
const CASES: [string, number, Record<string, unknown>][] = [
  ['pre-norm, rope, qk-norm, swiglu', 2, { family: 'qwen3', qk_norm: true, n_kv_head: 2 }],
  ['post-norm layernorm, learned positions, gelu mlp', 3, { family: 'gpt2', norm_position: 'post' }],
  ['post-norm rmsnorm, rope, swiglu', 4, { family: 'llama', norm_position: 'post', n_kv_head: 1 }],
  ['pre-norm layernorm, learned positions, biases', 6, { family: 'gpt2', attention_bias: true, mlp_bias: true }],
];

for (const [name, batch, over] of CASES) {
  test(`a training step allocates only its activation arena: ${name}`, () => {
    const cfg = validateModelConfig({
      vocab_size: 61, hidden_size: 16, n_layer: 3, n_head: 4, head_dim: 6, ffn_hidden: 20, context_length: 16, ...over,
    }, name);
    const model = new Decoder(be, cfg);
    const seq = 9;
    const N = batch * seq;
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 7) % cfg.vocab_size);
    const before = be.allocatedBytes();
    const peakBefore = be.peakAllocatedBytes();
    model.run(ids, ids, { batch, seq, backward: true });
    const after = be.allocatedBytes();
    const grown = after - before;
    assert.ok(model.activationBytes > 0);
    assert.ok(grown >= model.activationBytes && grown < model.activationBytes + 3 * 64,
      `the step allocated ${grown} bytes but the arena reports ${model.activationBytes}`);
    assert.ok(after > peakBefore, 'test setup: this case must set a new high-water mark');
    assert.equal(be.peakAllocatedBytes(), after, 'the step allocated memory outside its arena, transiently');
    // A second step of the same shape reuses the arena.
    model.run(ids, ids, { batch, seq, backward: true });
    assert.equal(be.allocatedBytes(), after);
    assert.equal(be.peakAllocatedBytes(), after);
    model.dispose();
  });
}
