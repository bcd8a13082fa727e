/**
 * Mapping between Hugging Face config.json (model_type qwen3, llama, gpt2; transformers 4 and 5 spellings) and
 * our ModelConfig. Reading applies the transformers class defaults to absent keys, as from_pretrained would, and
 * refuses settings our engine does not implement (sliding windows, RoPE scaling, ...) rather than ignore them.
 */
import type { Activation, Family, ModelConfig } from './model.js';
import { ConfigError, throwProblems, validateModelConfig } from './schema.js';

export const SUPPORTED_MODEL_TYPES: readonly Family[] = ['qwen3', 'llama', 'gpt2'];

type Json = Record<string, unknown>;

/** Reads HF keys with the class defaults, collecting problems instead of stopping at the first. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly j: Json, private readonly source: string) {}

  has(k: string): boolean {
    return this.j[k] !== undefined && this.j[k] !== null;
  }
  int(k: string, def: number): number {
    if (!this.has(k)) return def;
    const v = this.j[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      this.problems.push(`${this.source}: '${k}' must be a whole number, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }
  num(k: string, def: number): number {
    if (!this.has(k)) return def;
    const v = this.j[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.problems.push(`${this.source}: '${k}' must be a number, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }
  bool(k: string, def: boolean): boolean {
    if (!this.has(k)) return def;
    const v = this.j[k];
    if (typeof v !== 'boolean') {
      this.problems.push(`${this.source}: '${k}' must be true or false, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }
  str(k: string, def: string): string {
    if (!this.has(k)) return def;
    const v = this.j[k];
    if (typeof v !== 'string') {
      this.problems.push(`${this.source}: '${k}' must be a string, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }
  /** Records an unsupported setting when `bad` holds. */
  refuse(bad: boolean, what: string): void {
    if (bad) this.problems.push(`${this.source}: ${what}`);
  }
  raw(k: string): unknown {
    return this.j[k];
  }
}

const HF_ACTIVATIONS: Record<string, Activation> = {
  silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh',
};

function activation(r: Reader, key: string, def: string): Activation {
  const name = r.str(key, def);
  const a = HF_ACTIVATIONS[name];
  if (!a) {
    r.refuse(true, `${key} '${name}' is not supported; supported: ${Object.keys(HF_ACTIVATIONS).join(', ')}`);
    return 'silu';
  }
  return a;
}

/** RoPE base from transformers 5 `rope_parameters` or transformers 4 `rope_theta` / `rope_scaling`. */
function ropeTheta(r: Reader, def: number): number {
  const params = r.raw('rope_parameters');
  let theta: number | undefined;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) {
      r.refuse(true, `'rope_parameters' must be an object like {"rope_theta": 1000000, "rope_type": "default"}`);
    } else {
      const p = params as Json;
      const type = p['rope_type'] ?? p['type'] ?? 'default';
      r.refuse(type !== 'default', `rope_parameters.rope_type '${String(type)}' (RoPE scaling) is not supported; only 'default' RoPE is`);
      const t = p['rope_theta'];
      if (typeof t === 'number' && Number.isFinite(t)) theta = t;
      else r.refuse(t !== undefined && t !== null, `rope_parameters.rope_theta must be a number, got ${JSON.stringify(t)}`);
    }
  }
  const scaling = r.raw('rope_scaling');
  if (scaling !== undefined && scaling !== null) {
    // An object names its type; anything else (a bare "linear") is a scaling setting too, and refused as one.
    const type = typeof scaling === 'object' && !Array.isArray(scaling) ? ((scaling as Json)['rope_type'] ?? (scaling as Json)['type']) : scaling;
    r.refuse(type !== 'default', `rope_scaling of type '${String(type)}' is not supported; only plain RoPE is`);
  }
  const flat = r.has('rope_theta') ? r.num('rope_theta', def) : undefined;
  if (theta !== undefined && flat !== undefined && theta !== flat)
    r.refuse(true, `rope_theta ${flat} disagrees with rope_parameters.rope_theta ${theta}; make them equal`);
  return theta ?? flat ?? def;
}

