/**
 * The training configuration: one key table (types, defaults, validation and docs from the same definition),
 * loaded from a JSON/YAML file under config/ and `--set key=value` overrides. Model keys are set with
 * `--set model.KEY=VALUE` (or a `model_overrides:` mapping in the file) on top of the `model` preset/file.
 * Three keys are structured rather than scalar: `model_overrides`, `data` (one directory, or a weighted list of
 * them: a mixture) and `stages` (a list of training stages, each overriding a few keys; see stages.ts).
 */
import { ConfigError, MODEL_KEYS, parseOverrides, throwProblems, validateRecord, type KeyTable, type RecordOf, type Scalar } from './schema.js';
import { readConfigFile } from './load.js';
import { parseDataSpec, parseStages, stageOverrides, type DataSpec, type StageConfig } from './stages.js';

/** Activation recomputation (src/model/activations.ts says what each mode keeps per layer). */
export const RECOMPUTE_MODES = ['none', 'mlp', 'block'] as const;
export type RecomputeMode = (typeof RECOMPUTE_MODES)[number];

export const TRAIN_KEYS = {
  model: { kind: 'string', default: 'cpu-tiny', help: 'model: a preset name, a model config file, or a Hugging Face directory' },
  init_from: { kind: 'string', default: '', help: 'start from these weights (Hugging Face directory or run directory); empty = random init' },
  data: {
    kind: 'string', default: 'bundled',
    help: "prepared data directory (lmforge prepare), 'bundled' (the bundled English corpus, or 'bundled-early' / 'bundled-modern' for its two halves), or in a file a list of {path, weight} (a mixture)",
  },
  run_dir: { kind: 'string', default: '', help: 'where checkpoints, metrics and plots go (default runs/<model>-<time>)' },
  device: { kind: 'enum', values: ['cpu', 'cuda', 'cuda-interpret', 'auto'] as const, default: 'cpu', help: 'compute backend (cuda-interpret: the CUDA kernels on the CPU, for tests)' },
  threads: { kind: 'int', min: 0, default: 0, help: 'CPU threads (0 = all cores)' },
  seq: { kind: 'int', min: 2, default: 128, help: 'tokens per sequence' },
  micro_batch: { kind: 'int', min: 1, default: 8, help: 'sequences per forward/backward' },
  grad_accum: { kind: 'int', min: 1, default: 1, help: 'micro-batches per optimizer step (token batch = micro_batch x grad_accum x seq x world)' },
  steps: { kind: 'int', min: 1, default: 400, help: 'optimizer steps' },
  schedule: { kind: 'enum', values: ['cosine', 'wsd', 'constant'] as const, default: 'cosine', help: 'learning-rate schedule after warmup' },
  lr: { kind: 'number', min: 0, exclusiveMin: true, default: 5e-3, help: 'peak learning rate' },
  min_lr: { kind: 'number', min: 0, default: (r) => Number((Number(r.lr) / 10).toPrecision(12)), defaultHelp: 'lr / 10', help: 'final learning rate of cosine / WSD' },
  warmup_steps: { kind: 'int', min: 0, default: 30, help: 'linear warmup steps' },
  decay_fraction: { kind: 'number', min: 0, max: 1, default: 0.2, help: 'WSD: share of steps spent decaying' },
  beta1: { kind: 'number', min: 0, max: 1, default: 0.9, help: 'AdamW beta1' },
  beta2: { kind: 'number', min: 0, max: 1, default: 0.95, help: 'AdamW beta2' },
  eps: { kind: 'number', min: 0, exclusiveMin: true, default: 1e-8, help: 'AdamW epsilon' },
  weight_decay: { kind: 'number', min: 0, default: 0.1, help: 'decoupled weight decay on tensors of 2+ dimensions' },
  clip: { kind: 'number', min: 0, default: 1.0, help: 'global gradient-norm clip (0 = off)' },
  attention_mask: {
    kind: 'enum', values: ['causal', 'document'] as const, default: 'causal',
    help: "'document': a token attends only within its own document of the packed sequence (documents end at EOS)",
  },
  positions: {
    kind: 'enum', values: ['sequence', 'document'] as const, default: 'sequence',
    help: "'document': positions (RoPE or learned) restart at 0 at each document of a packed sequence",
  },
  on_exhausted: {
    kind: 'enum', values: ['repeat', 'stop'] as const, default: 'repeat',
    help: "a dataset that runs out within its share: 'repeat' it (a warning counts its epochs) or 'stop' the run",
  },
  recompute: {
    kind: 'enum', values: RECOMPUTE_MODES, default: 'none',
    help: "activation recomputation: 'mlp' recomputes each block's MLP up-projection and activation in the backward, 'block' keeps only each block's input and re-runs its forward (less memory, more time; same gradients)",
  },
  zero1: { kind: 'bool', default: false, help: 'shard the AdamW moments over data-parallel ranks (ZeRO-1); the --zero1 flag sets it' },
  seed: { kind: 'int', min: 0, default: 1337, help: 'seed for initialisation and data order' },
  scaled_residual_init: { kind: 'bool', default: true, help: 'scale residual projections\' init std by 1/sqrt(2 n_layer)' },
  eval_every: { kind: 'int', min: 0, default: 100, help: 'evaluate on the validation split every N steps (0 = only at the end)' },
  eval_batches: { kind: 'int', min: 1, default: 8, help: 'validation micro-batches per evaluation' },
  eval_tasks_every: { kind: 'int', min: 0, default: 0, help: 'score the eval_tasks list (downstream benchmarks, docs/eval.md) every N steps (0 = only at the end)' },
  eval_tokenizer: { kind: 'string', default: '', help: "tokenizer.json for text eval_tasks (empty = the bundled Qwen3 one)" },
  checkpoint_every: { kind: 'int', min: 0, default: 200, help: 'checkpoint every N steps (0 = only at the end)' },
  keep_checkpoints: { kind: 'int', min: 1, default: 2, help: 'checkpoints kept (oldest deleted first)' },
  log_every: { kind: 'int', min: 1, default: 1, help: 'write a metrics line every N steps' },
  max_bad_steps: { kind: 'int', min: 1, default: 5, help: 'consecutive NaN/Inf steps tolerated (skipped) before the run stops' },
  peak_flops: { kind: 'number', min: 0, default: 0, help: 'peak FLOP/s for MFU (0 = from the device table)' },
  sample_prompt: { kind: 'string', default: 'The', help: 'prompt of the sample printed at the end' },
  sample_tokens: { kind: 'int', min: 0, default: 48, help: 'tokens generated for the final sample (0 = none)' },
} satisfies KeyTable;

