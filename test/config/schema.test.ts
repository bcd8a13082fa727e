import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConfigError, MODEL_KEYS, configNotes, defaultModelConfig, describeTable, nearestNames, parseOverrides,
  validateModelConfig, validateRecord, type KeyTable,
} from '../../src/config/schema.js';
import { PRESETS, PRESET_ABOUT, PRESET_BATCH, getPreset } from '../../src/config/presets.js';

const throwsMsg = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => {
  assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
  assert.match(e.message, re);
  return true;
});

test('defaults: an empty record is a small valid Qwen3-style model', () => {
  const d = defaultModelConfig();
  assert.equal(d.family, 'qwen3');
  assert.equal(d.vocab_size, 151936);
  assert.equal(d.head_dim, d.hidden_size / d.n_head);
  assert.equal(d.n_kv_head, d.n_head);
  assert.equal(d.ffn, 'swiglu');
  assert.equal(d.activation, 'silu');
  assert.equal(d.qk_norm, true);
  assert.equal(Object.keys(d).length, Object.keys(MODEL_KEYS).length);
});

test('family-dependent defaults', () => {
  const g = validateModelConfig({ family: 'gpt2', hidden_size: 96, n_head: 3 }, 'g.json');
  assert.deepEqual(
    [g.norm, g.positions, g.ffn, g.activation, g.ffn_hidden, g.attention_bias, g.mlp_bias, g.tie_embeddings, g.qk_norm, g.head_dim, g.norm_eps],
    ['layernorm', 'learned', 'mlp', 'gelu_tanh', 384, true, true, true, false, 32, 1e-5]);
  const l = validateModelConfig({ family: 'llama' }, 'l.json');
  assert.deepEqual([l.norm, l.positions, l.ffn, l.tie_embeddings, l.qk_norm, l.rope_theta], ['rmsnorm', 'rope', 'swiglu', false, false, 1e4]);
  // Explicit values win over derived ones.
  assert.equal(validateModelConfig({ family: 'gpt2', ffn: 'swiglu' }, 'x').activation, 'silu');
  assert.equal(validateModelConfig({ ffn: 'mlp' }, 'x').activation, 'gelu');
});

test('unknown key suggests the nearest known key', () => {
  throwsMsg(() => validateModelConfig({ n_heads: 4 }, 'cfg.json'), /unknown key 'n_heads' in cfg\.json; did you mean 'n_head'\?/);
  throwsMsg(() => validateModelConfig({ vocab: 10 }, 'cfg.json'), /did you mean 'vocab_size'/);
  throwsMsg(() => validateModelConfig({ zzzzzzzzzz: 1 }, 'cfg.json'), /unknown key 'zzzzzzzzzz' in cfg\.json; known keys: family, vocab_size/);
});

test('wrong types, ranges and enums name the key', () => {
  throwsMsg(() => validateModelConfig({ n_layer: '12' }, 'c.yaml'), /c\.yaml: key 'n_layer' must be a whole number, got string '12'/);
  throwsMsg(() => validateModelConfig({ n_layer: 1.5 }, 'c'), /'n_layer' must be a whole number, got 1\.5/);
  throwsMsg(() => validateModelConfig({ vocab_size: 0 }, 'c'), /'vocab_size' is 0 but must be >= 1/);
  throwsMsg(() => validateModelConfig({ norm_eps: 0 }, 'c'), /'norm_eps' is 0 but must be > 0/);
  throwsMsg(() => validateModelConfig({ qk_norm: 'yes' }, 'c'), /'qk_norm' must be true or false/);
  throwsMsg(() => validateModelConfig({ activation: 'gelu_new' }, 'c'), /'activation' must be one of 'silu', 'gelu', 'gelu_tanh', got string 'gelu_new' \(did you mean 'gelu'\?\)/);
  throwsMsg(() => validateModelConfig({ family: 'qwen2' }, 'c'), /did you mean 'qwen3'/);
  throwsMsg(() => validateModelConfig([1, 2], 'c'), /expected an object/);
  throwsMsg(() => validateModelConfig(null, 'c'), /expected an object/);
});

