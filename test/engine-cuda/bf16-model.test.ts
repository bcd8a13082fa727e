/**
 * The model on bf16 activations (issue 10 item 1): the activation arena splits into an f32 stream arena and a bf16
 * activation arena whose bytes are exactly half the f32 one's; the bf16 weight copy equals the cast of the f32
 * parameters, bit for bit, after every kind of write (init, setParam, AdamW steps); a step allocates only its
 * arenas, as on the CPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { CudaBackend } from '../../src/engine/cuda.js';
import { Decoder } from '../../src/model/decoder.js';
import { activationArenaBytes, activationArenaElements } from '../../src/model/activations.js';
import { initWeights } from '../../src/model/init.js';
import { AdamW } from '../../src/train/adamw.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { bf16Reference } from './bf16-reference.js';
import { device, skipReason } from './harness.js';

const skip = skipReason;

const cfg = validateModelConfig({
  family: 'qwen3', vocab_size: 61, hidden_size: 32, n_layer: 2, n_head: 4, n_kv_head: 2, head_dim: 8, ffn_hidden: 40,
  context_length: 16, qk_norm: true,
}, 'bf16 model');

function engine(precision: 'bf16' | 'fp32'): CudaBackend {
  return new CudaBackend({ precision, interpret: device === 'cuda-interpret' });
}

/** The copy must be exactly the rounded parameters. */
function assertCopyIsCast(model: Decoder, when: string): void {
  const n = model.layout.total;
  const p = new Float32Array(n), c = new Float32Array(n);
  model.be.download(at(model.params), p);
  model.be.download(at(model.paramsBf16!), c);
  const bad = c.findIndex((v, i) => !Object.is(v, bf16Reference(p[i]!)));
  assert.equal(bad, -1, `${when}: copy[${bad}] = ${c[bad]} but the weight ${p[bad]} rounds to ${bf16Reference(p[bad]!)}`);
}

test('bf16 arena: the activation part takes exactly half the bytes, the stream part is unchanged', { skip }, () => {
  const batch = 3, seq = 9;
  const { stream, act } = activationArenaElements(cfg, batch, seq);
  assert.ok(stream > 0 && act > stream, 'most activation elements are in the bf16 arena');
  const f32 = activationArenaBytes(cfg, batch, seq, 'f32');
  const bf16 = activationArenaBytes(cfg, batch, seq, 'bf16');
  assert.equal(f32 - bf16, act * 2, 'bf16 saves 2 bytes per activation element, nothing else');
  for (const [precision, want] of [['bf16', bf16], ['fp32', f32]] as const) {
    const be = engine(precision);
    const model = new Decoder(be, cfg);
    const ids = Int32Array.from({ length: batch * seq }, (_, i) => (i * 5) % cfg.vocab_size);
    const before = be.allocatedBytes();
    model.run(ids, ids, { batch, seq, backward: true });
    assert.equal(model.activationBytes, want, `${precision}: the arena reports its planned bytes`);
    const grown = be.allocatedBytes() - before;
    assert.ok(grown >= want && grown < want + 4 * 256, `${precision}: the step allocated ${grown} bytes for a ${want}-byte arena`);
    model.dispose();
  }
});

test('bf16 weight copy: the cast of the parameters after init, setParam and AdamW steps, and the loss falls', { skip }, () => {
  const be = engine('bf16');
  const model = new Decoder(be, cfg);
  assert.ok(model.paramsBf16, 'a bf16 backend gives the model a weight copy');
  initWeights(model, { seed: 3, scaledResidual: true });
  assertCopyIsCast(model, 'after init');
  const spec = model.layout.params[3]!;
  model.setParam(spec, Float32Array.from({ length: spec.size }, (_, i) => 1 + i / 7));
  assertCopyIsCast(model, 'after setParam');
  const opt = new AdamW(be, model, { lr: 3e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0 });
  const batch = 2, seq = 12;
  const ids = Int32Array.from({ length: batch * seq }, (_, i) => (i * 7 + 3) % cfg.vocab_size);
  const targets = Int32Array.from({ length: batch * seq }, (_, i) => (i * 7 + 10) % cfg.vocab_size);
  const losses: number[] = [];
  for (let step = 0; step < 5; step++) {
    model.zeroGrads();
    model.resetLoss();
    model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / (batch * seq) });
    losses.push(model.takeLoss() / (batch * seq));
    opt.update(3e-2, 1);
    assertCopyIsCast(model, `after AdamW step ${step + 1}`);
  }
  assert.ok(losses[4]! < losses[0]! - 0.1, `the loss falls in bf16: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  opt.dispose();
  model.dispose();
  assert.equal(engine('fp32').activationDType, 'f32');
  assert.equal(new Decoder(engine('fp32'), cfg).paramsBf16, null, 'no copy with f32 activations');
});
