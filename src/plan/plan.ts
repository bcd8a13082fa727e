/**
 * Feasibility arithmetic for a pretraining run: FLOP budget, tokens over an MFU range, Chinchilla multiple, time
 * for a token target, and memory per GPU under plain data parallel, ZeRO-1 and fully sharded (ZeRO-3 / FSDP)
 * training. Every formula is in docs/planning.md; the numbers here are what `lmforge plan` prints.
 */
import type { ModelConfig } from '../config/model.js';
import { countParams, flopsPerToken, attentionParamsPerLayer, mlpParamsPerLayer } from '../model/count.js';
import type { DeviceSpec } from './devices.js';
import { headChunkRows, headScratchBytes } from './head.js';

export interface PlanInput {
  /** Name shown in the report (preset or file). */
  modelName: string;
  model: ModelConfig;
  gpus: number;
  /** The device, with any user override of peak or memory already applied. */
  gpu: DeviceSpec;
  hours: number;
  /** Model FLOPs utilisation values to tabulate, each in (0, 1]. */
  mfu: number[];
  /** Token target; default 20 x params (Chinchilla). */
  tokens?: number;
  seq: number;
  microBatch: number;
  /** Bytes per gradient element: 2 (bf16) or 4 (fp32). */
  gradBytes: 2 | 4;
}

export interface MfuRow {
  mfu: number;
  /** Cluster throughput: gpus x peak x mfu / flops_per_token. */
  tokensPerS: number;
  /** Tokens trainable in the time budget: budget x mfu / flops_per_token. */
  tokens: number;
  /** tokens / (20 x params). */
  chinchilla: number;
  /** Hours to train the token target at this MFU. */
  hoursForTarget: number;
}

export type SchemeName = 'ddp' | 'zero1' | 'zero3';

export interface SchemeMemory {
  scheme: SchemeName;
  label: string;
  /** bf16 working weights (2 B/param), divided by N under ZeRO-3. */
  weights: number;
  /** fp32 master weights (4 B/param), divided by N under ZeRO-1 and ZeRO-3. */
  master: number;
  /** Gradients (2 or 4 B/param), divided by N under ZeRO-3. */
  grads: number;
  /** AdamW m and v, fp32 (8 B/param), divided by N under ZeRO-1 and ZeRO-3. */
  optimizer: number;
  /** ZeRO-3 only: the unsharded unit being computed plus the one prefetched (bf16), and its full gradient. */
  gathered: number;
  /** Activations saved for the backward pass at the micro-batch and sequence length. */
  activations: number;
  total: number;
  fits: boolean;
  /** Largest micro-batch whose total fits the GPU's memory (0: not even one sequence). */
  maxMicroBatch: number;
}

export interface ActivationBreakdown {
  /** Bytes saved per token per layer (bf16 tensors plus fp32 normalisation and softmax statistics). */
  perTokenPerLayer: number;
  /** bf16 elements per token per layer, for the formula. */
  bf16ElementsPerLayer: number;
  /** fp32 values per token per layer. */
  fp32ValuesPerLayer: number;
  /** Final norm's input and output (bf16) and its statistic, per token. */
  perTokenFinalNorm: number;
  /** What the chunked head holds at once (bf16 logits chunk, its inputs, row losses; src/plan/head.ts). */
  head: number;
  /** Everything per token: layers x perTokenPerLayer + final norm. */
  perToken: number;
  /** perToken x micro-batch x seq + head. */
  total: number;
  formula: string;
}

export interface Plan {
  input: PlanInput;
  params: number;
  flopsPerToken: number;
  flopsFormula: string;
  /** gpus x peak x hours x 3600. */
  flopBudget: number;
  targetTokens: number;
  rows: MfuRow[];
  activations: ActivationBreakdown;
  memory: SchemeMemory[];
}

export class PlanError extends Error {}

