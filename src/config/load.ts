/**
 * Where a model config comes from: a preset name, our JSON/YAML file (optionally `preset: name` plus overrides),
 * or a Hugging Face config.json (directories are read by src/io/model-dir.ts). Also `key=value` overrides with the schema's coercion and checks.
 * The file helpers are generic so the trainer can load its own table the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ModelConfig } from './model.js';
import { PRESETS, getPreset, isPreset } from './presets.js';
import { ConfigError, MODEL_KEYS, nearestNames, parseOverrides, validateModelConfig } from './schema.js';
import { fromHfConfig } from './hf-config.js';

/** Parses a .json, .yaml or .yml file to a plain value; syntax errors name the file and the line. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const ext = path.extname(file).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') {
    try {
      return parseYaml(text, { prettyErrors: true });
    } catch (e) {
      throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const hint = ext === '.json' ? '' : ' (use a .yaml or .yml extension for YAML)';
    throw new ConfigError(`${file}: not valid JSON: ${(e as Error).message}${hint}`);
  }
}

export interface LoadedModelConfig {
  config: ModelConfig;
  /** 'preset', 'file' or 'hf' (a Hugging Face config). */
  kind: 'preset' | 'file' | 'hf';
  /** Preset name or the file that was read. */
  source: string;
}

/** An object of our own schema; `preset: NAME` starts from that preset and the other keys override it. */
function fromOwnRecord(raw: unknown, source: string): ModelConfig {
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'preset' in raw) {
    const { preset, ...rest } = raw as Record<string, unknown>;
    if (typeof preset !== 'string') throw new ConfigError(`${source}: 'preset' must be a preset name (${Object.keys(PRESETS).join(', ')})`);
    return validateModelConfig({ ...getPreset(preset), ...rest }, source);
  }
  return validateModelConfig(raw, source);
}

/** Loads a preset name or a config file (ours or HF's, told apart by `model_type`). */
export function loadModelConfigWithSource(spec: string): LoadedModelConfig {
  if (isPreset(spec)) return { config: getPreset(spec), kind: 'preset', source: spec };
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(spec);
  } catch {
    const near = nearestNames(spec, Object.keys(PRESETS), 1);
    throw new ConfigError(
      `'${spec}' is neither a preset nor an existing file or directory.` +
      (near.length ? ` Did you mean preset '${near[0]}'?` : '') + ` Presets: ${Object.keys(PRESETS).join(', ')}`);
  }
  // Directories (runs, checkpoints, model directories) are io's knowledge: io/model-dir.ts loadModelSpec.
  if (stat.isDirectory()) throw new ConfigError(`${spec}: is a directory; model directories are read by loadModelSpec (src/io/model-dir.ts)`);
  const raw = readConfigFile(spec);
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'model_type' in raw)
    return { config: fromHfConfig(raw, spec), kind: 'hf', source: spec };
  return { config: fromOwnRecord(raw, spec), kind: 'file', source: spec };
}

export function loadModelConfig(spec: string): ModelConfig {
  return loadModelConfigWithSource(spec).config;
}

/** Applies ["key=value", ...] to a config: values coerced to each key's type, then the whole config re-validated. */
export function applyOverrides(cfg: ModelConfig, overrides: readonly string[], source = 'override'): ModelConfig {
  if (overrides.length === 0) return cfg;
  const o = parseOverrides(MODEL_KEYS, overrides, source);
  return validateModelConfig({ ...cfg, ...o }, `${source} (${overrides.join(' ')})`);
}
