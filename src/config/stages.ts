/**
 * The structured parts of a training config: data mixtures and stages.
 *
 *   data: data/web                                   one prepared directory (or 'bundled')
 *   data: [{path: data/web, weight: 0.7}, {path: data/math, weight: 0.3, name: math}]   a mixture
 *
 *   stages:                                          one run, trained stage after stage
 *     - {name: general, steps: 2000, seq: 4096, data: [...], schedule: wsd}
 *     - {name: reasoning, tokens: 2e9, lr: 1e-4, schedule: cosine}
 *     - {name: long, steps: 300, seq: 32768, rope_theta: 1e6, micro_batch: 1, reset_optimizer: false}
 *
 * A stage sets its length (steps or tokens) and any of STAGE_KEYS; what it leaves out comes from the top level.
 * Of the model keys only rope_theta may change between stages: nothing that changes a tensor's shape.
 */
import type { RecomputeMode } from './train.js';
import { checkValue, ConfigError, MODEL_KEYS, throwProblems, unknownKeyMessage, coerceValue, type KeySpec, type Scalar } from './schema.js';

export interface DataSource {
  path: string;
  weight: number;
  /** Short name in metrics and messages (default: the directory's base name). */
  name?: string;
}
export type DataSpec = string | DataSource[];

/** Training keys a stage may override (their specs are the training table's). */
export const STAGE_TRAIN_KEYS = [
  'steps', 'seq', 'micro_batch', 'grad_accum', 'schedule', 'lr', 'min_lr', 'warmup_steps', 'decay_fraction',
  'attention_mask', 'positions', 'on_exhausted', 'recompute',
] as const;
export type StageTrainKey = (typeof STAGE_TRAIN_KEYS)[number];

/** Keys only a stage has. */
const STAGE_ONLY_KEYS = {
  name: { kind: 'string', default: '', help: 'the stage\'s name in metrics, plots and messages (default stage-N)' },
  tokens: { kind: 'number', min: 0, exclusiveMin: true, default: 0, help: 'stage length in tokens (instead of steps), rounded up to whole steps' },
  reset_optimizer: { kind: 'bool', default: false, help: 'start the stage with fresh AdamW moments (default: keep the previous stage\'s)' },
  rope_theta: MODEL_KEYS.rope_theta,
} as const satisfies Record<string, KeySpec>;

/** One stage as written: everything optional except a length; absent keys come from the top level. */
export interface StageConfig {
  name?: string;
  steps?: number;
  tokens?: number;
  seq?: number;
  micro_batch?: number;
  grad_accum?: number;
  schedule?: 'cosine' | 'wsd' | 'constant';
  lr?: number;
  min_lr?: number;
  warmup_steps?: number;
  decay_fraction?: number;
  attention_mask?: 'causal' | 'document';
  positions?: 'sequence' | 'document';
  on_exhausted?: 'repeat' | 'stop';
  recompute?: RecomputeMode;
  data?: DataSpec;
  rope_theta?: number;
  reset_optimizer?: boolean;
}

/** Model keys that cannot change between stages, for a precise error. */
const SHAPE_KEYS = new Set(Object.keys(MODEL_KEYS).filter((k) => k !== 'rope_theta'));

/** The training table's specs of STAGE_TRAIN_KEYS (passed in by config/train.ts, which owns the table). */
export type StageSpecs = Record<StageTrainKey, KeySpec>;

function specFor(key: string, train: StageSpecs): KeySpec | undefined {
  if (Object.hasOwn(STAGE_ONLY_KEYS, key)) return STAGE_ONLY_KEYS[key as keyof typeof STAGE_ONLY_KEYS];
  if ((STAGE_TRAIN_KEYS as readonly string[]).includes(key)) return train[key as StageTrainKey];
  return undefined;
}
const knownStageKeys = (): string[] => [...STAGE_TRAIN_KEYS, ...Object.keys(STAGE_ONLY_KEYS), 'data'];