function rotaryFamily(r: Reader, family: 'qwen3' | 'llama'): Partial<ModelConfig> {
  const q = family === 'qwen3';
  const hidden = r.int('hidden_size', 4096);
  const heads = r.int('num_attention_heads', 32);
  const layers = r.int('num_hidden_layers', 32);
  // Qwen3Config defaults head_dim to 128; LlamaConfig to hidden_size / num_attention_heads.
  const headDim = r.int('head_dim', q ? 128 : Math.floor(hidden / Math.max(heads, 1)));
  const sliding = r.bool('use_sliding_window', false);
  r.refuse(sliding, `use_sliding_window is true: sliding-window attention is not supported; set it to false`);
  const layerTypes = r.raw('layer_types');
  if (Array.isArray(layerTypes)) {
    const other = layerTypes.find((t) => t !== 'full_attention');
    r.refuse(other !== undefined, `layer_types contains '${String(other)}': only full attention is supported`);
  }
  return {
    family,
    vocab_size: r.int('vocab_size', q ? 151936 : 32000),
    hidden_size: hidden,
    n_layer: layers,
    n_head: heads,
    n_kv_head: r.int('num_key_value_heads', heads),
    head_dim: headDim,
    ffn: 'swiglu',
    ffn_hidden: r.int('intermediate_size', q ? 22016 : 11008),
    activation: activation(r, 'hidden_act', 'silu'),
    norm: 'rmsnorm',
    norm_position: 'pre',
    norm_eps: r.num('rms_norm_eps', 1e-6),
    positions: 'rope',
    rope_theta: ropeTheta(r, 10000),
    context_length: r.int('max_position_embeddings', q ? 32768 : 2048),
    qk_norm: q,
    attention_bias: r.bool('attention_bias', false),
    mlp_bias: q ? false : r.bool('mlp_bias', false),
    tie_embeddings: r.bool('tie_word_embeddings', false),
    init_std: r.num('initializer_range', 0.02),
  };
}

function gpt2Family(r: Reader): Partial<ModelConfig> {
  const hidden = r.int('n_embd', 768);
  const heads = r.int('n_head', 12);
  r.refuse(!r.bool('scale_attn_weights', true), 'scale_attn_weights false (unscaled attention) is not supported');
  r.refuse(r.bool('scale_attn_by_inverse_layer_idx', false), 'scale_attn_by_inverse_layer_idx true is not supported');
  r.refuse(r.bool('add_cross_attention', false), 'add_cross_attention true (encoder-decoder) is not supported');
  const inner = r.has('n_inner') ? r.int('n_inner', 4 * hidden) : 4 * hidden;
  return {
    family: 'gpt2',
    vocab_size: r.int('vocab_size', 50257),
    hidden_size: hidden,
    n_layer: r.int('n_layer', 12),
    n_head: heads,
    n_kv_head: heads,
    head_dim: Math.floor(hidden / Math.max(heads, 1)),
    ffn: 'mlp',
    ffn_hidden: inner,
    activation: activation(r, 'activation_function', 'gelu_new'),
    norm: 'layernorm',
    norm_position: 'pre',
    norm_eps: r.num('layer_norm_epsilon', 1e-5),
    positions: 'learned',
    rope_theta: 10000,
    context_length: r.int('n_positions', 1024),
    qk_norm: false,
    attention_bias: true,
    mlp_bias: true,
    tie_embeddings: r.bool('tie_word_embeddings', true),
    init_std: r.num('initializer_range', 0.02),
  };
}

/** A Hugging Face config.json object to a validated ModelConfig. */
export function fromHfConfig(json: unknown, source: string): ModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ConfigError(`${source}: a Hugging Face config must be a JSON object`);
  const j = json as Json;
  const type = j['model_type'];
  if (typeof type !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(type))
    throw new ConfigError(
      `${source}: model_type ${JSON.stringify(type)} is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}` +
      (type === 'qwen2' ? ' (Qwen2 has attention biases and no QK-norm: not the same as qwen3)' : ''));
  const r = new Reader(j, source);
  const cfg = type === 'gpt2' ? gpt2Family(r) : rotaryFamily(r, type as 'qwen3' | 'llama');
  if (type === 'gpt2') {
    const hidden = cfg.hidden_size!, heads = cfg.n_head!;
    r.refuse(heads > 0 && hidden % heads !== 0, `n_embd ${hidden} is not divisible by n_head ${heads}`);
  }
  throwProblems(source, r.problems);
  return validateModelConfig(cfg, source);
}

