/**
 * Table-driven configuration records: one table of keys (kind, range, default, help) gives the TypeScript type,
 * the defaults, the validation and the printed documentation. The model config below is one such table; the
 * trainer reuses `validateRecord` / `parseOverrides` for its own table.
 */
import type { ModelConfig } from './model.js';

// ---------------------------------------------------------------------------------------------------------------
// Generic key tables
// ---------------------------------------------------------------------------------------------------------------

/** Called with the keys resolved so far (table order) when a key is absent; returns its default. */
type Derive<V> = (resolved: Readonly<Record<string, unknown>>) => V;

interface KeyBase<V> {
  help: string;
  /** Static default, or one computed from earlier keys (then `defaultHelp` says how, for the docs). */
  default: V | Derive<V>;
  defaultHelp?: string;
}
export interface IntKey extends KeyBase<number> {
  kind: 'int';
  min?: number;
  max?: number;
}
export interface NumberKey extends KeyBase<number> {
  kind: 'number';
  min?: number;
  max?: number;
  /** min is exclusive (value must be > min). */
  exclusiveMin?: boolean;
}
export interface BoolKey extends KeyBase<boolean> {
  kind: 'bool';
}
export interface EnumKey<V extends string = string> extends KeyBase<V> {
  kind: 'enum';
  values: readonly V[];
}
export interface StringKey extends KeyBase<string> {
  kind: 'string';
}
export type KeySpec = IntKey | NumberKey | BoolKey | EnumKey | StringKey;
export type KeyTable = Record<string, KeySpec>;

/** The value type a key spec describes. */
export type ValueOf<S> = S extends { kind: 'int' | 'number' }
  ? number
  : S extends { kind: 'bool' }
    ? boolean
    : S extends { kind: 'enum'; values: readonly (infer V)[] }
      ? V
      : S extends { kind: 'string' }
        ? string
        : never;
/** The record type a key table describes. */
export type RecordOf<T extends KeyTable> = { -readonly [K in keyof T]: ValueOf<T[K]> };
export type Scalar = number | boolean | string;

