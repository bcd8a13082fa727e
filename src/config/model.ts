/**
 * The model configuration: one flat, snake_case record that names every architectural choice.
 * `family` picks the Hugging Face layout used for import/export (parameter names, config.json class).
 * Validation, defaults and presets live beside this file (schema.ts, presets.ts).
 */
export type Family = 'qwen3' | 'llama' | 'gpt2';
export type NormKind = 'rmsnorm' | 'layernorm';
export type NormPosition = 'pre' | 'post';
export type FfnKind = 'swiglu' | 'mlp';
export type Activation = 'silu' | 'gelu' | 'gelu_tanh';
export type PositionKind = 'rope' | 'learned';

export interface ModelConfig {
  family: Family;
  vocab_size: number;
  hidden_size: number;
  n_layer: number;
  n_head: number;
  /** Key/value heads: n_head for MHA, fewer for GQA, 1 for MQA. Must divide n_head. */
  n_kv_head: number;
  /** Per-head width; independent of hidden_size / n_head (Qwen3-0.6B: 1024 / 16 = 64 but head_dim 128). */
  head_dim: number;
  ffn: FfnKind;
  ffn_hidden: number;
  activation: Activation;
  norm: NormKind;
  norm_position: NormPosition;
  norm_eps: number;
  positions: PositionKind;
  /** RoPE base; used when positions = rope. */
  rope_theta: number;
  /** Maximum sequence length (and the learned-position table's rows). */
  context_length: number;
  /** RMSNorm over head_dim on every query and key head, before RoPE (Qwen3). */
  qk_norm: boolean;
  /** Bias on the q/k/v and output projections. */
  attention_bias: boolean;
  /** Bias on the MLP projections. */
  mlp_bias: boolean;
  /** lm_head shares the token embedding. */
  tie_embeddings: boolean;
  /** Std of the normal initialisation of weight matrices and embeddings. */
  init_std: number;
}