// ---------------------------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------------------------

/** Reasons `cfg` cannot be written as a Hugging Face `family` model (empty when it can), each with a fix. */
export function exportProblems(cfg: ModelConfig, family: Family = cfg.family): string[] {
  const p: string[] = [];
  const name = { qwen3: 'Qwen3', llama: 'Llama', gpt2: 'GPT-2' }[family];
  const need = (ok: boolean, msg: string) => { if (!ok) p.push(`${name} export: ${msg}`); };
  need(cfg.norm_position === 'pre', "norm_position 'post' has no Hugging Face equivalent; train with norm_position 'pre'");
  if (family === 'gpt2') {
    need(cfg.norm === 'layernorm', `norm '${cfg.norm}' but GPT-2 uses LayerNorm; use family llama or qwen3`);
    need(cfg.positions === 'learned', `positions '${cfg.positions}' but GPT-2 has learned positions; use family llama or qwen3 for RoPE`);
    need(cfg.ffn === 'mlp', `ffn '${cfg.ffn}' but GPT-2 has a plain MLP; use family llama for a gated FFN`);
    need(!cfg.qk_norm, 'qk_norm is not part of GPT-2; use family qwen3');
    need(cfg.attention_bias && cfg.mlp_bias, 'GPT-2 projections always have biases; set attention_bias and mlp_bias true');
    need(cfg.n_kv_head === cfg.n_head, `n_kv_head ${cfg.n_kv_head} != n_head ${cfg.n_head}: GPT-2 has no GQA; use family llama`);
    need(cfg.head_dim * cfg.n_head === cfg.hidden_size,
      `head_dim ${cfg.head_dim} x n_head ${cfg.n_head} != hidden_size ${cfg.hidden_size}: GPT-2 fixes head_dim = hidden_size / n_head`);
  } else {
    need(cfg.norm === 'rmsnorm', `norm '${cfg.norm}' but ${name} uses RMSNorm; use family gpt2 for LayerNorm`);
    need(cfg.positions === 'rope', `positions '${cfg.positions}' but ${name} uses RoPE; use family gpt2 for learned positions`);
    need(cfg.ffn === 'swiglu', `ffn '${cfg.ffn}' but ${name} has a gated (gate/up/down) FFN; use family gpt2 for a plain MLP`);
    if (family === 'qwen3') {
      need(cfg.qk_norm, 'qk_norm is false but Qwen3 always has QK-norm; export as llama or set qk_norm=true');
      need(!cfg.mlp_bias, 'Qwen3 has no MLP biases; export as llama (which has mlp_bias) or set mlp_bias=false');
    } else {
      need(!cfg.qk_norm, 'qk_norm is true but Llama has no QK-norm; export as qwen3');
      // transformers 5's LlamaConfig refuses this combination even with head_dim set.
      need(cfg.hidden_size % cfg.n_head === 0, `hidden_size ${cfg.hidden_size} is not divisible by n_head ${cfg.n_head}, which LlamaConfig rejects; export as qwen3`);
    }
  }
  return p;
}

/** Throws a ConfigError listing every reason `cfg` cannot be exported as `family`. */
export function checkExportable(cfg: ModelConfig, family: Family = cfg.family): void {
  throwProblems(`export as ${family}`, exportProblems(cfg, family));
}

export interface HfExportOptions {
  /** Family to write (default cfg.family). */
  family?: Family;
  /** Stored weight dtype named in config.json. */
  dtype?: 'float32' | 'bfloat16';
  /** Special token ids; default: the Qwen3 tokenizer's when vocab_size fits them, else the family's defaults. */
  bosTokenId?: number | null;
  eosTokenId?: number | null;
}

