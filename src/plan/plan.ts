/**
 * Feasibility arithmetic for a pretraining run: FLOP budget, tokens over an MFU range, Chinchilla multiple, time
 * for a token target, and memory per GPU under plain data parallel, ZeRO-1 and fully sharded (ZeRO-3 / FSDP)
 * training. Every formula is in docs/planning.md; the numbers here are what `lmforge plan` prints.
 */
import type { ModelConfig } from '../config/model.js';
import { RECOMPUTE_MODES, type RecomputeMode } from '../config/train.js';
import { countParams, flopsPerToken, attentionParamsPerLayer, mlpParamsPerLayer } from '../model/count.js';
import { keptPerLayer, type SavedTensor } from '../model/activations.js';
import type { DeviceSpec } from './devices.js';

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
  /** Activation recomputation of the run (default none); the plan also prices the other modes. */
  recompute?: RecomputeMode;
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
  /** Activation arena and CUDA scratch at the micro-batch and sequence length. */
  activations: number;
  total: number;
  fits: boolean;
  /** Largest micro-batch whose total fits the GPU's memory (0: not even one sequence). */
  maxMicroBatch: number;
}

/** The CUDA engine's scratch areas beside the arena (src/engine/cuda: attention.cc, loss.cc, gemm.cc). */
export interface CudaScratch {
  /** The attention backward's fp32 row dots (flash attention reads the bf16 arena's q, k, v and dO in place). */
  attention: number;
  /** The head's fp32 logits chunk, its bf16 copy as a GEMM operand, the bf16 head weight and the row losses. */
  loss: number;
  /** cuBLASLt workspace. */
  gemm: number;
  /** All of it, each area with the allocator's 1/8 headroom. */
  total: number;
}

export interface ActivationBreakdown {
  recompute: RecomputeMode;
  /** Bytes per element of the arena's activation tensors: 2 (bf16, the CUDA engine's default) or 4 (f32, the CPU). */
  activationElementBytes: 2 | 4;
  /** Bytes per token each layer keeps for its backward. */
  perTokenPerLayer: number;
  /** Bytes per token of the one set of block tensors all layers share and the backward rewrites (0 without recompute). */
  perTokenShared: number;
  /** Bytes per token outside the blocks: last block output, final norm, residual-stream gradients, backward scratch. */
  perTokenOutside: number;
  /** n_layer x perTokenPerLayer + perTokenShared + perTokenOutside. */
  perToken: number;
  /** Bytes per micro-batch not per token: RoPE cos/sin tables, the i32 token rows' extra slot and two f64 scalars. */
  fixed: number;
  /** The activation arena: perToken x micro-batch x seq + fixed (what `activationArenaBytes` allocates). */
  arena: number;
  cudaScratch: CudaScratch;
  /** arena + CUDA scratch. */
  total: number;
  /** Training FLOPs per token the recomputation adds (the re-run forward work). */
  extraFlopsPerToken: number;
  formula: string;
}

/** Elements per token of one block's tensors in lmforge's arena (src/model/activations.ts), by dtype and by what recompute keeps. */
function blockTensors(c: ModelConfig): { name: SavedTensor; f32: number; act: number }[] {
  const h = c.hidden_size, q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim, f = c.ffn_hidden;
  const up = c.ffn === 'swiglu' ? 2 * f : f;
  const prologue = c.qk_norm || c.positions === 'rope';
  const t = (name: SavedTensor, f32: number, act: number) => ({ name, f32, act });
  // The residual stream and all statistics are f32; the inputs of GEMMs and attention are activations.
  const stream = c.norm_position === 'pre'
    ? [t('input', h, 0), t('attnIn', 0, h), t('mid', h, 0), t('mlpIn', 0, h)]
    : [t('input', h, 0), t('attnSum', h, 0), t('mid', h, 0), t('mlpSum', h, 0)];
  return [
    ...stream,
    // Every norm keeps a mean and an rstd slot (RMSNorm leaves the mean unused).
    t('norm1Stats', 2, 0), t('norm2Stats', 2, 0),
    t('qkv', 0, q + 2 * kv),
    ...(prologue ? [t('qk', 0, q + kv), t('qkRstd', c.n_head + c.n_kv_head, 0)] : []),
    t('att', 0, q), t('lse', c.n_head, 0),
    t('mlp.up', 0, up), t('mlp.act', 0, f),
  ];
}

