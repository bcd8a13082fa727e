/**
 * The optimizer's weight-decay groups, as the golden README states PyTorch's: decoupled weight decay on every
 * parameter of 2 or more dimensions (embeddings, projections, the head), none on norm gains and biases. Checked
 * by name, through the ranges, and by what one AdamW step does to each tensor, replicated and as one ZeRO-1 rank.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import type { Ptr } from '../../src/engine/backend.js';
import { getPreset } from '../../src/config/presets.js';
import { validateModelConfig } from '../../src/config/schema.js';
import type { ModelConfig } from '../../src/config/model.js';
import { buildLayout, decayRanges, type Layout } from '../../src/model/layout.js';
import { Decoder } from '../../src/model/decoder.js';
import { ADAMW_DEFAULTS, AdamW, clipCoefficient } from '../../src/train/adamw.js';
import { ReplicatedAdamW, ZeroAdamW, type TrainOptimizer } from '../../src/train/optimizer.js';
import { SingleProcessGroup, countsList, type ProcessGroup, type RankCounts } from '../../src/parallel/group.js';

const be = createBackend('cpu');

/** Small configs of every family, with biases and QK-norm where the family allows them. */
const CONFIGS: Record<string, ModelConfig> = {
  qwen3: validateModelConfig({ ...getPreset('cpu-tiny'), vocab_size: 64, hidden_size: 16, n_layer: 2, n_head: 2, n_kv_head: 1, head_dim: 8, ffn_hidden: 24, attention_bias: true }, 'qwen3'),
  llama: validateModelConfig({ ...getPreset('llama2-1.36b'), vocab_size: 64, hidden_size: 16, n_layer: 2, n_head: 2, n_kv_head: 2, head_dim: 8, ffn_hidden: 24, mlp_bias: true, tie_embeddings: false }, 'llama'),
  gpt2: validateModelConfig({ ...getPreset('gpt2'), vocab_size: 64, hidden_size: 16, n_layer: 2, n_head: 2, n_kv_head: 2, head_dim: 8, ffn_hidden: 32, context_length: 32 }, 'gpt2'),
};

/** The rule by name: norms (RMSNorm/LayerNorm gains and shifts, QK-norm) and biases do not decay; everything else does. */
const decaysByName = (name: string): boolean => !/norm|ln_\d|ln_f/.test(name) && !name.endsWith('.bias');

test('by name: embeddings, projections and the head decay; norms and biases do not', () => {
  for (const [family, cfg] of Object.entries(CONFIGS)) {
    const L = buildLayout(cfg);
    const names = L.params.map((p) => p.name);
    assert.ok(names.some((n) => n.endsWith('.bias')), `${family} has biases`);
    assert.ok(names.some((n) => /norm|ln_/.test(n)), `${family} has norms`);
    for (const p of L.params) assert.equal(p.decay, decaysByName(p.name), `${family}: ${p.name}`);
    const embed = family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
    assert.equal(L.byName.get(embed)!.decay, true);
    if (family === 'gpt2') assert.equal(L.byName.get('transformer.wpe.weight')!.decay, true);
    if (family === 'llama') assert.equal(L.byName.get('lm_head.weight')!.decay, true);
  }
});

test('decay ranges: the decayed tensors form the first range and the rest the second, covering the buffer once', () => {
  for (const [family, cfg] of Object.entries(CONFIGS)) {
    const L = buildLayout(cfg);
    const decayed = L.params.filter((p) => decaysByName(p.name)).reduce((a, p) => a + p.size, 0);
    assert.deepEqual(decayRanges(L), [
      { offset: 0, size: decayed, decay: true },
      { offset: decayed, size: L.total - decayed, decay: false },
    ], family);
  }
  // Merging: adjacent tensors with the same setting join; a change of setting or a gap starts a new range.
  const spec = (offset: number, size: number, decay: boolean) => ({ name: `t${offset}`, shape: [size], offset, size, decay, init: 'zeros' as const, residualProjection: false, hfTransposed: false });
  const fake = { params: [spec(0, 2, true), spec(2, 3, true), spec(5, 1, false), spec(6, 4, true), spec(12, 1, true), spec(13, 2, true)] } as unknown as Layout;
  assert.deepEqual(decayRanges(fake), [
    { offset: 0, size: 5, decay: true },
    { offset: 5, size: 1, decay: false },
    { offset: 6, size: 4, decay: true },
    { offset: 12, size: 3, decay: true },
  ]);
});

/** One rank of `size` seen alone: the other ranks contribute zero gradients and keep their own slices. */
class OneRankOfMany implements ProcessGroup {
  readonly kind = 'single' as const;
  readonly localRank = 0;
  readonly localSize = 1;
  constructor(readonly rank: number, readonly size: number) {}
  describe(): string {
    return `rank ${this.rank} of ${this.size} (test)`;
  }
  barrier(): void {}
  broadcast(): void {}
  allReduce(): void {}
  reduceScatter(input: Ptr, output: Ptr, counts: RankCounts): void {
    const c = countsList(counts, this.size);
    const disp = c.slice(0, this.rank).reduce((a, b) => a + b, 0);
    if (c[this.rank]! > 0) be.copy(output, { buf: input.buf, offset: input.offset + disp }, c[this.rank]!);
  }
  allGather(): void {}
  gather(): void {}
  allReduceHost(): void {}
  abort(message: string): never {
    throw new Error(message);
  }
  finalize(): void {}
}

/**
 * One AdamW step with zero gradients: the Adam term is 0, so a decayed parameter becomes p (1 - lr wd) and any
 * other stays p. `owned(offset)` says which elements this optimizer updates (a ZeRO-1 rank: its slice only).
 */
