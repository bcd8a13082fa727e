import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ConfigError } from '../../src/config/schema.js';
import { getPreset } from '../../src/config/presets.js';
import { checkExportable, exportProblems, fromHfConfig, toHfConfig } from '../../src/config/hf-config.js';
import type { ModelConfig } from '../../src/config/model.js';
import { GOLDEN_FIXTURES } from '../helpers.js';

const GOLDEN = GOLDEN_FIXTURES;
const golden = (name: string): Record<string, unknown> => JSON.parse(fs.readFileSync(`${GOLDEN}/${name}/config.json`, 'utf8'));
const throwsMsg = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => (e instanceof ConfigError && re.test(e.message)) || assert.fail(String(e)));

test('golden qwen3-tiny (GQA, head_dim 32 != hidden/heads, untied)', () => {
  const c = fromHfConfig(golden('qwen3-tiny'), 'qwen3-tiny/config.json');
  const want: ModelConfig = {
    family: 'qwen3', vocab_size: 384, hidden_size: 64, n_layer: 2, n_head: 4, n_kv_head: 2, head_dim: 32, ffn: 'swiglu',
    ffn_hidden: 160, activation: 'silu', norm: 'rmsnorm', norm_position: 'pre', norm_eps: 1e-6, positions: 'rope',
    rope_theta: 1e6, context_length: 128, qk_norm: true, attention_bias: false, mlp_bias: false, tie_embeddings: false,
    init_std: 0.02,
  };
  assert.deepEqual(c, want);
});

test('golden qwen3-tiny-tied (MQA, tied)', () => {
  const c = fromHfConfig(golden('qwen3-tiny-tied'), 'x');
  assert.deepEqual([c.n_head, c.n_kv_head, c.head_dim, c.tie_embeddings, c.qk_norm], [4, 1, 16, true, true]);
});

test('golden llama-tiny (theta 5e5 from rope_parameters, untied, no QK-norm)', () => {
  const c = fromHfConfig(golden('llama-tiny'), 'x');
  assert.deepEqual(
    [c.family, c.vocab_size, c.hidden_size, c.n_layer, c.n_head, c.n_kv_head, c.head_dim, c.ffn_hidden, c.norm_eps, c.rope_theta, c.context_length, c.qk_norm, c.tie_embeddings, c.mlp_bias],
    ['llama', 320, 64, 2, 4, 2, 16, 176, 1e-5, 5e5, 128, false, false, false]);
});

test('golden gpt2-tiny (n_inner null => 4x, gelu_new => gelu_tanh, tied, learned positions)', () => {
  const c = fromHfConfig(golden('gpt2-tiny'), 'x');
  assert.deepEqual(
    [c.family, c.vocab_size, c.hidden_size, c.n_layer, c.n_head, c.n_kv_head, c.head_dim, c.ffn, c.ffn_hidden, c.activation, c.norm, c.norm_eps, c.positions, c.context_length, c.attention_bias, c.mlp_bias, c.tie_embeddings],
    ['gpt2', 320, 64, 2, 4, 4, 16, 'mlp', 256, 'gelu_tanh', 'layernorm', 1e-5, 'learned', 64, true, true, true]);
});

// Keys whose exported value legitimately differs from what save_pretrained wrote for the golden cases.
const IGNORED = new Set(['transformers_version', 'use_cache', 'bos_token_id', 'eos_token_id', 'max_window_layers',
  'summary_activation', 'summary_first_dropout', 'summary_proj_to_labels', 'summary_type', 'summary_use_proj']);

for (const name of ['qwen3-tiny', 'qwen3-tiny-tied', 'llama-tiny', 'gpt2-tiny']) {
  test(`toHfConfig reproduces every architectural key of golden ${name}`, () => {
    const g = golden(name);
    const out = toHfConfig(fromHfConfig(g, name));
    for (const [k, v] of Object.entries(g)) {
      if (IGNORED.has(k)) continue;
      if (k === 'activation_function' || k === 'hidden_act') {
        // gelu_new and gelu_pytorch_tanh are the same function; silu stays silu.
        assert.equal(fromHfConfig({ ...g, [k]: out[k] }, name).activation, fromHfConfig(g, name).activation);
        continue;
      }
      if (k === 'n_inner' && v === null) { assert.equal(out[k], 4 * Number(g['n_embd'])); continue; }
      assert.deepEqual(out[k], v, `${name}: ${k}`);
    }
    assert.equal(out['dtype'], 'float32');
    assert.ok(Array.isArray(out['architectures']));
    // And the export reads back to the same ModelConfig.
    assert.deepEqual(fromHfConfig(out, 'roundtrip'), fromHfConfig(g, name));
  });
}

