/**
 * The sweep file (YAML or JSON): a base training config, overrides common to every run, what each run holds
 * fixed, and the variants as a grid or a list. Example (config/ablations/cpu/gqa.yaml):
 *
 *   name: gqa-cpu
 *   base: ../../cpu_tiny.yaml          # relative to the sweep file
 *   set: { eval_every: 32, sample_tokens: 0 }
 *   hold: { tokens: 262144, seed: 1337, data: bundled }
 *   grid: { model.n_kv_head: [1, 2, 4] }
 *   assume: { gflops: 150 }            # throughput the dry run's time assumes (or { gpu: b200, mfu: 0.4 })
 *
 * Keys of `set`, `grid` and `variants` are training keys (`seq`, `lr`, ...), model keys as `model.KEY`, or the
 * helper `ffn_ratio` (model.ffn_hidden = ratio x hidden_size, rounded to a multiple of 8).
 */
import * as path from 'node:path';
import { readConfigFile } from '../config/load.js';
import { ConfigError, MODEL_KEYS, nearestNames, type Scalar } from '../config/schema.js';
import { TRAIN_KEYS } from '../config/train.js';
import type { Throughput } from '../plan/run-cost.js';

export interface Hold {
  /** Training tokens per run (steps follow from the batch), or */
  tokens?: number;
  /** training FLOPs per run (tokens = flops / FLOPs per token of each variant). */
  flops?: number;
  /** Seed of initialisation and data order, the same for every run. */
  seed?: number;
  /** The data every run reads. */
  data?: string;
}

export interface SweepSpec {
  name: string;
  /** The sweep file as given. */
  file: string;
  /** Base training config (resolved against the sweep file's folder), or null for the trainer's defaults. */
  base: string | null;
  /** Overrides for every variant, in order. */
  set: Record<string, Scalar>;
  hold: Hold;
  /** One entry per variant: its own name (or null) and the values it sets. */
  variants: { name: string | null; values: Record<string, Scalar> }[];
  /** The keys that vary, in file order. */
  keys: string[];
  assume: Throughput;
}

export class SweepFileError extends ConfigError {}

/** Keys a sweep may set or vary besides `model.*`. */
export const SWEEP_HELPER_KEYS = ['ffn_ratio'] as const;
/** Set by the sweep itself: `steps` follows from the budget, `run_dir` is the variant's directory. */
const OWNED_KEYS = ['steps', 'run_dir'];
const TOP_KEYS = ['name', 'base', 'set', 'hold', 'grid', 'variants', 'assume'];
const HOLD_KEYS = ['tokens', 'flops', 'seed', 'data'];
/** CPU default for the dry run's time: about what `lmforge train` reaches on cpu-tiny on 2 cores. */
export const DEFAULT_ASSUME: Throughput = { gflops: 150 };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Why a key cannot be set by a sweep, or null when it can. */
export function keyProblem(key: string): string | null {
  if (key.startsWith('model.')) {
    const k = key.slice('model.'.length);
    if (Object.hasOwn(MODEL_KEYS, k)) return null;
    const near = nearestNames(k, Object.keys(MODEL_KEYS), 1);
    return `unknown model key '${k}'${near.length ? ` (did you mean 'model.${near[0]}'?)` : ''}`;
  }
  if ((SWEEP_HELPER_KEYS as readonly string[]).includes(key)) return null;
  if (OWNED_KEYS.includes(key)) return `'${key}' is set by the sweep (steps follow from hold.tokens or hold.flops)`;
  if (key === 'model_overrides') return `set model keys one by one as 'model.KEY'`;
  if (Object.hasOwn(TRAIN_KEYS, key)) return null;
  const known = [...Object.keys(TRAIN_KEYS), ...SWEEP_HELPER_KEYS];
  const near = nearestNames(key, known, 1);
  return `unknown key '${key}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; use a training key, model.KEY or ffn_ratio`;
}

function scalar(v: unknown, where: string, problems: string[]): Scalar | undefined {
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  problems.push(`${where}: expected a number, string or true/false, got ${JSON.stringify(v)}`);
  return undefined;
}

