/**
 * Named model configurations: the released Qwen3 and GPT-2 models exactly as their config.json files have them,
 * the comparison-table rows of /work/shared/reference/qwen3.md, and small presets sized for CPU training.
 * Each is written as the keys that differ from its family's defaults, then validated by the schema.
 */
import type { ModelConfig } from './model.js';
import { ConfigError, nearestNames, validateModelConfig } from './schema.js';

type Partial_ = Partial<ModelConfig> & Pick<ModelConfig, 'family'>;

const QWEN3_RELEASED: Partial<ModelConfig> = {
  vocab_size: 151936, head_dim: 128, n_kv_head: 8, rope_theta: 1e6, norm_eps: 1e-6, context_length: 40960,
  qk_norm: true, init_std: 0.02,
};

const GPT2: Partial<ModelConfig> = {
  vocab_size: 50257, context_length: 1024, norm_eps: 1e-5, activation: 'gelu_tanh', ffn: 'mlp',
  attention_bias: true, mlp_bias: true, tie_embeddings: true, norm: 'layernorm', positions: 'learned',
};

const gpt2 = (hidden: number, layers: number, heads: number, ffnHidden = 4 * hidden): Partial_ => ({
  family: 'gpt2', ...GPT2, hidden_size: hidden, n_layer: layers, n_head: heads, n_kv_head: heads,
  head_dim: hidden / heads, ffn_hidden: ffnHidden,
});

const qwen3 = (hidden: number, layers: number, heads: number, ffnHidden: number, tied: boolean): Partial_ => ({
  family: 'qwen3', ...QWEN3_RELEASED, hidden_size: hidden, n_layer: layers, n_head: heads, ffn_hidden: ffnHidden,
  tie_embeddings: tied,
});

const DEFINITIONS: Record<string, { cfg: Partial_; about: string }> = {
  // Released Qwen3 dense models (config.json of Qwen/Qwen3-*).
  'qwen3-0.6b': { cfg: qwen3(1024, 28, 16, 3072, true), about: 'Qwen3-0.6B as released (596,049,920 params)' },
  'qwen3-1.7b': { cfg: qwen3(2048, 28, 16, 6144, true), about: 'Qwen3-1.7B as released' },
  'qwen3-4b': { cfg: qwen3(2560, 36, 32, 9728, true), about: 'Qwen3-4B as released' },
  'qwen3-8b': { cfg: qwen3(4096, 36, 32, 12288, false), about: 'Qwen3-8B as released (untied)' },
  // The planning document's custom sizes: Qwen3 shape, FFN 3x hidden, untied.
  'qwen3-custom-1b': { cfg: qwen3(1536, 28, 16, 4608, false), about: 'Qwen3-style ~1.3B untied (hidden 1536)' },
  'qwen3-custom-1.5b': { cfg: qwen3(2048, 28, 16, 6144, false), about: 'Qwen3-1.7B shape untied (~2.03B)' },
  'qwen3-custom-2b': { cfg: qwen3(2304, 28, 16, 6912, false), about: 'Qwen3-style ~2.4B untied (hidden 2304)' },
  // GPT-2 as released by OpenAI (Hugging Face gpt2, gpt2-medium, gpt2-large, gpt2-xl).
  gpt2: { cfg: gpt2(768, 12, 12), about: 'GPT-2 small (124M)' },
  'gpt2-medium': { cfg: gpt2(1024, 24, 16), about: 'GPT-2 medium (355M)' },
  'gpt2-large': { cfg: gpt2(1280, 36, 20), about: 'GPT-2 large (774M)' },
  'gpt2-xl': { cfg: gpt2(1600, 48, 25), about: 'GPT-2 XL (1.5B)' },
  // Comparison-table rows of the planning document (recounted in qwen3.md).
  'gpt2-1.36b': { cfg: gpt2(2304, 18, 18, 9216), about: 'comparison row: GPT-2 style, 18 x 2304, tied' },
  'llama2-1.36b': {
    cfg: {
      family: 'llama', vocab_size: 32000, hidden_size: 2304, n_layer: 18, n_head: 18, n_kv_head: 18, head_dim: 128,
      ffn_hidden: 6144, rope_theta: 1e4, norm_eps: 1e-5, context_length: 4096, tie_embeddings: false,
    },
    about: 'comparison row: LLaMA-2 style, 18 x 2304, MHA, SwiGLU 6144, untied',
  },
  'llama3-1.5b': {
    cfg: {
      family: 'llama', vocab_size: 128256, hidden_size: 2048, n_layer: 18, n_head: 16, n_kv_head: 8, head_dim: 128,
      ffn_hidden: 7168, rope_theta: 5e5, norm_eps: 1e-5, context_length: 8192, tie_embeddings: false,
    },
    about: 'comparison row: LLaMA-3 style, 18 x 2048, GQA 16/8, SwiGLU 7168, untied',
  },
  // CPU presets (Qwen3 architecture).
  'cpu-tiny': {
    cfg: {
      family: 'qwen3', vocab_size: 151936, hidden_size: 128, n_layer: 4, n_head: 4, n_kv_head: 2, head_dim: 32,
      ffn_hidden: 384, rope_theta: 1e6, norm_eps: 1e-6, context_length: 256, qk_norm: true, tie_embeddings: true,
    },
    about: 'default `lmforge train` model: Qwen3-style, real 151,936 vocab, trains in minutes on 2 cores',
  },
  'cpu-realvocab': {
    cfg: {
      family: 'qwen3', vocab_size: 151936, hidden_size: 256, n_layer: 4, n_head: 4, n_kv_head: 2, head_dim: 64,
      ffn_hidden: 768, rope_theta: 1e6, norm_eps: 1e-6, context_length: 256, qk_norm: true, tie_embeddings: true,
    },
    about: 'Qwen3-style with the real vocabulary, hidden 256',
  },
  'cpu-small': {
    cfg: {
      family: 'qwen3', vocab_size: 8192, hidden_size: 512, n_layer: 8, n_head: 8, n_kv_head: 4, head_dim: 64,
      ffn_hidden: 1536, rope_theta: 1e6, norm_eps: 1e-6, context_length: 512, qk_norm: true, tie_embeddings: false,
    },
    about: 'Qwen3-style with an 8,192-token vocabulary, hidden 512, untied',
  },
};