/** Parses a `data:` list: [{path, weight, name?}], weights positive (they need not sum to 1). */
export function parseDataSpec(raw: unknown, source: string): DataSpec {
  if (typeof raw === 'string') {
    if (raw === '') throw new ConfigError(`${source}: a data path is empty; name a prepared directory or 'bundled'`);
    return raw;
  }
  if (!Array.isArray(raw) || raw.length === 0)
    throw new ConfigError(`${source}: expected a directory or a non-empty list of {path, weight} entries`);
  const problems: string[] = [];
  const out: DataSource[] = [];
  raw.forEach((e, i) => {
    const at = `${source}[${i + 1}]`;
    if (typeof e === 'string') {
      problems.push(`${at}: '${e}' needs a weight in a mixture; write {path: ${e}, weight: 0.5}`);
      return;
    }
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      problems.push(`${at}: expected {path, weight}`);
      return;
    }
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['path', 'weight', 'name'].includes(k)) problems.push(unknownKeyMessage(k, at, ['path', 'weight', 'name']));
    if (typeof o.path !== 'string' || o.path === '') problems.push(`${at}: 'path' must name a prepared data directory (or 'bundled')`);
    if (typeof o.weight !== 'number' || !(o.weight > 0) || !Number.isFinite(o.weight))
      problems.push(`${at}: 'weight' must be a positive number (weights are normalised to sum to 1), got ${JSON.stringify(o.weight)}`);
    if (o.name !== undefined && (typeof o.name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(o.name)))
      problems.push(`${at}: 'name' must be letters, digits, '.', '_' or '-', got ${JSON.stringify(o.name)}`);
    out.push({ path: String(o.path), weight: Number(o.weight), ...(typeof o.name === 'string' ? { name: o.name } : {}) });
  });
  throwProblems(source, problems);
  const names = out.map((d) => sourceName(d));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(`${source}: two entries are called '${dup}'; give them distinct 'name's`);
  return out;
}

/** The name a mixture entry has in metrics: its `name`, else its directory's base name. */
export function sourceName(d: DataSource): string {
  if (d.name) return d.name;
  const parts = d.path.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] || d.path;
}

/** A data spec as a list (a single directory is a mixture of one with weight 1). */
export function dataSources(spec: DataSpec): DataSource[] {
  return typeof spec === 'string' ? [{ path: spec, weight: 1 }] : spec;
}

/** One line for messages: 'data/web' or 'web 70% + math 30%'. */
export function describeData(spec: DataSpec): string {
  if (typeof spec === 'string') return spec;
  const total = spec.reduce((a, d) => a + d.weight, 0);
  return spec.map((d) => `${sourceName(d)} ${((100 * d.weight) / total).toFixed(0)}%`).join(' + ');
}

/** Parses the `stages:` list; every problem of every stage is reported at once. */
export function parseStages(raw: unknown, source: string, train: StageSpecs): StageConfig[] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new ConfigError(`${source}: expected a non-empty list of stages, each a mapping such as {steps: 100, seq: 512}`);
  const problems: string[] = [];
  const stages = raw.map((e, i) => {
    const at = `${source}[${i + 1}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      problems.push(`${at}: a stage is a mapping of keys (e.g. {steps: 100, seq: 512})`);
      return {};
    }
    const st: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e as Record<string, unknown>)) {
      if (k === 'data') {
        try {
          st.data = parseDataSpec(v, `${at}: data`);
        } catch (err) {
          problems.push((err as Error).message);
        }
        continue;
      }
      const spec = specFor(k, train);
      if (!spec) {
        problems.push(
          SHAPE_KEYS.has(k)
            ? `${at}: '${k}' cannot change between stages (it changes a tensor's shape or the architecture); of the model keys a stage may set only rope_theta`
            : unknownKeyMessage(k, at, knownStageKeys()),
        );
        continue;
      }
      const err = checkValue(k, spec, v);
      if (err) problems.push(`${at}: ${err}`);
      st[k] = v;
    }
    return st as StageConfig;
  });
  stages.forEach((st, i) => {
    const at = `${source}[${i + 1}]`;
    if ((st.steps === undefined) === (st.tokens === undefined))
      problems.push(`${at}: give the stage's length as exactly one of 'steps' or 'tokens'`);
  });
  throwProblems(source, problems);
  return stages;
}