/** One downstream task scored during training (src/eval): its name, data file, and optionally the first N examples. */
export interface EvalTaskEntry {
  task: string;
  data: string;
  limit?: number;
}

export type TrainConfig = Omit<RecordOf<typeof TRAIN_KEYS>, 'data'> & {
  /** One prepared directory (or 'bundled'), or a weighted mixture of them. */
  data: DataSpec;
  /** Model keys set on top of `model` (validated when the model config is resolved). */
  model_overrides: Record<string, Scalar>;
  /** Downstream tasks scored every `eval_tasks_every` steps and at the end. */
  eval_tasks: EvalTaskEntry[];
  /** Training stages in order, each overriding some keys; empty = one stage from the top-level keys. */
  stages: StageConfig[];
};

/**
 * `eval_tasks`: a list of {task, data, limit?} (a file's YAML/JSON list, or the same list as JSON in `--set`), or on
 * the command line the short form `task:data[:limit],...`. Task names are checked when the run starts.
 */
export function parseEvalTasks(v: unknown, source: string): EvalTaskEntry[] {
  let list = v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.startsWith('[')) {
      try {
        list = JSON.parse(t);
      } catch (e) {
        throw new ConfigError(`${source}: eval_tasks is not valid JSON (${(e as Error).message})`);
      }
    } else {
      list = t === '' ? [] : t.split(',').map((item) => {
        const parts = item.split(':');
        const limit = parts.length > 2 && /^\d+$/.test(parts[parts.length - 1]!) ? Number(parts.pop()) : undefined;
        const [task, ...rest] = parts;
        return { task, data: rest.join(':'), ...(limit !== undefined ? { limit } : {}) };
      });
    }
  }
  if (!Array.isArray(list)) throw new ConfigError(`${source}: eval_tasks must be a list of {task, data, limit}, e.g. [{task: hellaswag, data: hellaswag_val.jsonl}]`);
  return list.map((e: unknown, i) => {
    const at = `${source}: eval_tasks[${i}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new ConfigError(`${at} must be a mapping {task, data, limit}`);
    const o = e as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['task', 'data', 'limit'].includes(k));
    if (extra.length) throw new ConfigError(`${at}: unknown key '${extra[0]}' (keys: task, data, limit)`);
    if (typeof o.task !== 'string' || o.task === '') throw new ConfigError(`${at}: 'task' must be a task name such as hellaswag`);
    if (typeof o.data !== 'string' || o.data === '') throw new ConfigError(`${at}: 'data' must be the task's data file`);
    if (o.limit !== undefined && !(typeof o.limit === 'number' && Number.isInteger(o.limit) && o.limit >= 1))
      throw new ConfigError(`${at}: 'limit' must be a whole number >= 1`);
    return { task: o.task, data: o.data, ...(o.limit !== undefined ? { limit: o.limit as number } : {}) };
  });
}

