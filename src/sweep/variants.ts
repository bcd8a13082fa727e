/**
 * From a sweep file to the runs it stands for: every variant's `key=value` list for the trainer (base config,
 * then the sweep's `set`, the held seed and data, the command line's --set, the variant's own values, and the
 * steps its budget buys), validated up front with the trainer's own config code, and priced by the planner.
 */
import type { ModelConfig } from '../config/model.js';
import { loadTrainConfig, type TrainConfig } from '../config/train.js';
import type { Scalar } from '../config/schema.js';
import { resolveModelConfig } from '../train/trainer.js';
import { flopsPerToken } from '../model/count.js';
import { runCost, stepsForTokens, type RunCost } from '../plan/run-cost.js';
import { keyProblem, SweepFileError, type Hold, type SweepSpec } from './sweep-file.js';

export interface ResolvedVariant {
  id: string;
  values: Record<string, Scalar>;
  /** What the trainer gets after the base config. */
  sets: string[];
  tc: TrainConfig;
  model: ModelConfig;
  cost: RunCost;
}

export interface ResolveOptions {
  /** The command line's --set: `key=value` for every run, or `hold.tokens=N` / `hold.flops=N` / `hold.seed=N`. */
  cliSets?: readonly string[];
  /** Data-parallel ranks per run. */
  nproc?: number;
}

/** 100000 -> '1e5', 2000000 -> '2e6', 2048 -> '2048', 2.67 -> '2.67', true -> 'true'. */
export function formatValue(v: Scalar): string {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v) && Math.abs(v) >= 1e4) {
    let m = v, k = 0;
    while (m % 10 === 0) {
      m /= 10;
      k++;
    }
    if (k >= 3) return `${m}e${k}`;
  }
  return String(v);
}

/** A variant's directory name from its values: `n_kv_head=1`, `seq=2048,micro_batch=16`. */
export function variantId(values: Record<string, Scalar>): string {
  const parts = Object.entries(values).map(([k, v]) => `${k.replace(/^model\./, '')}=${formatValue(v)}`);
  return (parts.join(',') || 'base').replace(/[^A-Za-z0-9._=,+-]/g, '_');
}

/** FFN width for a ratio of the hidden size, rounded to a multiple of 8 (as GPU kernels like). */
export function ffnHiddenFor(ratio: number, hidden: number): number {
  return Math.max(8, 8 * Math.round((ratio * hidden) / 8));
}

const setOf = (k: string, v: Scalar): string => `${k}=${String(v)}`;

/** Splits the command line's --set into budget changes and overrides for every run. */
function splitCliSets(spec: SweepSpec, cliSets: readonly string[]): { hold: Hold; sets: string[] } {
  const hold: Hold = { ...spec.hold };
  const sets: string[] = [];
  const problems: string[] = [];
  for (const item of cliSets) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    const val = item.slice(eq + 1).trim();
    if (!key) {
      problems.push(`--set '${item}' is not of the form key=value`);
      continue;
    }
    if (key.startsWith('hold.')) {
      const h = key.slice(5);
      const x = Number(val.replace(/_/g, ''));
      if (h === 'data') hold.data = val;
      else if (!(Number.isFinite(x) && x >= 0)) problems.push(`--set ${key}: expected a number, got '${val}'`);
      else if (h === 'tokens') (hold.tokens = x), delete hold.flops;
      else if (h === 'flops') (hold.flops = x), delete hold.tokens;
      else if (h === 'seed') hold.seed = x;
      else problems.push(`--set ${key}: a sweep holds tokens, flops, seed or data`);
      continue;
    }
    const why = keyProblem(key);
    if (why) problems.push(`--set ${key}: ${why}`);
    else if (spec.keys.includes(key)) problems.push(`--set ${key}: the sweep varies '${key}'; edit the sweep file to change its values`);
    else sets.push(`${key}=${val}`);
  }
  if (problems.length) throw new SweepFileError(`${spec.file}: ${problems.join('; ')}`, problems);
  return { hold, sets };
}

/** Every variant resolved and priced; all problems of all variants are reported together, before anything runs. */
export function resolveSweep(spec: SweepSpec, opts: ResolveOptions = {}): { variants: ResolvedVariant[]; hold: Hold } {
  const nproc = opts.nproc ?? 1;
  const { hold, sets: cliSets } = splitCliSets(spec, opts.cliSets ?? []);
  const common: string[] = Object.entries(spec.set).filter(([k]) => k !== 'ffn_ratio').map(([k, v]) => setOf(k, v));
  if (hold.seed !== undefined) common.push(`seed=${hold.seed}`);
  if (hold.data !== undefined) common.push(`data=${hold.data}`);
  common.push(...cliSets);
  const problems: string[] = [];
  const variants: ResolvedVariant[] = [];
  const seen = new Map<string, number>();
  for (const v of spec.variants) {
    let id = v.name ?? variantId(v.values);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    if (n > 1) id = `${id}-${n}`;
    try {
      const ratio = v.values.ffn_ratio ?? spec.set.ffn_ratio;
      const sets = [...common, ...Object.entries(v.values).filter(([k]) => k !== 'ffn_ratio').map(([k, x]) => setOf(k, x))];
      // The ratio needs the hidden size this variant ends up with.
      if (ratio !== undefined) {
        if (typeof ratio !== 'number' || !(ratio > 0)) throw new Error(`ffn_ratio must be a positive number, got ${String(ratio)}`);
        const hidden = resolveModelConfig(loadTrainConfig(spec.base ?? undefined, sets)).hidden_size;
        sets.push(`model.ffn_hidden=${ffnHiddenFor(ratio, hidden)}`);
      }
      const pre = loadTrainConfig(spec.base ?? undefined, sets);
      const model = resolveModelConfig(pre);
      if (pre.seq > model.context_length)
        throw new Error(`seq ${pre.seq} exceeds the model's context_length ${model.context_length}; set model.context_length >= ${pre.seq}`);
      const tokensPerStep = pre.micro_batch * pre.seq * pre.grad_accum * nproc;
      const tokens = hold.tokens ?? (hold.flops ?? 0) / flopsPerToken(model, pre.seq).total;
      const steps = stepsForTokens(tokens, tokensPerStep);
      sets.push(`steps=${steps}`);
      const tc = loadTrainConfig(spec.base ?? undefined, sets);
      if (tc.warmup_steps >= steps)
        throw new Error(`warmup_steps ${tc.warmup_steps} >= steps ${steps}: the run never leaves warmup; lower warmup_steps or raise the budget`);
      const cost = runCost(model, {
        seq: tc.seq, microBatch: tc.micro_batch, gradAccum: tc.grad_accum, ranks: nproc, steps,
        evalEvery: tc.eval_every, evalBatches: tc.eval_batches, zero1: tc.zero1, recompute: tc.recompute,
      }, spec.assume);
      variants.push({ id, values: v.values, sets, tc, model, cost });
    } catch (e) {
      problems.push(`variant '${id}': ${(e as Error).message.replace(/\n\s*/g, ' ')}`);
    }
  }
  if (problems.length)
    throw new SweepFileError(`${spec.file}: ${problems.length === 1 ? problems[0] : `${problems.length} variants are invalid:\n  - ${problems.join('\n  - ')}`}`, problems);
  return { variants, hold };
}