test('several problems are reported together', () => {
  try {
    validateModelConfig({ n_heads: 4, n_layer: -1, tie: true }, 'cfg.json');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.problems.length, 3);
    assert.match(e.message, /cfg\.json: 3 problems/);
  }
});

test('invalid combinations', () => {
  throwsMsg(() => validateModelConfig({ n_head: 6, n_kv_head: 4, head_dim: 16 }, 'c'),
    /n_head 6 is not a multiple of n_kv_head 4; set n_kv_head to a divisor of n_head \(1, 2, 3, 6\)/);
  throwsMsg(() => validateModelConfig({ head_dim: 33 }, 'c'), /head_dim 33 is odd but RoPE/);
  assert.equal(validateModelConfig({ head_dim: 33, positions: 'learned' }, 'c').head_dim, 33);
  throwsMsg(() => validateModelConfig({ hidden_size: 100, n_head: 3 }, 'c'), /not divisible by n_head 3, so head_dim has no default; set head_dim/);
  assert.equal(validateModelConfig({ hidden_size: 100, n_head: 3, head_dim: 32 }, 'c').head_dim, 32);
});

test('allowed-but-unusual combinations give notes, not errors', () => {
  const g = validateModelConfig({ activation: 'gelu' }, 'c');
  assert.match(configNotes(g).join('\n'), /gated GELU/);
  const m = validateModelConfig({ ffn: 'mlp', activation: 'silu' }, 'c');
  assert.match(configNotes(m).join('\n'), /plain two-layer MLP with SiLU/);
  const q = validateModelConfig({ qk_norm: false }, 'c');
  assert.match(configNotes(q).join('\n'), /without qk_norm cannot be exported as Qwen3/);
  assert.deepEqual(configNotes(getPreset('gpt2')), []);
});

test('overrides coerce types and reject unknown keys', () => {
  const o = parseOverrides(MODEL_KEYS, ['n_layer=12', 'rope_theta=1e6', 'vocab_size=151_936', 'qk_norm=false', 'family=llama'], '--set');
  assert.deepEqual(o, { n_layer: 12, rope_theta: 1e6, vocab_size: 151936, qk_norm: false, family: 'llama' });
  throwsMsg(() => parseOverrides(MODEL_KEYS, ['n_layers=3'], '--set'), /unknown key 'n_layers' in --set; did you mean 'n_layer'/);
  throwsMsg(() => parseOverrides(MODEL_KEYS, ['n_layer'], '--set'), /not of the form key=value/);
  throwsMsg(() => parseOverrides(MODEL_KEYS, ['n_layer=many'], '--set'), /'n_layer' expects a number, got 'many'/);
  throwsMsg(() => parseOverrides(MODEL_KEYS, ['qk_norm=maybe'], '--set'), /expects true or false/);
});

test('validateRecord is generic (a trainer-like table)', () => {
  const TABLE = {
    lr: { kind: 'number', min: 0, exclusiveMin: true, default: 3e-4, help: 'peak learning rate' },
    steps: { kind: 'int', min: 1, default: 100, help: 'optimizer steps' },
    warmup: { kind: 'int', min: 0, default: (r) => Math.floor(Number(r['steps']) / 10), defaultHelp: 'steps / 10', help: 'warmup steps' },
    schedule: { kind: 'enum', values: ['cosine', 'wsd'] as const, default: 'cosine', help: 'lr schedule' },
    out: { kind: 'string', default: 'runs/x', help: 'run folder' },
  } as const satisfies KeyTable;
  const r = validateRecord(TABLE, { steps: 50 }, 'train.json');
  assert.deepEqual(r, { lr: 3e-4, steps: 50, warmup: 5, schedule: 'cosine', out: 'runs/x' });
  const given = new Set<string>();
  validateRecord(TABLE, { lr: 1e-3 }, 't', given);
  assert.deepEqual([...given], ['lr']);
  throwsMsg(() => validateRecord(TABLE, { lr: 0 }, 't'), /'lr' is 0 but must be > 0/);
  throwsMsg(() => validateRecord(TABLE, { schedul: 'wsd' }, 't'), /did you mean 'schedule'/);
  assert.equal(describeTable(TABLE).length, 5);
  assert.match(describeTable(TABLE)[2]!, /warmup.*default steps \/ 10/);
});