/** Default bos/eos: Qwen3 tokenizer ids for its vocabulary, GPT-2's for 50257, Llama's 1/2, null when out of range. */
function specialIds(cfg: ModelConfig, family: Family, o: HfExportOptions): { bos: number | null; eos: number | null } {
  let bos: number | null, eos: number | null;
  if (cfg.vocab_size >= 151646 || family === 'qwen3') [bos, eos] = [151643, 151645];
  else if (family === 'gpt2' || cfg.vocab_size === 50257) [bos, eos] = [50256, 50256];
  else [bos, eos] = [1, 2];
  const fit = (id: number | null) => (id !== null && id < cfg.vocab_size ? id : null);
  return {
    bos: o.bosTokenId !== undefined ? o.bosTokenId : fit(bos),
    eos: o.eosTokenId !== undefined ? o.eosTokenId : fit(eos),
  };
}

const TO_HF_ACT: Record<Activation, string> = { silu: 'silu', gelu: 'gelu', gelu_tanh: 'gelu_pytorch_tanh' };

/** A config.json object that transformers (5, and 4 through the duplicated keys) loads with AutoModelForCausalLM. */
export function toHfConfig(cfg: ModelConfig, o: HfExportOptions = {}): Record<string, unknown> {
  const family = o.family ?? cfg.family;
  checkExportable(cfg, family);
  const dtype = o.dtype ?? 'float32';
  const { bos, eos } = specialIds(cfg, family, o);
  if (family === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: cfg.vocab_size,
      n_positions: cfg.context_length,
      n_embd: cfg.hidden_size,
      n_layer: cfg.n_layer,
      n_head: cfg.n_head,
      n_inner: cfg.ffn_hidden,
      activation_function: cfg.activation === 'gelu_tanh' ? 'gelu_new' : cfg.activation,
      layer_norm_epsilon: cfg.norm_eps,
      initializer_range: cfg.init_std,
      resid_pdrop: 0.0,
      embd_pdrop: 0.0,
      attn_pdrop: 0.0,
      scale_attn_weights: true,
      scale_attn_by_inverse_layer_idx: false,
      reorder_and_upcast_attn: false,
      add_cross_attention: false,
      tie_word_embeddings: cfg.tie_embeddings,
      bos_token_id: bos,
      eos_token_id: eos,
      pad_token_id: null,
      use_cache: true,
      dtype,
      torch_dtype: dtype,
    };
  }
  const common = {
    architectures: [family === 'qwen3' ? 'Qwen3ForCausalLM' : 'LlamaForCausalLM'],
    model_type: family,
    vocab_size: cfg.vocab_size,
    hidden_size: cfg.hidden_size,
    intermediate_size: cfg.ffn_hidden,
    num_hidden_layers: cfg.n_layer,
    num_attention_heads: cfg.n_head,
    num_key_value_heads: cfg.n_kv_head,
    head_dim: cfg.head_dim,
    hidden_act: TO_HF_ACT[cfg.activation],
    max_position_embeddings: cfg.context_length,
    initializer_range: cfg.init_std,
    rms_norm_eps: cfg.norm_eps,
    // transformers 5 reads rope_parameters; 4.x reads rope_theta.
    rope_theta: cfg.rope_theta,
    rope_parameters: { rope_theta: cfg.rope_theta, rope_type: 'default' },
    attention_bias: cfg.attention_bias,
    attention_dropout: 0.0,
    tie_word_embeddings: cfg.tie_embeddings,
    bos_token_id: bos,
    eos_token_id: eos,
    pad_token_id: null,
    use_cache: true,
    dtype,
    torch_dtype: dtype,
  };
  if (family === 'qwen3') {
    return {
      ...common,
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: cfg.n_layer,
      layer_types: Array.from({ length: cfg.n_layer }, () => 'full_attention'),
    };
  }
  return { ...common, mlp_bias: cfg.mlp_bias, pretraining_tp: 1 };
}