/** Every preset, fully resolved and validated. */
export const PRESETS: Readonly<Record<string, ModelConfig>> = Object.freeze(
  Object.fromEntries(
    Object.entries(DEFINITIONS).map(([name, d]) => [name, Object.freeze(validateModelConfig(d.cfg, `preset '${name}'`))]),
  ),
);

/** One-line description of each preset. */
export const PRESET_ABOUT: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(DEFINITIONS).map(([name, d]) => [name, d.about])),
);

/** Recommended micro-batch (sequences) and sequence length for a preset; the trainer's defaults. */
export const PRESET_BATCH: Readonly<Record<string, { batch: number; seq: number }>> = Object.freeze({
  'cpu-tiny': { batch: 8, seq: 128 },
  'cpu-realvocab': { batch: 4, seq: 256 },
  'cpu-small': { batch: 4, seq: 512 },
  gpt2: { batch: 8, seq: 1024 },
  'qwen3-0.6b': { batch: 8, seq: 4096 },
  'qwen3-custom-1b': { batch: 8, seq: 4096 },
  'qwen3-custom-1.5b': { batch: 4, seq: 4096 },
  'qwen3-custom-2b': { batch: 4, seq: 4096 },
});

export function isPreset(name: string): boolean {
  return Object.hasOwn(PRESETS, name);
}

/** A fresh (mutable) copy of a preset; unknown names list the known ones and the nearest. */
export function getPreset(name: string): ModelConfig {
  const p = PRESETS[name];
  if (!p || !Object.hasOwn(PRESETS, name)) {
    const near = nearestNames(name, Object.keys(PRESETS), 1);
    const hint = near.length ? ` Did you mean '${near[0]}'?` : '';
    throw new ConfigError(`unknown preset '${name}'.${hint} Presets: ${Object.keys(PRESETS).join(', ')}`);
  }
  return { ...p };
}