function checkOneStep(cfg: ModelConfig, make: (m: Decoder) => TrainOptimizer | AdamW, owned: (offset: number) => boolean): void {
  const model = new Decoder(be, cfg);
  const start = new Float32Array(model.layout.total);
  for (let i = 0; i < start.length; i++) start[i] = 1 + (i % 7) / 8;
  be.upload(model.paramPtr(0), start);
  model.zeroGrads();
  const opt = make(model);
  if (opt instanceof AdamW) opt.update(0.1, 1);
  else {
    const stats = be.alloc('f64', 2); // the step's [loss sum, squared gradient norm], completed on the engine
    be.upload({ buf: stats, offset: 0 }, Float64Array.of(1, 0));
    opt.reduceGradients({ buf: stats, offset: 0 });
    opt.update(0.1, { buf: stats, offset: 0 });
    be.free(stats);
  }
  const after = new Float32Array(model.layout.total);
  be.download(model.paramPtr(0), after);
  for (const p of model.layout.params)
    for (let j = 0; j < p.size; j++) {
      const o = p.offset + j;
      const want = owned(o) && decaysByName(p.name) ? Math.fround(start[o]! * (1 - 0.1 * 0.5)) : start[o]!;
      if (Math.abs(after[o]! - want) > 1e-6 * want) assert.fail(`${p.name}[${j}] (offset ${o}): ${after[o]} but expected ${want}`);
    }
  opt.dispose();
  model.dispose();
}

const adam = { lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.5, clip: 1 };

test('one AdamW step decays exactly the decayed tensors: AdamW, replicated, and every ZeRO-1 rank of 2 and 3', () => {
  for (const [family, cfg] of Object.entries(CONFIGS)) {
    checkOneStep(cfg, (m) => new AdamW(be, m, adam), () => true);
    checkOneStep(cfg, (m) => new ReplicatedAdamW(be, m, new SingleProcessGroup(be), adam), () => true);
    checkOneStep(cfg, (m) => new ZeroAdamW(be, m, new SingleProcessGroup(be), adam), () => true);
    for (const size of [2, 3])
      for (let rank = 0; rank < size; rank++) {
        const total = buildLayout(cfg).total;
        const cap = Math.ceil(total / size);
        const lo = rank * cap, hi = Math.min(total, lo + cap);
        // The slice boundaries fall inside tensors, and the last slice holds the decay / no-decay boundary.
        checkOneStep(cfg, (m) => new ZeroAdamW(be, m, new OneRankOfMany(rank, size), adam), (o) => o >= lo && o < hi);
        assert.ok(hi > lo, `${family}: rank ${rank} of ${size} has elements`);
      }
  }
});

test('clipping coefficient: PyTorch clip_grad_norm_ (max_norm / (norm + 1e-6), never above 1; 0 turns it off)', () => {
  assert.equal(clipCoefficient(10, 1), 1 / (10 + 1e-6));
  assert.equal(clipCoefficient(0.5, 1), 1);
  assert.equal(clipCoefficient(1, 1), 1 / (1 + 1e-6));
  assert.equal(clipCoefficient(1e6, 0), 1);
  assert.equal(clipCoefficient(1e6, -1), 1);
  assert.deepEqual(ADAMW_DEFAULTS, { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1.0 });
});

test("a ZeRO-1 rank's gradient norm covers its slice; optimizers free what they allocate", () => {
  const cfg = CONFIGS.qwen3!;
  const model = new Decoder(be, cfg);
  const n = model.layout.total;
  const g = Float32Array.from({ length: n }, (_, i) => ((i % 5) - 2) / 4);
  be.upload(model.gradPtr(0), g);
  const cap = Math.ceil(n / 2);
  const sumSq = (a: Float32Array) => a.reduce((s, x) => s + x * x, 0);
  // The norm an optimizer reduces, as the square root of the squared norm it leaves in the step's statistics.
  const normOf = (opt: TrainOptimizer): number => {
    const stats = be.alloc('f64', 2);
    be.upload({ buf: stats, offset: 0 }, Float64Array.of(0, 0));
    opt.reduceGradients({ buf: stats, offset: 0 });
    const out = new Float64Array(2);
    be.download({ buf: stats, offset: 0 }, out);
    be.free(stats);
    return Math.sqrt(out[1]!);
  };
  const before = be.allocatedBytes();
  const z = new ZeroAdamW(be, model, new OneRankOfMany(1, 2), adam);
  assert.ok(Math.abs(normOf(z) - Math.sqrt(sumSq(g.subarray(cap)))) < 1e-9);
  z.dispose();
  const a = new AdamW(be, model, adam);
  a.dispose();
  const r = new ReplicatedAdamW(be, model, new SingleProcessGroup(be), adam);
  assert.ok(Math.abs(normOf(r) - Math.sqrt(sumSq(g))) < 1e-6 * Math.sqrt(sumSq(g)));
  r.dispose();
  assert.equal(be.allocatedBytes(), before);
  model.dispose();
});

test('the other per-tensor flags beside decay: residual projections and GPT-2 Conv1D weights', () => {
  for (const [family, cfg] of Object.entries(CONFIGS)) {
    for (const p of buildLayout(cfg).params) {
      const residual = /(o_proj|down_proj|attn\.c_proj|mlp\.c_proj)\.weight$/.test(p.name);
      assert.equal(p.residualProjection, residual, `${family}: ${p.name} residual`);
      const conv1d = family === 'gpt2' && /(c_attn|c_proj|c_fc)\.weight$/.test(p.name);
      assert.equal(p.hfTransposed, conv1d, `${family}: ${p.name} transposed`);
    }
  }
});