/**
 * lmforge's activation memory for this architecture, micro-batch and recompute mode: the arena of
 * src/model/activations.ts counted tensor by tensor (f32 residual stream and statistics; activations in
 * `activationElementBytes`), plus the CUDA engine's scratch beside it. Flash attention keeps no seq x seq scores
 * (only the output and a log-sum-exp per head), and the loss runs in row chunks, so no full logits exist.
 */
export function activationBytes(
  c: ModelConfig, microBatch: number, seq: number, recompute: RecomputeMode = 'none', activationElementBytes: 2 | 4 = 2,
): ActivationBreakdown {
  const h = c.hidden_size, q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim, f = c.ffn_hidden;
  const up = c.ffn === 'swiglu' ? 2 * f : f;
  const prologue = c.qk_norm || c.positions === 'rope';
  const a = activationElementBytes;
  const bytes = (x: { f32: number; act: number }): number => 4 * x.f32 + a * x.act;
  const tensors = blockTensors(c);
  const sum = (keep: boolean): number =>
    tensors.filter((x) => keptPerLayer(recompute, x.name) === keep).reduce((s, x) => s + bytes(x), 0);
  const perTokenPerLayer = sum(true);
  const perTokenShared = sum(false);
  // blocksOut, final norm output + statistics, dStream, dTmp (f32); dQkv, dQk, dAtt, dUp, dAct (activations).
  const perTokenOutside = bytes({ f32: 2 * h + 2, act: h }) + bytes({ f32: h, act: q + 2 * kv + (prologue ? q + kv : 0) + q + up + f });
  const perToken = c.n_layer * perTokenPerLayer + perTokenShared + perTokenOutside;
  const rope = c.positions === 'rope' ? 4 * seq * c.head_dim : 0;
  const fixed = rope + 4 + 16; // the cumulative-lengths row's extra i32, two f64 scalars (the 4 N i32 are in perToken)
  const perTokenInts = 16; // ids, targets, positions, document starts
  const arena = (perToken + perTokenInts) * microBatch * seq + fixed;
  const cudaScratch = cudaScratchBytes(c, microBatch, seq);
  const L1 = Math.max(0, c.n_layer - 1);
  const layerForward = 2 * (h * q + 2 * h * kv + q * h + (c.ffn === 'swiglu' ? 3 : 2) * h * f) + 4 * c.n_head * c.head_dim * seq;
  const extraFlopsPerToken = recompute === 'mlp' ? L1 * 2 * h * up : recompute === 'block' ? L1 * layerForward : 0;
  const kept = recompute === 'none' ? 'every tensor' : recompute === 'mlp' ? 'all but mlp.up, mlp.act' : 'the block input';
  const formula =
    `per token: n_layer x ${perTokenPerLayer} B kept (${kept}) + ${perTokenShared} B shared + ${perTokenOutside} B outside the blocks` +
    ` + 16 B token ids = ${c.n_layer} x ${perTokenPerLayer} + ${perTokenShared} + ${perTokenOutside} + 16 = ${perToken + perTokenInts} B` +
    ` (f32 stream and statistics, activations ${a === 2 ? 'bf16' : 'f32'})`;
  return {
    recompute, activationElementBytes, perTokenPerLayer, perTokenShared, perTokenOutside, perToken: perToken + perTokenInts,
    fixed, arena, cudaScratch, total: arena + cudaScratch.total, extraFlopsPerToken, formula,
  };
}