export class ConfigError extends Error {
  constructor(
    message: string,
    /** Each individual problem, already prefixed with the source. */
    readonly problems: string[] = [message],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Throws one ConfigError listing every problem (one per line) when there are any. */
export function throwProblems(source: string, problems: string[]): void {
  if (problems.length === 0) return;
  if (problems.length === 1) throw new ConfigError(problems[0]!, problems);
  throw new ConfigError(`${source}: ${problems.length} problems:\n  - ${problems.join('\n  - ')}`, problems);
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Known names closest to `name` (at most `limit`), nearest first; only reasonably close ones. */
export function nearestNames(name: string, known: Iterable<string>, limit = 1): string[] {
  const lower = name.toLowerCase();
  const scored: { k: string; d: number }[] = [];
  for (const k of known) {
    const kl = k.toLowerCase();
    let d = editDistance(lower, kl);
    // A key that contains the typed name (or the reverse) is a good guess even when far in edits.
    if (lower.length >= 3 && (kl.includes(lower) || lower.includes(kl))) d = Math.min(d, 2);
    if (d <= Math.max(2, Math.floor(Math.max(lower.length, kl.length) / 3))) scored.push({ k, d });
  }
  scored.sort((x, y) => x.d - y.d || x.k.localeCompare(y.k));
  return scored.slice(0, limit).map((s) => s.k);
}

export function unknownKeyMessage(key: string, source: string, known: Iterable<string>): string {
  const near = nearestNames(key, known, 1);
  const hint = near.length ? `; did you mean '${near[0]}'?` : `; known keys: ${[...known].join(', ')}`;
  return `unknown key '${key}' in ${source}${hint}`;
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return `string '${v}'`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function rangeText(spec: IntKey | NumberKey): string {
  const lo = spec.min === undefined ? '' : `${spec.kind === 'number' && spec.exclusiveMin ? '>' : '>='} ${spec.min}`;
  const hi = spec.max === undefined ? '' : `<= ${spec.max}`;
  return [lo, hi].filter(Boolean).join(' and ');
}

/** Checks one value against its spec; returns an error text (without the source prefix) or null. */
export function checkValue(key: string, spec: KeySpec, v: unknown): string | null {
  switch (spec.kind) {
    case 'int':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v))
        return `key '${key}' must be a ${spec.kind === 'int' ? 'whole number' : 'number'}, got ${describeValue(v)}`;
      if (spec.kind === 'int' && !Number.isSafeInteger(v)) return `key '${key}' must be a whole number, got ${v}`;
      const low = spec.min !== undefined && (spec.kind === 'number' && spec.exclusiveMin ? v <= spec.min : v < spec.min);
      const high = spec.max !== undefined && v > spec.max;
      if (low || high) return `key '${key}' is ${v} but must be ${rangeText(spec)}`;
      return null;
    }
    case 'bool':
      return typeof v === 'boolean' ? null : `key '${key}' must be true or false, got ${describeValue(v)}`;
    case 'enum':
      if (typeof v === 'string' && spec.values.includes(v)) return null;
      {
        const near = typeof v === 'string' ? nearestNames(v, spec.values, 1) : [];
        const hint = near.length ? ` (did you mean '${near[0]}'?)` : '';
        return `key '${key}' must be one of ${spec.values.map((x) => `'${x}'`).join(', ')}, got ${describeValue(v)}${hint}`;
      }
    case 'string':
      return typeof v === 'string' ? null : `key '${key}' must be a string, got ${describeValue(v)}`;
  }
}

function resolveDefault(spec: KeySpec, resolved: Record<string, unknown>): unknown {
  return typeof spec.default === 'function' ? (spec.default as Derive<unknown>)(resolved) : spec.default;
}

/**
 * Validates `raw` (a parsed JSON/YAML object) against `table`: unknown keys, wrong types and out-of-range values are
 * errors naming the key; absent keys take their defaults (derived defaults see the keys before them in table order).
 * Every problem is reported at once. `given` (if passed) receives the keys that were present in `raw`.
 */
export function validateRecord<T extends KeyTable>(table: T, raw: unknown, source: string, given?: Set<string>): RecordOf<T> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`${source}: expected an object of key: value pairs, got ${describeValue(raw)}`);
  const input = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(input)) {
    if (!Object.hasOwn(table, k)) problems.push(unknownKeyMessage(k, source, Object.keys(table)));
  }
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(table)) {
    if (Object.hasOwn(input, k) && input[k] !== undefined) {
      given?.add(k);
      const err = checkValue(k, spec, input[k]);
      if (err) problems.push(`${source}: ${err}`);
      out[k] = input[k];
    } else {
      let v: unknown;
      try {
        v = resolveDefault(spec, out);
      } catch (e) {
        problems.push(`${source}: ${(e as Error).message}`);
        continue;
      }
      const err = checkValue(k, spec, v);
      if (err) problems.push(`${source}: default of ${err}; set '${k}' explicitly`);
      out[k] = v;
    }
  }
  throwProblems(source, problems);
  return out as RecordOf<T>;
}

/** Turns a command-line string into the key's type ("true", "1e6", "151_936", "silu"). */
export function coerceValue(key: string, spec: KeySpec, text: string, source: string): Scalar {
  const t = text.trim();
  switch (spec.kind) {
    case 'int':
    case 'number': {
      const x = Number(t.replace(/_/g, ''));
      if (t === '' || !Number.isFinite(x))
        throw new ConfigError(`${source}: key '${key}' expects a number, got '${text}'`);
      return x;
    }
    case 'bool': {
      const l = t.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(l)) return true;
      if (['false', '0', 'no', 'off'].includes(l)) return false;
      throw new ConfigError(`${source}: key '${key}' expects true or false, got '${text}'`);
    }
    case 'enum':
    case 'string':
      return t;
  }
}

/** Parses ["key=value", ...] against a table (types coerced, unknown keys rejected); does not range-check. */
export function parseOverrides(table: KeyTable, items: readonly string[], source: string): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  const problems: string[] = [];
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      problems.push(`${source}: '${item}' is not of the form key=value (e.g. n_layer=12)`);
      continue;
    }
    const key = item.slice(0, eq).trim();
    const spec = table[key];
    if (!spec) {
      problems.push(unknownKeyMessage(key, source, Object.keys(table)));
      continue;
    }
    try {
      out[key] = coerceValue(key, spec, item.slice(eq + 1), source);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  throwProblems(source, problems);
  return out;
}