test('presets export with the released ids and architectures', () => {
  const q = toHfConfig(getPreset('qwen3-0.6b'));
  assert.deepEqual([q['architectures'], q['bos_token_id'], q['eos_token_id'], q['head_dim'], q['tie_word_embeddings'], q['rope_theta']],
    [['Qwen3ForCausalLM'], 151643, 151645, 128, true, 1e6]);
  assert.deepEqual(q['rope_parameters'], { rope_theta: 1e6, rope_type: 'default' });
  assert.equal((q['layer_types'] as string[]).length, 28);
  const g = toHfConfig(getPreset('gpt2'), { dtype: 'bfloat16' });
  assert.deepEqual([g['architectures'], g['n_inner'], g['activation_function'], g['eos_token_id'], g['dtype']],
    [['GPT2LMHeadModel'], 3072, 'gelu_new', 50256, 'bfloat16']);
  const l = toHfConfig(getPreset('llama3-1.5b'));
  assert.deepEqual([l['architectures'], l['num_key_value_heads'], l['mlp_bias'], l['bos_token_id']], [['LlamaForCausalLM'], 8, false, 1]);
  for (const p of ['qwen3-0.6b', 'qwen3-8b', 'gpt2-xl', 'llama2-1.36b', 'cpu-tiny', 'cpu-small'])
    assert.deepEqual(fromHfConfig(toHfConfig(getPreset(p)), p), getPreset(p), p);
});

test('checkExportable names each incompatibility and its fix', () => {
  const q = getPreset('cpu-tiny');
  assert.deepEqual(exportProblems(q), []);
  throwsMsg(() => checkExportable(q, 'llama'), /qk_norm is true but Llama has no QK-norm; export as qwen3/);
  throwsMsg(() => checkExportable({ ...q, qk_norm: false }), /Qwen3 always has QK-norm; export as llama/);
  throwsMsg(() => checkExportable({ ...q, norm_position: 'post' }), /norm_position 'post' has no Hugging Face equivalent/);
  // Every incompatibility of a Qwen3 model with GPT-2, each named once (not just "some problems").
  assert.deepEqual(exportProblems(q, 'gpt2'), [
    "GPT-2 export: norm 'rmsnorm' but GPT-2 uses LayerNorm; use family llama or qwen3",
    "GPT-2 export: positions 'rope' but GPT-2 has learned positions; use family llama or qwen3 for RoPE",
    "GPT-2 export: ffn 'swiglu' but GPT-2 has a plain MLP; use family llama for a gated FFN",
    'GPT-2 export: qk_norm is not part of GPT-2; use family qwen3',
    'GPT-2 export: GPT-2 projections always have biases; set attention_bias and mlp_bias true',
    'GPT-2 export: n_kv_head 2 != n_head 4: GPT-2 has no GQA; use family llama',
  ]);
  throwsMsg(() => checkExportable(q, 'gpt2'), /GPT-2 has a plain MLP/);
  const g = getPreset('gpt2');
  assert.deepEqual(exportProblems(g), []);
  // One difference from a real GPT-2 at a time: exactly one problem each, so no check hides behind another.
  const one = (change: Partial<ModelConfig>, family?: 'gpt2' | 'llama' | 'qwen3', base: ModelConfig = g): string[] =>
    exportProblems({ ...base, ...change }, family);
  assert.deepEqual(one({ ffn: 'swiglu' }), ["GPT-2 export: ffn 'swiglu' but GPT-2 has a plain MLP; use family llama for a gated FFN"]);
  assert.deepEqual(one({ norm: 'rmsnorm' }), ["GPT-2 export: norm 'rmsnorm' but GPT-2 uses LayerNorm; use family llama or qwen3"]);
  assert.deepEqual(one({ qk_norm: true }), ['GPT-2 export: qk_norm is not part of GPT-2; use family qwen3']);
  assert.deepEqual(one({ mlp_bias: false }), ['GPT-2 export: GPT-2 projections always have biases; set attention_bias and mlp_bias true']);
  assert.deepEqual(one({ head_dim: 32 }), ['GPT-2 export: head_dim 32 x n_head 12 != hidden_size 768: GPT-2 fixes head_dim = hidden_size / n_head']);
  assert.deepEqual(one({ norm_position: 'post' }), ["GPT-2 export: norm_position 'post' has no Hugging Face equivalent; train with norm_position 'pre'"]);
  const l = getPreset('llama2-1.36b');
  assert.deepEqual(exportProblems(l), []);
  assert.deepEqual(one({ ffn: 'mlp' }, 'llama', l), ["Llama export: ffn 'mlp' but Llama has a gated (gate/up/down) FFN; use family gpt2 for a plain MLP"]);
  assert.deepEqual(one({ norm: 'layernorm' }, 'llama', l), ["Llama export: norm 'layernorm' but Llama uses RMSNorm; use family gpt2 for LayerNorm"]);
  assert.deepEqual(one({ positions: 'learned' }, 'llama', l), ["Llama export: positions 'learned' but Llama uses RoPE; use family gpt2 for learned positions"]);
  assert.deepEqual(one({ mlp_bias: true }, 'qwen3', q), ['Qwen3 export: Qwen3 has no MLP biases; export as llama (which has mlp_bias) or set mlp_bias=false']);
  assert.deepEqual(one({ mlp_bias: true }, 'llama', l), []);
  throwsMsg(() => checkExportable({ ...g, attention_bias: false }), /GPT-2 projections always have biases/);
  throwsMsg(() => checkExportable({ ...g, positions: 'rope' }), /GPT-2 has learned positions/);
  throwsMsg(() => toHfConfig({ ...g, n_kv_head: 4 }), /GPT-2 has no GQA/);
  throwsMsg(() => checkExportable({ ...getPreset('llama2-1.36b'), n_head: 7, n_kv_head: 7 }), /not divisible by n_head 7, which LlamaConfig rejects/);
  assert.deepEqual(exportProblems({ ...getPreset('qwen3-0.6b'), activation: 'gelu_tanh' }), []);
  assert.equal(toHfConfig({ ...getPreset('qwen3-0.6b'), activation: 'gelu_tanh' })['hidden_act'], 'gelu_pytorch_tanh');
});

