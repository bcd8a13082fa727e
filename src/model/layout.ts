/**
 * The parameter layout: every parameter of a model as a named view into ONE flat float32 buffer.
 *
 * Names are Hugging Face names, end to end. Shapes are our internal layout, which is transformers' `nn.Linear`
 * layout ([out, in]); GPT-2's Conv1D weights are stored [in, out] on disk and are transposed on import/export
 * (`hfTransposed`). Tensors that one matrix product can serve are placed next to each other: q, k and v rows form
 * one [(H + 2K) * hd, D] matrix, gate and up rows one [2F, D] matrix, so each block needs two products, not five.
 * Gradients and AdamW moments use the same layout, so the optimizer and the gradient norm are single passes.
 */
import type { ModelConfig } from '../config/model.js';

export interface ParamSpec {
  /** Hugging Face name. */
  name: string;
  /** Internal shape (Linear weights [out, in]). */
  shape: number[];
  /** Element offset in the flat buffer. */
  offset: number;
  size: number;
  /** AdamW weight decay applies (tensors of 2 or more dimensions). */
  decay: boolean;
  /** 'normal' (std from config, or scaled for residual projections), 'ones' (norm gains) or 'zeros' (biases). */
  init: 'normal' | 'ones' | 'zeros';
  /** Residual output projection (o_proj / down_proj / c_proj): the optional scaled init applies. */
  residualProjection: boolean;
  /** Stored [in, out] in Hugging Face files (GPT-2 Conv1D). */
  hfTransposed: boolean;
}

/** Where a layer's fused matrices start (offsets into the flat buffer), plus optional pieces. */
export interface LayerOffsets {
  norm1W: number;
  norm1B: number | null;
  qkvW: number;
  qkvB: number | null;
  qNormW: number | null;
  kNormW: number | null;
  oW: number;
  oB: number | null;
  norm2W: number;
  norm2B: number | null;
  /** swiglu: gate|up rows [2F, D]; mlp: up rows [F, D]. */
  upW: number;
  upB: number | null;
  downW: number;
  downB: number | null;
}

export interface Layout {
  params: ParamSpec[];
  byName: Map<string, ParamSpec>;
  total: number;
  embed: number;
  positions: number | null;
  layers: LayerOffsets[];
  finalNormW: number | null;
  finalNormB: number | null;
  /** Offset of the head matrix [V, D]; equals `embed` when tied. */
  head: number;
}

interface Names {
  embed: string;
  positions: string;
  finalNorm: string;
  head: string;
  layer(i: number): {
    norm1: string; norm2: string; q: string; k: string; v: string; qkv: string | null; o: string;
    qNorm: string; kNorm: string; gate: string; up: string; down: string;
  };
}

function namesFor(cfg: ModelConfig): Names {
  if (cfg.family === 'gpt2') {
    return {
      embed: 'transformer.wte.weight',
      positions: 'transformer.wpe.weight',
      finalNorm: 'transformer.ln_f',
      head: 'lm_head.weight',
      layer: (i) => {
        const p = `transformer.h.${i}`;
        return {
          norm1: `${p}.ln_1`, norm2: `${p}.ln_2`, q: '', k: '', v: '', qkv: `${p}.attn.c_attn`, o: `${p}.attn.c_proj`,
          qNorm: `${p}.attn.q_norm`, kNorm: `${p}.attn.k_norm`,
          gate: `${p}.mlp.c_gate`, up: `${p}.mlp.c_fc`, down: `${p}.mlp.c_proj`,
        };
      },
    };
  }
  return {
    embed: 'model.embed_tokens.weight',
    positions: 'model.embed_positions.weight',
    finalNorm: 'model.norm',
    head: 'lm_head.weight',
    layer: (i) => {
      const p = `model.layers.${i}`;
      return {
        norm1: `${p}.input_layernorm`, norm2: `${p}.post_attention_layernorm`,
        q: `${p}.self_attn.q_proj`, k: `${p}.self_attn.k_proj`, v: `${p}.self_attn.v_proj`, qkv: null,
        o: `${p}.self_attn.o_proj`, qNorm: `${p}.self_attn.q_norm`, kNorm: `${p}.self_attn.k_norm`,
        gate: `${p}.mlp.gate_proj`, up: `${p}.mlp.up_proj`, down: `${p}.mlp.down_proj`,
      };
    },
  };
}