/** Applies `stages.N.KEY=VALUE` overrides (N is 1-based) in place. */
export function stageOverrides(stages: StageConfig[], sets: readonly string[], train: StageSpecs): void {
  const problems: string[] = [];
  for (const item of sets) {
    const m = /^stages\.(\d+)\.([A-Za-z_]+)=(.*)$/s.exec(item);
    if (!m) {
      problems.push(`--set: '${item}' is not of the form stages.N.key=value (e.g. stages.2.steps=50)`);
      continue;
    }
    const n = Number(m[1]);
    const key = m[2]!;
    if (!(n >= 1 && n <= stages.length)) {
      problems.push(`--set ${item}: stage ${n} does not exist; the config has ${stages.length} stage(s)`);
      continue;
    }
    const st = stages[n - 1]! as Record<string, unknown>;
    if (key === 'data') {
      st.data = parseDataSpec(m[3]!.trim(), `--set ${item}`);
      continue;
    }
    const spec = specFor(key, train);
    if (!spec) {
      problems.push(unknownKeyMessage(key, `--set stages.${n}`, knownStageKeys()));
      continue;
    }
    try {
      const v: Scalar = coerceValue(key, spec, m[3]!, `--set ${item}`);
      const err = checkValue(key, spec, v);
      if (err) problems.push(`--set ${item}: ${err}`);
      st[key] = v;
      // A length given one way replaces the other.
      if (key === 'steps') delete st.tokens;
      if (key === 'tokens') delete st.steps;
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  throwProblems('--set', problems);
}

/** A stage with every key resolved (top-level values filled in) and its place in the run. */
export interface ResolvedStage {
  /** 0-based; messages and metrics say index + 1. */
  index: number;
  name: string;
  /** First global step (0-based) and one past the last. */
  start: number;
  end: number;
  steps: number;
  seq: number;
  microBatch: number;
  gradAccum: number;
  /** micro-batch x grad_accum x seq x world size. */
  tokensPerStep: number;
  data: DataSource[];
  onExhausted: 'repeat' | 'stop';
  attentionMask: 'causal' | 'document';
  positions: 'sequence' | 'document';
  schedule: 'cosine' | 'wsd' | 'constant';
  lr: number;
  minLr: number;
  warmupSteps: number;
  decayFraction: number;
  recompute: RecomputeMode;
  ropeTheta: number;
  resetOptimizer: boolean;
  /** Seed of the stage's data order: the run's seed for stage 1, derived from it for later stages. */
  seed: number;
}

/** The keys resolve() needs from a training config (a structural subset of TrainConfig). */
export interface StagedConfig {
  steps: number;
  seq: number;
  micro_batch: number;
  grad_accum: number;
  schedule: 'cosine' | 'wsd' | 'constant';
  lr: number;
  min_lr: number;
  warmup_steps: number;
  decay_fraction: number;
  attention_mask: 'causal' | 'document';
  positions: 'sequence' | 'document';
  on_exhausted: 'repeat' | 'stop';
  recompute: RecomputeMode;
  seed: number;
  data: DataSpec;
  stages: StageConfig[];
}

/**
 * The run's stages with every key resolved: a config without `stages:` is one stage of the top-level keys.
 * A stage's absent keys come from the top level, except min_lr, which follows a stage's own lr (lr / 10) when
 * the stage sets lr but not min_lr. Lengths in tokens become whole steps at this world size.
 */
export function resolveStages(tc: StagedConfig, ropeTheta: number, contextLength: number, worldSize: number): ResolvedStage[] {
  const list: StageConfig[] = tc.stages.length > 0 ? tc.stages : [{ steps: tc.steps }];
  const problems: string[] = [];
  let start = 0;
  const out = list.map((st, index): ResolvedStage => {
    const seq = st.seq ?? tc.seq;
    const microBatch = st.micro_batch ?? tc.micro_batch;
    const gradAccum = st.grad_accum ?? tc.grad_accum;
    const tokensPerStep = microBatch * gradAccum * seq * worldSize;
    const steps = st.steps ?? Math.ceil((st.tokens ?? 0) / tokensPerStep);
    const lr = st.lr ?? tc.lr;
    const name = st.name || (tc.stages.length > 0 ? `stage-${index + 1}` : 'main');
    const at = `stage ${index + 1} (${name})`;
    if (seq > contextLength)
      problems.push(`${at}: seq ${seq} exceeds the model's context_length ${contextLength}; raise model.context_length (with RoPE it changes no tensor) or lower seq`);
    if (steps < 1) problems.push(`${at}: has no steps; give it steps >= 1 or more tokens`);
    const r: ResolvedStage = {
      index, name, start, end: start + steps, steps, seq, microBatch, gradAccum, tokensPerStep,
      data: dataSources(st.data ?? tc.data),
      onExhausted: st.on_exhausted ?? tc.on_exhausted,
      attentionMask: st.attention_mask ?? tc.attention_mask,
      positions: st.positions ?? tc.positions,
      schedule: st.schedule ?? tc.schedule,
      lr,
      minLr: st.min_lr ?? (st.lr !== undefined ? Number((lr / 10).toPrecision(12)) : tc.min_lr),
      warmupSteps: st.warmup_steps ?? tc.warmup_steps,
      decayFraction: st.decay_fraction ?? tc.decay_fraction,
      recompute: st.recompute ?? tc.recompute,
      ropeTheta: st.rope_theta ?? ropeTheta,
      resetOptimizer: st.reset_optimizer ?? false,
      seed: index === 0 ? tc.seed : tc.seed + index,
    };
    start += steps;
    return r;
  });
  throwProblems('stages', problems);
  return out;
}