test('reading refuses what the engine does not implement, and unsupported model types', () => {
  const q = golden('qwen3-tiny');
  throwsMsg(() => fromHfConfig({ ...q, model_type: 'mistral' }, 'c.json'), /c\.json: model_type "mistral" is not supported; supported: qwen3, llama, gpt2/);
  throwsMsg(() => fromHfConfig({ ...q, model_type: undefined }, 'c.json'), /model_type undefined is not supported/);
  throwsMsg(() => fromHfConfig({ ...q, use_sliding_window: true }, 'c'), /sliding-window attention is not supported/);
  throwsMsg(() => fromHfConfig({ ...q, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } }, 'c'), /rope_type 'yarn' \(RoPE scaling\) is not supported/);
  throwsMsg(() => fromHfConfig({ ...q, rope_theta: 10000 }, 'c'), /disagrees with rope_parameters/);
  throwsMsg(() => fromHfConfig({ ...q, hidden_act: 'relu' }, 'c'), /hidden_act 'relu' is not supported/);
  throwsMsg(() => fromHfConfig({ ...q, num_hidden_layers: '2' }, 'c'), /'num_hidden_layers' must be a whole number/);
  throwsMsg(() => fromHfConfig({ ...q, num_key_value_heads: 3 }, 'c'), /n_head 4 is not a multiple of n_kv_head 3/);
  throwsMsg(() => fromHfConfig({ ...golden('gpt2-tiny'), scale_attn_by_inverse_layer_idx: true }, 'c'), /scale_attn_by_inverse_layer_idx/);
  throwsMsg(() => fromHfConfig([], 'c'), /must be a JSON object/);
});

test('transformers 4 spellings and class defaults', () => {
  // transformers 4: rope_theta only, no head_dim for llama (=> hidden / heads), Qwen3 head_dim default 128.
  const l = fromHfConfig({ model_type: 'llama', hidden_size: 256, num_attention_heads: 4, num_hidden_layers: 2, rope_theta: 5e5, vocab_size: 1000, intermediate_size: 512 }, 'x');
  assert.deepEqual([l.head_dim, l.n_kv_head, l.rope_theta, l.norm_eps, l.tie_embeddings, l.context_length], [64, 4, 5e5, 1e-6, false, 2048]);
  const q = fromHfConfig({ model_type: 'qwen3', hidden_size: 256, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2 }, 'x');
  assert.deepEqual([q.head_dim, q.vocab_size, q.rope_theta, q.tie_embeddings, q.qk_norm], [128, 151936, 10000, false, true]);
  const g = fromHfConfig({ model_type: 'gpt2' }, 'x');
  assert.deepEqual(g, getPreset('gpt2'));
});