/** One line per key: name, kind/values, default, help. For `--help` output and docs. */
export function describeTable(table: KeyTable): string[] {
  const lines: string[] = [];
  for (const [k, s] of Object.entries(table)) {
    let kind: string = s.kind;
    if (s.kind === 'enum') kind = s.values.join('|');
    else if (s.kind === 'int' || s.kind === 'number') {
      const r = rangeText(s);
      if (r) kind += ` ${r}`;
    }
    const def = typeof s.default === 'function' ? (s.defaultHelp ?? 'derived') : JSON.stringify(s.default);
    lines.push(`${k.padEnd(16)} ${kind.padEnd(26)} default ${def}. ${s.help}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------
// The model configuration
// ---------------------------------------------------------------------------------------------------------------

const fam = (r: Readonly<Record<string, unknown>>): string => String(r['family']);
const num = (r: Readonly<Record<string, unknown>>, k: string): number => Number(r[k]);

/**
 * Every model key. Defaults of architectural keys follow the family (GPT-2: LayerNorm, learned positions, MLP with
 * GELU-tanh and biases, tied; Llama: RMSNorm, RoPE 1e4, SwiGLU, untied; Qwen3: as Llama plus QK-norm, RoPE 1e6,
 * tied as the small Qwen3 models are); an empty record gives a small Qwen3-style model.
 */
export const MODEL_KEYS = {
  family: {
    kind: 'enum', values: ['qwen3', 'llama', 'gpt2'] as const, default: 'qwen3',
    help: 'Hugging Face layout used for import/export and for the other keys\' defaults',
  },
  vocab_size: { kind: 'int', min: 1, default: 151936, help: 'embedding rows (token ids 0..vocab_size-1)' },
  hidden_size: { kind: 'int', min: 1, default: 128, help: 'residual stream width' },
  n_layer: { kind: 'int', min: 1, default: 4, help: 'transformer blocks' },
  n_head: { kind: 'int', min: 1, default: 4, help: 'query heads' },
  n_kv_head: {
    kind: 'int', min: 1, default: (r) => num(r, 'n_head'), defaultHelp: 'n_head (MHA)',
    help: 'key/value heads: n_head = MHA, fewer = GQA, 1 = MQA; must divide n_head',
  },
  head_dim: {
    kind: 'int', min: 1,
    default: (r) => {
      const h = num(r, 'hidden_size'), n = num(r, 'n_head');
      if (h % n !== 0)
        throw new Error(`hidden_size ${h} is not divisible by n_head ${n}, so head_dim has no default; set head_dim`);
      return h / n;
    },
    defaultHelp: 'hidden_size / n_head',
    help: 'width of each head (its own setting: Qwen3-0.6B has 1024 / 16 = 64 but head_dim 128)',
  },
  ffn: {
    kind: 'enum', values: ['swiglu', 'mlp'] as const, default: (r) => (fam(r) === 'gpt2' ? 'mlp' : 'swiglu'),
    defaultHelp: "'mlp' for gpt2, else 'swiglu'", help: 'gated (gate/up/down) or plain two-layer feed-forward',
  },
  ffn_hidden: {
    kind: 'int', min: 1, default: (r) => (r['ffn'] === 'mlp' ? 4 : 3) * num(r, 'hidden_size'),
    defaultHelp: '4 x hidden_size for mlp, 3 x for swiglu', help: 'feed-forward inner width',
  },
  activation: {
    kind: 'enum', values: ['silu', 'gelu', 'gelu_tanh'] as const,
    default: (r) => (r['ffn'] === 'swiglu' ? 'silu' : fam(r) === 'gpt2' ? 'gelu_tanh' : 'gelu'),
    defaultHelp: "silu for swiglu, gelu_tanh for gpt2's mlp, else gelu",
    help: 'feed-forward nonlinearity (gelu = erf form, gelu_tanh = GPT-2\'s gelu_new)',
  },
  norm: {
    kind: 'enum', values: ['rmsnorm', 'layernorm'] as const, default: (r) => (fam(r) === 'gpt2' ? 'layernorm' : 'rmsnorm'),
    defaultHelp: 'layernorm for gpt2, else rmsnorm', help: 'normalisation layer (layernorm has a bias)',
  },
  norm_position: {
    kind: 'enum', values: ['pre', 'post'] as const, default: 'pre',
    help: 'pre-norm (x + f(norm(x))) or post-norm (norm(x + f(x))); only pre exports to Hugging Face',
  },
  norm_eps: {
    kind: 'number', min: 0, exclusiveMin: true, max: 1, default: (r) => (fam(r) === 'qwen3' ? 1e-6 : 1e-5),
    defaultHelp: '1e-6 for qwen3, else 1e-5', help: 'epsilon inside the norm\'s square root',
  },
  positions: {
    kind: 'enum', values: ['rope', 'learned'] as const, default: (r) => (fam(r) === 'gpt2' ? 'learned' : 'rope'),
    defaultHelp: 'learned for gpt2, else rope', help: 'rotary (half-split) or a learned position table',
  },
  rope_theta: {
    kind: 'number', min: 0, exclusiveMin: true, default: (r) => (fam(r) === 'qwen3' ? 1e6 : 1e4),
    defaultHelp: '1e6 for qwen3, else 1e4', help: 'RoPE base (ignored with learned positions)',
  },
  context_length: {
    kind: 'int', min: 1, default: (r) => (fam(r) === 'gpt2' ? 1024 : 2048),
    defaultHelp: '1024 for gpt2, else 2048', help: 'maximum sequence length (rows of the learned position table)',
  },
  qk_norm: {
    kind: 'bool', default: (r) => fam(r) === 'qwen3', defaultHelp: 'true for qwen3',
    help: 'RMSNorm over head_dim on each query and key head before RoPE (Qwen3)',
  },
  attention_bias: {
    kind: 'bool', default: (r) => fam(r) === 'gpt2', defaultHelp: 'true for gpt2', help: 'bias on q/k/v/o projections',
  },
  mlp_bias: {
    kind: 'bool', default: (r) => fam(r) === 'gpt2', defaultHelp: 'true for gpt2', help: 'bias on feed-forward projections',
  },
  tie_embeddings: {
    kind: 'bool', default: (r) => fam(r) !== 'llama', defaultHelp: 'false for llama, else true',
    help: 'lm_head shares the token embedding matrix',
  },
  init_std: { kind: 'number', min: 0, exclusiveMin: true, max: 1, default: 0.02, help: 'std of the normal weight init' },
} as const satisfies KeyTable;

// Compile-time proof that the table and the ModelConfig type describe the same record (both directions).
type TableConfig = RecordOf<typeof MODEL_KEYS>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const tableMatchesType: Same<TableConfig, ModelConfig> = true;
void tableMatchesType;

/** Cross-key rules; each message names the keys and the fix. */
export function modelConfigProblems(c: ModelConfig, source: string): string[] {
  const p: string[] = [];
  if (c.n_head % c.n_kv_head !== 0)
    p.push(`${source}: n_head ${c.n_head} is not a multiple of n_kv_head ${c.n_kv_head}; ` +
      `set n_kv_head to a divisor of n_head (${divisors(c.n_head).join(', ')})`);
  if (c.positions === 'rope' && c.head_dim % 2 !== 0)
    p.push(`${source}: head_dim ${c.head_dim} is odd but RoPE rotates pairs of dimensions; use an even head_dim or positions 'learned'`);
  return p;
}

/** Divisors of n in increasing order (trial division up to sqrt(n), so a huge n cannot hang the message). */
function divisors(n: number): number[] {
  const low: number[] = [];
  const high: number[] = [];
  for (let i = 1; i * i <= n && i <= 1e6; i++) {
    if (n % i !== 0) continue;
    low.push(i);
    if (i * i !== n) high.unshift(n / i);
  }
  return [...low, ...high];
}

/** Allowed but unusual combinations worth a line in the log (not errors). */
export function configNotes(c: ModelConfig): string[] {
  const n: string[] = [];
  if (c.ffn === 'swiglu' && c.activation !== 'silu')
    n.push(`ffn 'swiglu' with activation '${c.activation}' is a gated ${c.activation.toUpperCase()} unit (GeGLU-style), not SwiGLU`);
  if (c.ffn === 'mlp' && c.activation === 'silu') n.push(`ffn 'mlp' with activation 'silu': a plain two-layer MLP with SiLU`);
  if (c.family === 'qwen3' && !c.qk_norm)
    n.push('family qwen3 without qk_norm cannot be exported as Qwen3 (export it as llama or set qk_norm=true)');
  if (c.positions === 'learned' && c.family !== 'gpt2') n.push(`learned positions with family '${c.family}' cannot be exported to Hugging Face ${c.family}`);
  if (c.norm_position === 'post') n.push('post-norm blocks cannot be exported to any Hugging Face family');
  return n;
}

/** Validates a raw model config object (defaults filled, all problems reported at once). */
export function validateModelConfig(raw: unknown, source: string): ModelConfig {
  const cfg: ModelConfig = validateRecord(MODEL_KEYS, raw, source);
  throwProblems(source, modelConfigProblems(cfg, source));
  return cfg;
}

/** The configuration an empty record gives: a small Qwen3-style model with the real vocabulary. */
export function defaultModelConfig(): ModelConfig {
  return validateModelConfig({}, 'defaults');
}