/** Loads a train config: file (JSON/YAML) or none, then `key=value` overrides; `model.KEY=VALUE` go to model_overrides. */
export function loadTrainConfig(file: string | undefined, sets: readonly string[]): TrainConfig {
  if (!file) return trainConfigFromRecord({}, sets, '--set');
  const parsed = readConfigFile(file);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`${file}: expected a mapping of key: value pairs at the top level`);
  return trainConfigFromRecord(parsed as Record<string, unknown>, sets, file);
}

/**
 * A train config from a parsed record (a config file's contents, or a run's saved train_config.json) plus
 * `key=value` overrides: `model.KEY=VALUE` go to model_overrides, `stages.N.KEY=VALUE` to stage N (1-based).
 */
export function trainConfigFromRecord(record: Record<string, unknown>, sets: readonly string[], source: string): TrainConfig {
  const raw = { ...record };
  let modelOverrides: Record<string, Scalar> = {};
  if ('model_overrides' in raw) {
    const mo = raw.model_overrides;
    if (mo === null || typeof mo !== 'object' || Array.isArray(mo))
      throw new ConfigError(`${source}: 'model_overrides' must be a mapping of model keys (e.g. n_layer: 6)`);
    modelOverrides = { ...(mo as Record<string, Scalar>) };
    delete raw.model_overrides;
  }
  let evalTasks: EvalTaskEntry[] = [];
  if ('eval_tasks' in raw) {
    evalTasks = parseEvalTasks(raw.eval_tasks, source);
    delete raw.eval_tasks;
  }
  for (const s of sets.filter((x) => x.startsWith('eval_tasks='))) evalTasks = parseEvalTasks(s.slice('eval_tasks='.length), '--set');
  const stagesRaw = raw.stages;
  delete raw.stages;
  // A mixture (a list) is parsed here; a single directory stays a string key of the table.
  let data: DataSpec | undefined;
  if (Array.isArray(raw.data)) {
    data = parseDataSpec(raw.data, `${source}: data`);
    delete raw.data;
  }
  const trainSets = sets.filter((s) => !s.startsWith('model.') && !s.startsWith('stages.') && !s.startsWith('eval_tasks='));
  const modelSets = sets.filter((s) => s.startsWith('model.')).map((s) => s.slice('model.'.length));
  const stageSets = sets.filter((s) => s.startsWith('stages.'));
  const overrides = parseOverrides(TRAIN_KEYS, trainSets, '--set');
  if ('data' in overrides) data = undefined;
  Object.assign(raw, overrides);
  Object.assign(modelOverrides, parseOverrides(MODEL_KEYS as unknown as KeyTable, modelSets, '--set model.*'));
  const given = new Set<string>();
  const cfg = validateRecord(TRAIN_KEYS, raw, source, given);
  // [] (as a saved config of an unstaged run has it) is no stages.
  const stages = stagesRaw === undefined || stagesRaw === null || (Array.isArray(stagesRaw) && stagesRaw.length === 0) ? [] : parseStages(stagesRaw, `${source}: stages`, TRAIN_KEYS);
  stageOverrides(stages, stageSets, TRAIN_KEYS);
  const tc: TrainConfig = { ...cfg, data: data ?? cfg.data, model_overrides: modelOverrides, eval_tasks: evalTasks, stages };
  if (stages.length > 0) {
    const problems: string[] = [];
    // With stages, the total length is theirs; a top-level steps must agree (a saved config carries the total).
    const stepStages = stages.every((st) => st.steps !== undefined);
    const total = stages.reduce((a, st) => a + (st.steps ?? 0), 0);
    // Stages measured in tokens get their step counts from the world size; the trainer then sets steps.
    if (given.has('steps') && stepStages && total !== tc.steps)
      problems.push(`${source}: 'steps' is ${tc.steps} at the top level but the stages add up to ${total}; remove the top-level steps (with stages it is their sum) or use --set stages.N.steps=...`);
    if (stepStages) tc.steps = total;
    throwProblems(source, problems);
  }
  return tc;
}