/**
 * Activation memory per token for this architecture without recomputation, bf16 tensors, flash attention (no
 * seq x seq scores are kept; only the output and a per-head log-sum-exp). Per layer, the tensors the backward
 * pass reads:
 *   attention half: norm input (h), norm output = q/k/v input (h), q, k, v after RoPE (Hq.d + 2 Hkv.d),
 *                   q and k before QK-norm when qk_norm (Hq*d + Hkv*d), attention output = o_proj input (Hq.d)
 *   MLP half:       norm input (h), norm output (h), then SwiGLU: gate, up, silu(gate).up (3f)
 *                                                       or GELU MLP: pre-activation, activation (2f)
 *   fp32 stats:     log-sum-exp per query head (Hq), one (RMSNorm) or two (LayerNorm) per norm: 2 block norms,
 *                   plus one per head for QK-norm (Hq + Hkv)
 * So bf16 elements = 4h + (2 + [qk_norm]) (Hq*d + Hkv*d) + {3f | 2f}, and bytes = 2 x that + 4 x fp32 values.
 */
export function activationBytes(c: ModelConfig, microBatch: number, seq: number): ActivationBreakdown {
  const h = c.hidden_size, qd = c.n_head * c.head_dim, kvd = c.n_kv_head * c.head_dim, f = c.ffn_hidden;
  const qk = c.qk_norm ? 1 : 0;
  const ffnElems = c.ffn === 'swiglu' ? 3 * f : 2 * f;
  const bf16ElementsPerLayer = 4 * h + (2 + qk) * (qd + kvd) + ffnElems;
  const statsPerNorm = c.norm === 'layernorm' ? 2 : 1;
  const fp32ValuesPerLayer = c.n_head + 2 * statsPerNorm + qk * (c.n_head + c.n_kv_head);
  const perTokenPerLayer = 2 * bf16ElementsPerLayer + 4 * fp32ValuesPerLayer;
  const perTokenFinalNorm = 2 * 2 * h + 4 * statsPerNorm;
  const perToken = c.n_layer * perTokenPerLayer + perTokenFinalNorm;
  const tokens = microBatch * seq;
  const head = headScratchBytes(c.vocab_size, h, tokens);
  const formula =
    `per token: n_layer x [2 B x (4h + ${2 + qk}(Hq*d + Hkv*d) + ${c.ffn === 'swiglu' ? '3f' : '2f'}) + 4 B x ${fp32ValuesPerLayer}]` +
    ` + final norm 2 B x 2h + 4 B x ${statsPerNorm}` +
    ` = ${c.n_layer} x ${perTokenPerLayer} + ${perTokenFinalNorm} = ${perToken} B;` +
    ` head: bf16 logits chunk of ${headChunkRows(c.vocab_size, tokens)} rows = ${head} B`;
  return {
    perTokenPerLayer,
    bf16ElementsPerLayer,
    fp32ValuesPerLayer,
    perTokenFinalNorm,
    head,
    perToken,
    total: perToken * tokens + head,
    formula,
  };
}

/** Parameters of the largest unit FSDP gathers at once: one block, or the embedding / lm_head matrix. */
export function largestShardUnit(c: ModelConfig): number {
  const counts = countParams(c);
  const normsPerBlock = (c.norm === 'layernorm' ? 4 : 2) * c.hidden_size + (c.qk_norm ? 2 * c.head_dim : 0);
  const block = attentionParamsPerLayer(c) + mlpParamsPerLayer(c) + normsPerBlock;
  return Math.max(block, counts.embedding + counts.positions, counts.head);
}