/** Rows of the head's logits chunk: about 2^28 logits, a multiple of 64, at most n (src/engine/cuda/loss.cc). */
export function lossChunkRows(n: number, vocab: number): number {
  const r = Math.max(64, Math.floor(Math.floor(2 ** 28 / Math.max(vocab, 1)) / 64) * 64);
  return Math.max(1, Math.min(r, n));
}

const align256 = (x: number): number => Math.ceil(x / 256) * 256;
/** The CUDA scratch allocator reserves 1/8 more than asked (src/engine/cuda/addon.cc). */
const reserved = (x: number): number => (x > 0 ? Math.floor(Math.max(x, 256) * 9 / 8) : 0);

/**
 * Device memory the CUDA engine takes beside the arena at this shape (bf16 precision): the attention backward's
 * fp32 row dots (both kernels; the tensor-core kernel reads q, k, v and dO from the bf16 arena in place, since
 * head_dim 64/128 keeps every row 16-byte aligned: flash_attention.cu readInPlace) and the loss (loss.cc: one fp32 logits chunk, its bf16 copy for the
 * gradient GEMMs, the bf16 head weight, per-row f64 losses), and the cuBLASLt workspace.
 */
export function cudaScratchBytes(c: ModelConfig, microBatch: number, seq: number): CudaScratch {
  const n = microBatch * seq;
  const rows = microBatch * c.n_head * seq;
  const attention = reserved(align256(rows * 4));
  const R = lossChunkRows(n, c.vocab_size);
  const loss = reserved(R * c.vocab_size * 4) + reserved(R * c.vocab_size * 2) + reserved(c.vocab_size * c.hidden_size * 2) + reserved(n * 8);
  const gemm = reserved(64 * 2 ** 20);
  return { attention, loss, gemm, total: attention + loss + gemm };
}

/** One recompute mode at the plan's micro-batch: its memory under each scheme and its extra compute. */
export interface RecomputeOption {
  mode: RecomputeMode;
  /** Activation arena + CUDA scratch. */
  activations: number;
  /** Extra FLOPs per token over the training FLOPs per token (0.25 = a quarter more work). */
  extraFlopsFraction: number;
  /** Total memory per GPU under each scheme, in the order of Plan.memory. */
  totals: number[];
  fits: boolean[];
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
  /** none, mlp, block at the plan's micro-batch. */
  recompute: RecomputeOption[];
  /** Per scheme (Plan.memory's order): the cheapest recompute mode that fits, or null when none does. */
  cheapestFit: (RecomputeMode | null)[];
}

export class PlanError extends Error {}

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

  const mode = input.recompute ?? 'none';
  const act = activationBytes(c, input.microBatch, input.seq, mode);
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
      maxMicroBatch: largestFitting((b) => states + activationBytes(c, b, input.seq, mode).total <= mem),
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
  const states = memory.map((m) => m.total - m.activations);
  const recompute = RECOMPUTE_MODES.map((m): RecomputeOption => {
    const a = activationBytes(c, input.microBatch, input.seq, m);
    const totals = states.map((st) => st + a.total);
    return { mode: m, activations: a.total, extraFlopsFraction: a.extraFlopsPerToken / fpt.total, totals, fits: totals.map((t) => t <= mem) };
  });
  // The modes are listed from the least to the most recomputed work, so the first that fits is the cheapest.
  const cheapestFit = memory.map((_, k) => recompute.find((r) => r.fits[k])?.mode ?? null);
  return { input, params: P, flopsPerToken: fpt.total, flopsFormula: fpt.formula, flopBudget, targetTokens, rows, activations: act, memory, recompute, cheapestFit };
}