test('nearestNames', () => {
  assert.deepEqual(nearestNames('qwen3-06b', Object.keys(PRESETS)), ['qwen3-0.6b']);
  assert.deepEqual(nearestNames('completely-else', ['a', 'b']), []);
});

test('model key table prints', () => {
  const lines = describeTable(MODEL_KEYS);
  assert.equal(lines.length, Object.keys(MODEL_KEYS).length);
  assert.match(lines.find((l) => l.startsWith('n_kv_head'))!, /default n_head \(MHA\)/);
});

test('presets: released facts and lookup errors', () => {
  for (const n of ['qwen3-0.6b', 'qwen3-1.7b', 'qwen3-4b', 'qwen3-8b']) {
    const c = getPreset(n);
    assert.deepEqual([c.vocab_size, c.head_dim, c.n_kv_head, c.rope_theta, c.norm_eps, c.context_length, c.qk_norm, c.init_std],
      [151936, 128, 8, 1e6, 1e-6, 40960, true, 0.02], n);
    assert.equal(c.tie_embeddings, n !== 'qwen3-8b', n);
  }
  for (const n of ['qwen3-custom-1b', 'qwen3-custom-1.5b', 'qwen3-custom-2b']) {
    const c = getPreset(n);
    assert.equal(c.ffn_hidden, 3 * c.hidden_size);
    assert.deepEqual([c.n_layer, c.n_head, c.n_kv_head, c.head_dim, c.tie_embeddings, c.qk_norm], [28, 16, 8, 128, false, true]);
  }
  for (const n of ['gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl']) {
    const c = getPreset(n);
    assert.deepEqual([c.vocab_size, c.context_length, c.norm_eps, c.activation, c.ffn_hidden / c.hidden_size, c.attention_bias, c.tie_embeddings],
      [50257, 1024, 1e-5, 'gelu_tanh', 4, true, true]);
  }
  const rv = getPreset('cpu-realvocab');
  assert.deepEqual([rv.vocab_size, rv.hidden_size, rv.n_layer, rv.n_head, rv.n_kv_head, rv.head_dim, rv.ffn_hidden, rv.tie_embeddings, rv.context_length],
    [151936, 256, 4, 4, 2, 64, 768, true, 256]);
  const sm = getPreset('cpu-small');
  assert.deepEqual([sm.vocab_size, sm.hidden_size, sm.n_layer, sm.n_head, sm.n_kv_head, sm.head_dim, sm.ffn_hidden, sm.tie_embeddings, sm.context_length],
    [8192, 512, 8, 8, 4, 64, 1536, false, 512]);
  assert.equal(getPreset('cpu-tiny').vocab_size, 151936);
  for (const n of Object.keys(PRESETS)) assert.ok(PRESET_ABOUT[n], n);
  for (const n of Object.keys(PRESET_BATCH)) assert.ok(PRESETS[n], n);
  throwsMsg(() => getPreset('qwen3-06b'), /unknown preset 'qwen3-06b'\. Did you mean 'qwen3-0\.6b'\? Presets: qwen3-0\.6b, /);
  throwsMsg(() => getPreset('toString'), /unknown preset 'toString'/);
  // getPreset returns a copy.
  const c = getPreset('gpt2'); c.n_layer = 1;
  assert.equal(getPreset('gpt2').n_layer, 12);
});