function check(input: PlanInput): void {
  const bad = (m: string): never => {
    throw new PlanError(`plan: ${m}`);
  };
  if (!(Number.isInteger(input.gpus) && input.gpus >= 1)) bad(`--gpus must be a whole number >= 1, got ${input.gpus}`);
  if (!(input.hours > 0 && Number.isFinite(input.hours))) bad(`--hours must be a positive number, got ${input.hours}`);
  if (input.mfu.length === 0) bad('--mfu needs at least one value, e.g. --mfu 0.3,0.5');
  for (const m of input.mfu) if (!(m > 0 && m <= 1)) bad(`--mfu values are fractions in (0, 1], got ${m} (40% is 0.4)`);
  if (!(Number.isInteger(input.seq) && input.seq >= 1)) bad(`--seq must be a whole number >= 1, got ${input.seq}`);
  if (input.seq > input.model.context_length)
    bad(`--seq ${input.seq} exceeds the model's context_length ${input.model.context_length}`);
  if (!(Number.isInteger(input.microBatch) && input.microBatch >= 1))
    bad(`--micro-batch must be a whole number >= 1, got ${input.microBatch}`);
  if (input.tokens !== undefined && !(input.tokens > 0)) bad(`--tokens must be positive, got ${input.tokens}`);
  if (!(input.gpu.peakFlops > 0)) bad(`the GPU peak must be positive, got ${input.gpu.peakFlops}`);
  if (!(input.gpu.memoryBytes > 0)) bad(`the GPU memory must be positive, got ${input.gpu.memoryBytes}`);
}

export function plan(input: PlanInput): Plan {
  check(input);
  const c = input.model;
  const P = countParams(c).total;
  const fpt = flopsPerToken(c, input.seq);
  const N = input.gpus;
  const peak = input.gpu.peakFlops;
  const flopBudget = N * peak * input.hours * 3600;
  const targetTokens = input.tokens ?? 20 * P;
  const rows: MfuRow[] = input.mfu.map((m) => ({
    mfu: m,
    tokensPerS: (N * peak * m) / fpt.total,
    tokens: (flopBudget * m) / fpt.total,
    chinchilla: (flopBudget * m) / fpt.total / (20 * P),
    hoursForTarget: (targetTokens * fpt.total) / (N * peak * m) / 3600,
  }));

  const act = activationBytes(c, input.microBatch, input.seq);
  const perSequence = act.perToken * input.seq;
  const g = input.gradBytes;
  const unit = largestShardUnit(c);
  const mem = input.gpu.memoryBytes;
  const scheme = (
    name: SchemeName,
    label: string,
    s: { weights: number; master: number; grads: number; optimizer: number; gathered: number },
  ): SchemeMemory => {
    const states = s.weights + s.master + s.grads + s.optimizer + s.gathered;
    const total = states + act.total;
    return {
      scheme: name,
      label,
      ...s,
      activations: act.total,
      total,
      fits: total <= mem,
      maxMicroBatch: Math.max(0, Math.floor((mem - states - act.head) / perSequence)),
    };
  };
  const memory = [
    scheme('ddp', 'data parallel', { weights: 2 * P, master: 4 * P, grads: g * P, optimizer: 8 * P, gathered: 0 }),
    scheme('zero1', 'ZeRO-1', { weights: 2 * P, master: (4 * P) / N, grads: g * P, optimizer: (8 * P) / N, gathered: 0 }),
    scheme('zero3', 'ZeRO-3 / FSDP', {
      weights: (2 * P) / N,
      master: (4 * P) / N,
      grads: (g * P) / N,
      optimizer: (8 * P) / N,
      // Current + prefetched unit in bf16, and the current unit's full gradient before its reduce-scatter.
      gathered: N > 1 ? unit * (2 * 2 + g) : 0,
    }),
  ];
  return { input, params: P, flopsPerToken: fpt.total, flopsFormula: fpt.formula, flopBudget, targetTokens, rows, activations: act, memory };
}

// ---------------------------------------------------------------------------------------------------------------
// Text output

/** 1.234e21 -> '1.234e21'. */
const sci = (x: number, digits = 3): string => x.toExponential(digits).replace('e+', 'e');

/** Token counts: 11.9B, 596M, 1.2T. */
export function formatTokens(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e12) return `${(x / 1e12).toFixed(2)}T`;
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}

export function formatHours(h: number): string {
  if (h < 1) return `${(h * 60).toFixed(1)} min`;
  if (h < 48) return `${h.toFixed(1)} h`;
  return `${h.toFixed(0)} h (${(h / 24).toFixed(1)} days)`;
}