export function buildLayout(cfg: ModelConfig): Layout {
  // Offsets are assigned in two groups: every weight-decayed matrix first, then every vector (norm gains, biases),
  // each group in declaration order. AdamW then needs exactly two ranges, and tensors declared one after another
  // within a group (q|k|v, gate|up and their biases) stay adjacent.
  const params: ParamSpec[] = [];
  const matrices = { offset: 0, size: 0 };
  const vectors = { offset: 0, size: 0 };
  const pending: { spec: ParamSpec; group: typeof matrices }[] = [];
  const conv1d = cfg.family === 'gpt2';
  const add = (name: string, shape: number[], init: ParamSpec['init'], opts: { transposed?: boolean; residual?: boolean } = {}) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const decay = shape.length >= 2;
    const group = decay ? matrices : vectors;
    const spec: ParamSpec = {
      name, shape, offset: group.size, size, decay, init,
      residualProjection: opts.residual ?? false, hfTransposed: opts.transposed ?? false,
    };
    group.size += size;
    pending.push({ spec, group });
    return pending.length - 1;
  };
  const names = namesFor(cfg);
  const D = cfg.hidden_size;
  const hd = cfg.head_dim;
  const qDim = cfg.n_head * hd;
  const kvDim = cfg.n_kv_head * hd;
  const F = cfg.ffn_hidden;
  const layernorm = cfg.norm === 'layernorm';
  const norm = (base: string): [number, number | null] => {
    const w = add(`${base}.weight`, [D], 'ones');
    const b = layernorm ? add(`${base}.bias`, [D], 'zeros') : null;
    return [w, b];
  };

  const embed = add(names.embed, [cfg.vocab_size, D], 'normal');
  const positions = cfg.positions === 'learned' ? add(names.positions, [cfg.context_length, D], 'normal') : null;
  const layers: LayerOffsets[] = [];
  for (let i = 0; i < cfg.n_layer; i++) {
    const n = names.layer(i);
    const [norm1W, norm1B] = norm(n.norm1);
    let qkvW: number;
    let qkvB: number | null = null;
    if (n.qkv) {
      qkvW = add(`${n.qkv}.weight`, [qDim + 2 * kvDim, D], 'normal', { transposed: conv1d });
      if (cfg.attention_bias) qkvB = add(`${n.qkv}.bias`, [qDim + 2 * kvDim], 'zeros');
    } else {
      qkvW = add(`${n.q}.weight`, [qDim, D], 'normal');
      add(`${n.k}.weight`, [kvDim, D], 'normal');
      add(`${n.v}.weight`, [kvDim, D], 'normal');
      if (cfg.attention_bias) {
        qkvB = add(`${n.q}.bias`, [qDim], 'zeros');
        add(`${n.k}.bias`, [kvDim], 'zeros');
        add(`${n.v}.bias`, [kvDim], 'zeros');
      }
    }
    const qNormW = cfg.qk_norm ? add(`${n.qNorm}.weight`, [hd], 'ones') : null;
    const kNormW = cfg.qk_norm ? add(`${n.kNorm}.weight`, [hd], 'ones') : null;
    const oW = add(`${n.o}.weight`, [D, qDim], 'normal', { transposed: conv1d, residual: true });
    const oB = cfg.attention_bias ? add(`${n.o}.bias`, [D], 'zeros') : null;
    const [norm2W, norm2B] = norm(n.norm2);
    let upW: number;
    let upB: number | null = null;
    if (cfg.ffn === 'swiglu') {
      upW = add(`${n.gate}.weight`, [F, D], 'normal', { transposed: conv1d });
      add(`${n.up}.weight`, [F, D], 'normal', { transposed: conv1d });
      if (cfg.mlp_bias) {
        upB = add(`${n.gate}.bias`, [F], 'zeros');
        add(`${n.up}.bias`, [F], 'zeros');
      }
    } else {
      upW = add(`${n.up}.weight`, [F, D], 'normal', { transposed: conv1d });
      if (cfg.mlp_bias) upB = add(`${n.up}.bias`, [F], 'zeros');
    }
    const downW = add(`${n.down}.weight`, [D, F], 'normal', { transposed: conv1d, residual: true });
    const downB = cfg.mlp_bias ? add(`${n.down}.bias`, [D], 'zeros') : null;
    layers.push({ norm1W, norm1B, qkvW, qkvB, qNormW, kNormW, oW, oB, norm2W, norm2B, upW, upB, downW, downB });
  }
  // Post-norm blocks end in a norm already; pre-norm stacks need a final one.
  let finalNormW: number | null = null;
  let finalNormB: number | null = null;
  if (cfg.norm_position === 'pre') [finalNormW, finalNormB] = norm(names.finalNorm);
  const head = cfg.tie_embeddings ? embed : add(names.head, [cfg.vocab_size, D], 'normal');
  vectors.offset = matrices.size;
  for (const { spec, group } of pending) {
    spec.offset += group.offset;
    params.push(spec);
  }
  params.sort((a, b) => a.offset - b.offset);
  // `add` returned indices into `pending`; turn them into offsets.
  const off = (i: number): number => pending[i]!.spec.offset;
  const offN = (i: number | null): number | null => (i === null ? null : off(i));
  return {
    params,
    byName: new Map(params.map((p) => [p.name, p])),
    total: matrices.size + vectors.size,
    embed: off(embed),
    positions: offN(positions),
    layers: layers.map((L) => ({
      norm1W: off(L.norm1W), norm1B: offN(L.norm1B), qkvW: off(L.qkvW), qkvB: offN(L.qkvB),
      qNormW: offN(L.qNormW), kNormW: offN(L.kNormW), oW: off(L.oW), oB: offN(L.oB),
      norm2W: off(L.norm2W), norm2B: offN(L.norm2B), upW: off(L.upW), upB: offN(L.upB),
      downW: off(L.downW), downB: offN(L.downB),
    })),
    finalNormW: offN(finalNormW),
    finalNormB: offN(finalNormB),
    head: off(head),
  };
}

/** Contiguous runs of parameters that share a decay setting: the optimizer's ranges. */
export function decayRanges(layout: Layout): { offset: number; size: number; decay: boolean }[] {
  const out: { offset: number; size: number; decay: boolean }[] = [];
  for (const p of layout.params) {
    const last = out[out.length - 1];
    if (last && last.decay === p.decay && last.offset + last.size === p.offset) last.size += p.size;
    else out.push({ offset: p.offset, size: p.size, decay: p.decay });
  }
  return out;
}
