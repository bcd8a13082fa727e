/**
 * Exact parameter counts (as transformers' modules have them), training FLOPs per token and the memory held by
 * weights, gradients and AdamW state, all from a ModelConfig alone.
 */
import type { ModelConfig } from '../config/model.js';

export interface ParamCounts {
  /** Token embedding (vocab x hidden). */
  embedding: number;
  /** Learned position table (context x hidden); 0 with RoPE. */
  positions: number;
  /** q/k/v/o projections and their biases, all layers. */
  attention: number;
  /** Feed-forward projections and biases, all layers. */
  mlp: number;
  /** Every norm weight (and LayerNorm bias): per block, QK-norm, final norm. */
  norms: number;
  /** Separate lm_head matrix; 0 when tied to the embedding. */
  head: number;
  total: number;
  /** total minus token and position embeddings (a separate lm_head counts). */
  nonEmbedding: number;
}

/** Parameters of one block's attention (projections + biases, not the QK-norm weights). */
export function attentionParamsPerLayer(c: ModelConfig): number {
  const q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim, h = c.hidden_size;
  const weights = h * q + 2 * h * kv + q * h;
  const bias = c.attention_bias ? q + 2 * kv + h : 0;
  return weights + bias;
}

/** Parameters of one block's feed-forward. */
export function mlpParamsPerLayer(c: ModelConfig): number {
  const h = c.hidden_size, f = c.ffn_hidden;
  if (c.ffn === 'swiglu') return 3 * h * f + (c.mlp_bias ? 2 * f + h : 0);
  return 2 * h * f + (c.mlp_bias ? f + h : 0);
}

function normParams(c: ModelConfig, width: number): number {
  return c.norm === 'layernorm' ? 2 * width : width;
}

export function countParams(c: ModelConfig): ParamCounts {
  const embedding = c.vocab_size * c.hidden_size;
  const positions = c.positions === 'learned' ? c.context_length * c.hidden_size : 0;
  const attention = c.n_layer * attentionParamsPerLayer(c);
  const mlp = c.n_layer * mlpParamsPerLayer(c);
  // Two norms per block, QK-norm (always RMSNorm over head_dim, weight only) and the final norm.
  const norms =
    c.n_layer * (2 * normParams(c, c.hidden_size) + (c.qk_norm ? 2 * c.head_dim : 0)) + normParams(c, c.hidden_size);
  const head = c.tie_embeddings ? 0 : c.vocab_size * c.hidden_size;
  const total = embedding + positions + attention + mlp + norms + head;
  return { embedding, positions, attention, mlp, norms, head, total, nonEmbedding: total - embedding - positions };
}

export interface FlopsPerToken {
  /** Training FLOPs per token (forward + backward). */
  total: number;
  /** 6 x matmulParams. */
  matmul: number;
  /** 12 x n_layer x n_head x head_dim x seq. */
  attention: number;
  /** Weights that take part in a matrix product per token: projections, FFN and the lm_head (even when tied). */
  matmulParams: number;
  /** The formula, for printing. */
  formula: string;
}

/**
 * Training FLOPs per token, the PaLM (Chowdhery et al. 2022, appendix B) convention: 6 x N + 12 x L x H x Q x T,
 * where N counts every weight used in a matrix product (attention and FFN projections plus the lm_head, tied or not;
 * not embeddings lookups, norms or biases), L layers, H query heads, Q head_dim and T the sequence length. The
 * attention term counts the full (non-causal) QK^T and AV products, forward and backward, as PaLM's MFU does.
 */
export function flopsPerToken(c: ModelConfig, seq: number): FlopsPerToken {
  const q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim, h = c.hidden_size;
  const perLayer = h * q + 2 * h * kv + q * h + (c.ffn === 'swiglu' ? 3 : 2) * h * c.ffn_hidden;
  const matmulParams = c.n_layer * perLayer + c.vocab_size * h;
  const matmul = 6 * matmulParams;
  const attention = 12 * c.n_layer * c.n_head * c.head_dim * seq;
  const formula =
    `6 x N_matmul + 12 x n_layer x n_head x head_dim x seq = 6 x ${matmulParams} + 12 x ${c.n_layer} x ${c.n_head} x ` +
    `${c.head_dim} x ${seq} (PaLM appendix B; N_matmul = projection, FFN and lm_head weights, tied or not)`;
  return { total: matmul + attention, matmul, attention, matmulParams, formula };
}

export interface MemoryBytesPerParam {
  /** Working copy of the weights (4 fp32, 2 bf16). */
  weightBytes: number;
  gradBytes: number;
  /** AdamW state: two moments, plus an fp32 master copy in mixed precision. */
  optimizerBytes: number;
}

/** Plain fp32 training: fp32 weights, fp32 gradients, fp32 AdamW moments (m, v). */
export const MEMORY_FP32: MemoryBytesPerParam = { weightBytes: 4, gradBytes: 4, optimizerBytes: 8 };
/** bf16 mixed precision: bf16 weights and gradients, fp32 master weights + fp32 m, v (ZeRO paper's 16 bytes). */
export const MEMORY_BF16_MIXED: MemoryBytesPerParam = { weightBytes: 2, gradBytes: 2, optimizerBytes: 12 };

export interface TrainingMemory {
  params: number;
  weights: number;
  grads: number;
  optimizer: number;
  /** weights + grads + optimizer, in bytes; activations and workspace are not included. */
  total: number;
}

export function trainingMemory(c: ModelConfig, bytes: MemoryBytesPerParam = MEMORY_FP32): TrainingMemory {
  const params = countParams(c).total;
  const weights = params * bytes.weightBytes, grads = params * bytes.gradBytes, optimizer = params * bytes.optimizerBytes;
  return { params, weights, grads, optimizer, total: weights + grads + optimizer };
}