const gb = (bytes: number): string => (bytes / 1e9).toFixed(2);

export function formatPlan(p: Plan): string {
  const i = p.input;
  const L: string[] = [];
  L.push(
    `${i.modelName}: ${p.params.toLocaleString('en-US')} parameters; ${i.gpus} x ${i.gpu.name} (${i.gpu.about}, ` +
      `dense bf16 ${sci(i.gpu.peakFlops, 3)} FLOP/s, ${(i.gpu.memoryBytes / 1e9).toFixed(0)} GB) for ${i.hours} h`,
  );
  L.push('');
  L.push(`FLOP budget       ${i.gpus} x ${sci(i.gpu.peakFlops)} FLOP/s x ${i.hours} h x 3600 s = ${sci(p.flopBudget)} FLOP`);
  L.push(`FLOPs per token   ${sci(p.flopsPerToken)} at seq ${i.seq}: ${p.flopsFormula}`);
  L.push(
    `Token target      ${formatTokens(p.targetTokens)}` +
      (i.tokens === undefined ? ` (Chinchilla: 20 x ${p.params.toLocaleString('en-US')} params)` : ' (--tokens)'),
  );
  L.push('');
  const head = ['MFU', 'tokens/s (all GPUs)', `tokens in ${i.hours} h`, 'x Chinchilla', `time for ${formatTokens(p.targetTokens)} tokens`];
  const body = p.rows.map((r) => [
    `${(r.mfu * 100).toFixed(0)}%`,
    Math.round(r.tokensPerS).toLocaleString('en-US'),
    formatTokens(r.tokens),
    r.chinchilla.toFixed(2),
    formatHours(r.hoursForTarget),
  ]);
  L.push(...table(head, body));
  L.push('');
  L.push(
    `Memory per GPU (GB = 1e9 bytes): micro-batch ${i.microBatch} x seq ${i.seq}; bf16 weights, fp32 master weights, ` +
      `${i.gradBytes === 2 ? 'bf16' : 'fp32'} gradients, fp32 AdamW m and v; sharded parts divided by ${i.gpus}`,
  );
  const mhead = ['scheme', 'weights', 'master', 'grads', 'adam m,v', 'gathered', 'activations', 'total', `fits ${(i.gpu.memoryBytes / 1e9).toFixed(0)} GB`, 'max micro-batch'];
  const mbody = p.memory.map((m) => [
    m.label,
    gb(m.weights),
    gb(m.master),
    gb(m.grads),
    gb(m.optimizer),
    gb(m.gathered),
    gb(m.activations),
    gb(m.total),
    `${m.fits ? 'yes' : 'NO'} (${((100 * m.total) / i.gpu.memoryBytes).toFixed(0)}%)`,
    String(m.maxMicroBatch),
  ]);
  L.push(...table(mhead, mbody));
  L.push('');
  L.push(`Activations (bf16, flash attention, no recomputation): ${p.activations.formula}`);
  L.push(
    `  x micro-batch ${i.microBatch} x seq ${i.seq} + head = ${gb(p.activations.total)} GB, of which the head's ` +
      `chunk ${gb(p.activations.head)} GB.`,
  );
  L.push(
    'Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free); recomputation would ' +
      'cut activations to about one tensor per layer.',
  );
  L.push(
    'Peaks are dense bf16: the planning document\'s 4.5 PFLOP/s per B200 is the 2:4 sparse figure (dense: 2.25).',
  );
  return L.join('\n');
}