/** The largest micro-batch b >= 0 for which fits(b) holds (fits is monotone: true up to some b, then false). */
function largestFitting(fits: (b: number) => boolean): number {
  if (!fits(1)) return 0;
  let lo = 1, hi = 2;
  while (fits(hi) && hi < 2 ** 30) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
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
  const a = p.activations;
  L.push(`Activations (lmforge's arena, recompute ${a.recompute}): ${a.formula}`);
  L.push(
    `  x micro-batch ${i.microBatch} x seq ${i.seq} + ${a.fixed} B = ${gb(a.arena)} GB arena; CUDA scratch ${gb(a.cudaScratch.total)} GB ` +
      `(attention row dots ${gb(a.cudaScratch.attention)}, loss chunk ${gb(a.cudaScratch.loss)}, cuBLASLt ${gb(a.cudaScratch.gemm)})`,
  );
  L.push('');
  L.push(`Recomputation at micro-batch ${i.microBatch} x seq ${i.seq} (total GB per GPU; extra = FLOPs added per token):`);
  const rhead = ['recompute', 'activations', 'extra', ...p.memory.map((m) => m.label)];
  const rbody = p.recompute.map((r) => [
    r.mode, gb(r.activations), `${(r.extraFlopsFraction * 100).toFixed(1)}%`,
    ...r.totals.map((t, k) => `${gb(t)} ${r.fits[k] ? 'yes' : 'NO'}`),
  ]);
  L.push(...table(rhead, rbody));
  L.push(`  cheapest that fits ${(i.gpu.memoryBytes / 1e9).toFixed(0)} GB: ` +
    p.memory.map((m, k) => `${m.label} ${p.cheapestFit[k] ?? 'none fits (lower the micro-batch)'}`).join('; '));
  L.push('Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free).');
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
  /** The stage's recompute mode (default: the input's). */
  recompute?: RecomputeMode;
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
  /** Per scheme, the cheapest recompute mode that fits at the stage's shape (Plan.cheapestFit). */
  cheapestFit: (RecomputeMode | null)[];
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
    const p = plan({ ...input, seq: st.seq, microBatch: st.microBatch, recompute: st.recompute ?? input.recompute });
    const tokens = st.steps * st.tokensPerStep;
    const flops = tokens * p.flopsPerToken;
    const hours = input.mfu.map((m) => flops / (input.gpus * input.gpu.peakFlops * m) / 3600);
    return { stage: st, tokens, flopsPerToken: p.flopsPerToken, flops, hours, memory: p.memory, cheapestFit: p.cheapestFit };
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
  const head = ['stage', 'seq', 'micro-batch', 'steps', 'tokens', 'FLOPs/token', ...mfus, 'GB/GPU ZeRO-1', 'fits', 'recompute'];
  const body = p.stages.map((s) => {
    const z = s.memory.find((m) => m.scheme === 'zero1')!;
    return [
      s.stage.name, String(s.stage.seq), String(s.stage.microBatch), s.stage.steps.toLocaleString('en-US'), formatTokens(s.tokens),
      sci(s.flopsPerToken), ...s.hours.map(formatHours), gb(z.total), z.fits ? 'yes' : `NO (max micro-batch ${z.maxMicroBatch})`,
      `${s.stage.recompute ?? i.recompute ?? 'none'}${s.cheapestFit[1] ? `, cheapest fitting ${s.cheapestFit[1]}` : ', no mode fits'}`,
    ];
  });
  body.push(['total', '', '', p.stages.reduce((a, s) => a + s.stage.steps, 0).toLocaleString('en-US'), formatTokens(p.tokens), '', ...p.hours.map(formatHours), '', '', '']);
  L.push(...table(head, body));
  L.push('');
  const within = i.mfu.map((m, k) => `${(m * 100).toFixed(0)}% MFU: ${p.hours[k]! <= i.hours ? 'yes' : 'no'} (${formatHours(p.hours[k]!)})`);
  L.push(`Fits in ${i.hours} h? ${within.join('; ')}. Tokens = steps x micro-batch x grad_accum x seq x ${i.gpus} GPUs;`);
  L.push('FLOPs/token grow with seq (the attention term); memory is at each stage\'s micro-batch and seq (lmforge plan --model ... --seq ... for the full table).');
  return L.join('\n');
}