function mapping(v: unknown, where: string, problems: string[]): Record<string, Scalar> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) {
    problems.push(`${where}: expected a mapping of key: value`);
    return {};
  }
  const out: Record<string, Scalar> = {};
  for (const [k, x] of Object.entries(v)) {
    const why = keyProblem(k);
    if (why) problems.push(`${where}.${k}: ${why}`);
    const s = scalar(x, `${where}.${k}`, problems);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function positive(v: unknown, where: string, problems: string[]): number | undefined {
  const x = typeof v === 'string' ? Number(v) : v;
  if (typeof x === 'number' && Number.isFinite(x) && x > 0) return x;
  problems.push(`${where}: expected a positive number, got ${JSON.stringify(v)}`);
  return undefined;
}

function parseAssume(v: unknown, problems: string[]): Throughput {
  if (v === undefined) return DEFAULT_ASSUME;
  if (isRecord(v) && 'gflops' in v) {
    const g = positive(v.gflops, 'assume.gflops', problems);
    return { gflops: g ?? 1 };
  }
  if (isRecord(v) && typeof v.gpu === 'string') {
    const mfu = positive(v.mfu ?? 0.4, 'assume.mfu', problems) ?? 0.4;
    if (mfu > 1) problems.push(`assume.mfu: a fraction in (0, 1] (40% is 0.4), got ${mfu}`);
    return { gpu: v.gpu, mfu };
  }
  problems.push(`assume: expected { gflops: N } (achieved GFLOP/s) or { gpu: NAME, mfu: FRACTION }`);
  return DEFAULT_ASSUME;
}

/** Every combination of the grid's values, the first key varying slowest. */
function cartesian(grid: [string, Scalar[]][]): Record<string, Scalar>[] {
  let out: Record<string, Scalar>[] = [{}];
  for (const [k, vs] of grid) out = out.flatMap((o) => vs.map((v) => ({ ...o, [k]: v })));
  return out;
}

/** Parses a sweep object (from a file, or built by a test); every problem is reported at once. */
export function parseSweep(raw: unknown, file: string): SweepSpec {
  const problems: string[] = [];
  if (!isRecord(raw)) throw new SweepFileError(`${file}: expected a mapping with base, hold and grid (or variants)`);
  for (const k of Object.keys(raw))
    if (!TOP_KEYS.includes(k)) {
      const near = nearestNames(k, TOP_KEYS, 1);
      problems.push(`unknown top-level key '${k}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; known: ${TOP_KEYS.join(', ')}`);
    }
  const name = raw.name === undefined ? path.basename(file).replace(/\.(ya?ml|json)$/i, '') : String(raw.name);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) problems.push(`name: '${name}' must be letters, digits, '.', '_' or '-' (it names the sweep directory)`);
  let base: string | null = null;
  if (raw.base !== undefined) {
    if (typeof raw.base !== 'string' || raw.base === '') problems.push(`base: expected the path of a training config file`);
    else base = path.isAbsolute(raw.base) ? raw.base : path.join(path.dirname(file), raw.base);
  }
  const set = mapping(raw.set, 'set', problems);

  const hold: Hold = {};
  if (raw.hold !== undefined && !isRecord(raw.hold)) problems.push('hold: expected a mapping (tokens or flops, seed, data)');
  const h = isRecord(raw.hold) ? raw.hold : {};
  for (const k of Object.keys(h)) if (!HOLD_KEYS.includes(k)) problems.push(`hold.${k}: unknown; a sweep holds ${HOLD_KEYS.join(', ')}`);
  if (h.tokens !== undefined) hold.tokens = positive(h.tokens, 'hold.tokens', problems);
  if (h.flops !== undefined) hold.flops = positive(h.flops, 'hold.flops', problems);
  if ((h.tokens === undefined) === (h.flops === undefined))
    problems.push('hold: give exactly one budget per run, tokens (e.g. tokens: 262144) or flops (e.g. flops: 3e16)');
  if (h.seed !== undefined) {
    if (typeof h.seed === 'number' && Number.isInteger(h.seed) && h.seed >= 0) hold.seed = h.seed;
    else problems.push(`hold.seed: expected a whole number >= 0, got ${JSON.stringify(h.seed)}`);
  }
  if (h.data !== undefined) {
    if (typeof h.data === 'string' && h.data !== '') hold.data = h.data;
    else problems.push(`hold.data: expected a prepared data directory or 'bundled'`);
  }

  const variants: SweepSpec['variants'] = [];
  const keys: string[] = [];
  if ((raw.grid === undefined) === (raw.variants === undefined)) problems.push('give the variants as exactly one of grid (key: [values]) or variants (a list)');
  if (raw.grid !== undefined) {
    if (!isRecord(raw.grid) || Object.keys(raw.grid).length === 0) problems.push('grid: expected a mapping of key: [value, value, ...]');
    else {
      const grid: [string, Scalar[]][] = [];
      for (const [k, vs] of Object.entries(raw.grid)) {
        const why = keyProblem(k);
        if (why) problems.push(`grid.${k}: ${why}`);
        if (!Array.isArray(vs) || vs.length === 0) {
          problems.push(`grid.${k}: expected a non-empty list of values`);
          continue;
        }
        const xs = vs.map((v, i) => scalar(v, `grid.${k}[${i}]`, problems)).filter((v): v is Scalar => v !== undefined);
        if (new Set(xs.map(String)).size !== xs.length) problems.push(`grid.${k}: a value is listed twice`);
        grid.push([k, xs]);
        keys.push(k);
      }
      for (const values of cartesian(grid)) variants.push({ name: null, values });
    }
  }
  if (raw.variants !== undefined) {
    if (!Array.isArray(raw.variants) || raw.variants.length === 0) problems.push('variants: expected a non-empty list of mappings');
    else
      raw.variants.forEach((v, i) => {
        if (!isRecord(v)) {
          problems.push(`variants[${i}]: expected a mapping of key: value (and an optional name)`);
          return;
        }
        const { name: vname, ...rest } = v;
        const values = mapping(rest, `variants[${i}]`, problems);
        for (const k of Object.keys(values)) if (!keys.includes(k)) keys.push(k);
        variants.push({ name: vname === undefined ? null : String(vname), values });
      });
  }
  for (const k of keys) {
    if (k in set) problems.push(`'${k}' is both varied and set for every run; drop it from set`);
    if ((k === 'seed' && hold.seed !== undefined) || (k === 'data' && hold.data !== undefined))
      problems.push(`'${k}' is both varied and held fixed (hold.${k}); drop one`);
  }
  const assume = parseAssume(raw.assume, problems);
  if (problems.length) throw new SweepFileError(`${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`}`, problems);
  return { name, file, base, set, hold, variants, keys, assume };
}

export function readSweepFile(file: string): SweepSpec {
  return parseSweep(readConfigFile(file), file);
}