function table(head: string[], rows: string[][]): string[] {
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string =>
    '  ' + cells.map((x, c) => (c === 0 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join('  ');
  return [line(head), ...rows.map(line)];
}

// ---------------------------------------------------------------------------------------------------------------
// Staged runs

/** One stage as the planner needs it (config/stages.ts resolves these at the plan's GPU count). */
export interface StagePlanInput {
  name: string;
  seq: number;
  microBatch: number;
  steps: number;
  /** Global tokens per optimizer step: micro-batch x grad_accum x seq x GPUs. */
  tokensPerStep: number;
}

export interface StagePlan {
  stage: StagePlanInput;
  tokens: number;
  flopsPerToken: number;
  flops: number;
  /** Hours at each MFU of the input, in its order. */
  hours: number[];
  /** Memory per GPU at the stage's micro-batch and seq, per scheme. */
  memory: SchemeMemory[];
}

export interface StagedPlan {
  input: Omit<PlanInput, 'seq' | 'microBatch' | 'tokens'>;
  params: number;
  stages: StagePlan[];
  tokens: number;
  flops: number;
  hours: number[];
}

/** Time, tokens and memory of each stage and of the whole staged run. */
export function planStages(input: Omit<PlanInput, 'seq' | 'microBatch' | 'tokens'>, stages: StagePlanInput[]): StagedPlan {
  if (stages.length === 0) throw new PlanError('plan: the config has no stages');
  const stagePlans = stages.map((st): StagePlan => {
    const p = plan({ ...input, seq: st.seq, microBatch: st.microBatch });
    const tokens = st.steps * st.tokensPerStep;
    const flops = tokens * p.flopsPerToken;
    const hours = input.mfu.map((m) => flops / (input.gpus * input.gpu.peakFlops * m) / 3600);
    return { stage: st, tokens, flopsPerToken: p.flopsPerToken, flops, hours, memory: p.memory };
  });
  return {
    input,
    params: countParams(input.model).total,
    stages: stagePlans,
    tokens: stagePlans.reduce((a, s) => a + s.tokens, 0),
    flops: stagePlans.reduce((a, s) => a + s.flops, 0),
    hours: input.mfu.map((_, i) => stagePlans.reduce((a, s) => a + s.hours[i]!, 0)),
  };
}

export function formatStagedPlan(p: StagedPlan): string {
  const i = p.input;
  const L: string[] = [];
  L.push(
    `${i.modelName}: ${p.params.toLocaleString('en-US')} parameters; ${i.gpus} x ${i.gpu.name} (${i.gpu.about}, ` +
      `dense bf16 ${sci(i.gpu.peakFlops, 3)} FLOP/s, ${(i.gpu.memoryBytes / 1e9).toFixed(0)} GB); ${p.stages.length} stages`,
  );
  L.push('');
  const mfus = i.mfu.map((m) => `time @${(m * 100).toFixed(0)}%`);
  const head = ['stage', 'seq', 'micro-batch', 'steps', 'tokens', 'FLOPs/token', ...mfus, 'GB/GPU ZeRO-1', 'fits'];
  const body = p.stages.map((s) => {
    const z = s.memory.find((m) => m.scheme === 'zero1')!;
    return [
      s.stage.name, String(s.stage.seq), String(s.stage.microBatch), s.stage.steps.toLocaleString('en-US'), formatTokens(s.tokens),
      sci(s.flopsPerToken), ...s.hours.map(formatHours), gb(z.total), z.fits ? 'yes' : `NO (max micro-batch ${z.maxMicroBatch})`,
    ];
  });
  body.push(['total', '', '', p.stages.reduce((a, s) => a + s.stage.steps, 0).toLocaleString('en-US'), formatTokens(p.tokens), '', ...p.hours.map(formatHours), '', '']);
  L.push(...table(head, body));
  L.push('');
  const within = i.mfu.map((m, k) => `${(m * 100).toFixed(0)}% MFU: ${p.hours[k]! <= i.hours ? 'yes' : 'no'} (${formatHours(p.hours[k]!)})`);
  L.push(`Fits in ${i.hours} h? ${within.join('; ')}. Tokens = steps x micro-batch x grad_accum x seq x ${i.gpus} GPUs;`);
  L.push('FLOPs/token grow with seq (the attention term); memory is at each stage\'s micro-batch and seq (lmforge plan --model ... --seq ... for the full table).');
  return L.join('\n');
}