test('reading: each wrongly typed key and each refused setting is named, all of them at once', () => {
  const q = golden('qwen3-tiny');
  throwsMsg(() => fromHfConfig({ ...q, hidden_size: 64.5 }, 'c'), /c: 'hidden_size' must be a whole number, got 64\.5/);
  throwsMsg(() => fromHfConfig({ ...q, rms_norm_eps: '1e-6' }, 'c'), /c: 'rms_norm_eps' must be a number, got "1e-6"/);
  throwsMsg(() => fromHfConfig({ ...q, rms_norm_eps: 1e999 }, 'c'), /'rms_norm_eps' must be a number, got null/);
  throwsMsg(() => fromHfConfig({ ...q, tie_word_embeddings: 'yes' }, 'c'), /c: 'tie_word_embeddings' must be true or false, got "yes"/);
  throwsMsg(() => fromHfConfig({ ...q, hidden_act: 7 }, 'c'), /c: 'hidden_act' must be a string, got 7/);
  throwsMsg(() => fromHfConfig({ ...q, rope_parameters: 'big' }, 'c'), /'rope_parameters' must be an object like \{"rope_theta": 1000000, "rope_type": "default"\}/);
  throwsMsg(() => fromHfConfig({ ...q, rope_parameters: [1] }, 'c'), /'rope_parameters' must be an object/);
  throwsMsg(() => fromHfConfig({ ...q, rope_parameters: { rope_theta: 1e6, type: 'linear' } }, 'c'), /rope_type 'linear' \(RoPE scaling\) is not supported/);
  throwsMsg(() => fromHfConfig({ ...q, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c'), /c: rope_scaling of type 'yarn' is not supported; only plain RoPE is/);
  throwsMsg(() => fromHfConfig({ ...q, rope_scaling: { type: 'dynamic' } }, 'c'), /rope_scaling of type 'dynamic'/);
  throwsMsg(() => fromHfConfig({ ...q, rope_scaling: {} }, 'c'), /rope_scaling of type 'undefined'/);
  throwsMsg(() => fromHfConfig({ ...q, layer_types: ['full_attention', 'sliding_attention'] }, 'c'), /c: layer_types contains 'sliding_attention': only full attention is supported/);
  throwsMsg(() => fromHfConfig({ ...q, model_type: 'qwen2' }, 'c'), /model_type "qwen2" is not supported; supported: qwen3, llama, gpt2 \(Qwen2 has attention biases and no QK-norm: not the same as qwen3\)/);
  throwsMsg(() => fromHfConfig(null, 'c'), /c: a Hugging Face config must be a JSON object/);
  throwsMsg(() => fromHfConfig('qwen3', 'c'), /must be a JSON object/);
  const g = golden('gpt2-tiny');
  throwsMsg(() => fromHfConfig({ ...g, scale_attn_weights: false }, 'c'), /c: scale_attn_weights false \(unscaled attention\) is not supported/);
  throwsMsg(() => fromHfConfig({ ...g, add_cross_attention: true }, 'c'), /c: add_cross_attention true \(encoder-decoder\) is not supported/);
  throwsMsg(() => fromHfConfig({ ...g, n_embd: 66 }, 'c'), /c: n_embd 66 is not divisible by n_head 4/);
  throwsMsg(() => fromHfConfig({ ...g, activation_function: 'swiglu' }, 'c'), /activation_function 'swiglu' is not supported; supported: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast/);
  // Several problems are reported together, not one per attempt.
  throwsMsg(() => fromHfConfig({ ...q, hidden_size: 'x', use_sliding_window: true, rope_scaling: { rope_type: 'yarn' } }, 'c'),
    /hidden_size[\s\S]*sliding-window[\s\S]*rope_scaling/);
  // Settings that are accepted: plain rope_scaling, full-attention layer types, a null rope_parameters.
  const ok = fromHfConfig({ ...q, rope_scaling: { rope_type: 'default' }, layer_types: ['full_attention', 'full_attention'], rope_parameters: null, rope_theta: 1e6 }, 'c');
  assert.equal(ok.rope_theta, 1e6);
  assert.equal(fromHfConfig({ ...q, rope_scaling: null }, 'c').rope_theta, 1e6);
});

test('reading: every activation spelling of transformers, and the class defaults of absent keys', () => {
  const q = golden('qwen3-tiny');
  const acts: Record<string, string> = { silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh' };
  for (const [hf, ours] of Object.entries(acts)) assert.equal(fromHfConfig({ ...q, hidden_act: hf }, 'c').activation, ours, hf);
  // transformers 4 Llama: every absent key takes LlamaConfig's default.
  const l = fromHfConfig({ model_type: 'llama', hidden_size: 256, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 1000, intermediate_size: 512 }, 'x');
  assert.deepEqual(l, {
    family: 'llama', vocab_size: 1000, hidden_size: 256, n_layer: 2, n_head: 4, n_kv_head: 4, head_dim: 64, ffn: 'swiglu', ffn_hidden: 512,
    activation: 'silu', norm: 'rmsnorm', norm_position: 'pre', norm_eps: 1e-6, positions: 'rope', rope_theta: 10000, context_length: 2048,
    qk_norm: false, attention_bias: false, mlp_bias: false, tie_embeddings: false, init_std: 0.02,
  });
  const full = fromHfConfig({ model_type: 'llama', attention_bias: true, mlp_bias: true, tie_word_embeddings: true, initializer_range: 0.01, rms_norm_eps: 1e-5, max_position_embeddings: 512, hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, vocab_size: 100, intermediate_size: 96 }, 'x');
  assert.deepEqual([full.attention_bias, full.mlp_bias, full.tie_embeddings, full.init_std, full.norm_eps, full.context_length], [true, true, true, 0.01, 1e-5, 512]);
  const qd = fromHfConfig({ model_type: 'qwen3', hidden_size: 256, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, mlp_bias: true }, 'x');
  assert.deepEqual([qd.mlp_bias, qd.attention_bias, qd.ffn_hidden, qd.context_length, qd.norm_eps], [false, false, 22016, 32768, 1e-6]);
  // GPT-2: n_inner absent or null means 4 x n_embd; a number is kept.
  const g = golden('gpt2-tiny');
  assert.equal(fromHfConfig({ ...g, n_inner: null }, 'x').ffn_hidden, 256);
  assert.equal(fromHfConfig({ ...g, n_inner: 100 }, 'x').ffn_hidden, 100);
  const { n_inner: _drop, ...noInner } = g;
  assert.equal(fromHfConfig(noInner, 'x').ffn_hidden, 256);
  assert.deepEqual(fromHfConfig({ ...g, tie_word_embeddings: false, layer_norm_epsilon: 1e-6, n_positions: 48 }, 'x').tie_embeddings, false);
});

test('export: special token ids by vocabulary and family, overrides, and the fixed keys transformers reads', () => {
  const ids = (cfg: ModelConfig, o = {}) => { const j = toHfConfig(cfg, o); return [j['bos_token_id'], j['eos_token_id']]; };
  const qwen = getPreset('qwen3-0.6b');
  assert.deepEqual(ids(qwen), [151643, 151645]);
  assert.deepEqual(ids({ ...qwen, vocab_size: 151645 }), [151643, null], 'an id outside the vocabulary is left out');
  assert.deepEqual(ids({ ...qwen, vocab_size: 1000 }), [null, null]);
  const llama = getPreset('llama2-1.36b');
  assert.deepEqual(ids(llama), [1, 2]);
  assert.deepEqual(ids({ ...llama, vocab_size: 151936 }), [151643, 151645], 'the Qwen3 vocabulary in a Llama model');
  assert.deepEqual(ids({ ...llama, vocab_size: 151646 }), [151643, 151645]);
  assert.deepEqual(ids({ ...llama, vocab_size: 151645 }), [1, 2]);
  assert.deepEqual(ids({ ...llama, vocab_size: 50257 }), [50256, 50256]);
  assert.deepEqual(ids({ ...llama, vocab_size: 2 }), [1, null]);
  const gpt2 = getPreset('gpt2');
  assert.deepEqual(ids(gpt2), [50256, 50256]);
  assert.deepEqual(ids({ ...gpt2, vocab_size: 1000 }), [null, null]);
  assert.deepEqual(ids(llama, { bosTokenId: null, eosTokenId: 7 }), [null, 7]);
  assert.deepEqual(ids(qwen, { eosTokenId: 151643 }), [151643, 151643]);
  for (const cfg of [qwen, llama, gpt2]) {
    const j = toHfConfig(cfg);
    assert.equal(j['use_cache'], true);
    assert.equal(j['pad_token_id'], null);
    assert.equal(j['tie_word_embeddings'], cfg.tie_embeddings);
  }
  const q = toHfConfig(qwen);
  assert.deepEqual([q['use_sliding_window'], q['sliding_window'], q['max_window_layers'], q['attention_bias']], [false, null, 28, false]);
  assert.deepEqual([toHfConfig(llama)['mlp_bias'], toHfConfig(llama)['pretraining_tp']], [false, 1]);
  const g = toHfConfig(gpt2);
  assert.deepEqual([g['scale_attn_weights'], g['scale_attn_by_inverse_layer_idx'], g['reorder_and_upcast_attn'], g['add_cross_attention']], [true, false, false, false]);
  assert.deepEqual([g['resid_pdrop'], g['embd_pdrop'], g['attn_pdrop'], g['n_positions'], g['layer_norm_epsilon']], [0, 0, 0, 1024, 1e-5]);
  assert.equal(toHfConfig({ ...gpt2, activation: 'gelu' })['activation_function'], 'gelu');
  assert.equal(toHfConfig({ ...llama, activation: 'gelu' })['hidden_act'], 'gelu');
});

test('RoPE settings in every spelling; the GPT-2 divisibility rule applies to GPT-2 only', () => {
  const q = golden('qwen3-tiny');
  const { rope_theta: _flat, rope_parameters: _params, ...bare } = q;
  // transformers 5: the base only in rope_parameters, with or without a type.
  assert.equal(fromHfConfig({ ...bare, rope_parameters: { rope_theta: 5e5 } }, 'c').rope_theta, 5e5);
  assert.equal(fromHfConfig({ ...bare, rope_parameters: { rope_type: 'default', rope_theta: 2e5 } }, 'c').rope_theta, 2e5);
  // transformers 4: only the flat key; neither: Qwen3Config's default.
  assert.equal(fromHfConfig({ ...bare, rope_theta: 3e5 }, 'c').rope_theta, 3e5);
  assert.equal(fromHfConfig(bare, 'c').rope_theta, 10000);
  throwsMsg(() => fromHfConfig({ ...bare, rope_parameters: { rope_theta: '1e6' } }, 'c'), /c: rope_parameters\.rope_theta must be a number, got "1e6"/);
  // rope_parameters naming only its type (rope_theta absent or null) leaves the base to the flat key.
  assert.equal(fromHfConfig({ ...bare, rope_theta: 4e5, rope_parameters: { rope_type: 'default' } }, 'c').rope_theta, 4e5);
  assert.equal(fromHfConfig({ ...bare, rope_theta: 4e5, rope_parameters: { rope_type: 'default', rope_theta: null } }, 'c').rope_theta, 4e5);
  throwsMsg(() => fromHfConfig({ ...bare, rope_scaling: 'linear' }, 'c'), /rope_scaling of type 'linear' is not supported/);
  // Qwen3 sets head_dim on its own: hidden 66 over 4 heads is fine there, not for GPT-2.
  const odd = fromHfConfig({ ...q, hidden_size: 66 }, 'c');
  assert.deepEqual([odd.hidden_size, odd.n_head, odd.head_dim], [66, 4, 32]);
  const g = golden('gpt2-tiny');
  assert.equal(fromHfConfig({ ...g, initializer_range: 0.05 }, 'c').init_std, 0.05);
  assert.equal(fromHfConfig({ ...g, layer_norm_epsilon: 1e-6 }, 'c').norm_eps, 1e-6);
  // The Qwen2 hint is for qwen2 only.
  throwsMsg(() => fromHfConfig({ ...q, model_type: 'mistral' }, 'c'), /^c: model_type "mistral" is not supported; supported: qwen3, llama, gpt2$/);
  // A GPT-2 with no heads is told so, not that n_embd is "not divisible by n_head 0".
  assert.throws(() => fromHfConfig({ ...g, n_head: 0 }, 'c'), (e: unknown) => e instanceof ConfigError && /key 'n_head' is 0 but must be >= 1/.test(e.message) && !/divisible/.test(e.message));
  // Several export problems are listed under one heading naming the family.
  throwsMsg(() => checkExportable(getPreset('cpu-tiny'), 'gpt2'), /^export as gpt2: 6 problems:\n {2}- GPT-2 export: norm 'rmsnorm'/);
});
