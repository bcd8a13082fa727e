/**
 * Hugging Face checkpoint folders: `model.safetensors`, or shards listed by `model.safetensors.index.json`, plus
 * `config.json`. Moves named tensors in and out; mapping names to our parameter layout is src/model's job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Family, ModelConfig } from '../config/model.js';
import { nearestNames } from '../config/schema.js';
import { fromHfConfig, toHfConfig } from '../config/hf-config.js';
import type { TensorSource } from './tensor-source.js';
import { publishDir, removeStaleTemps, tmpPath, writeFileAtomic } from '../files/atomic.js';
import {
  SafetensorsError, readSafetensors, storedBytes, writeSafetensors,
  type SafetensorsDType, type SafetensorsFile, type TensorData,
} from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface HfTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: SafetensorsDType;
  /** Reads the tensor from disk and converts it to float32 (each call reads again). */
  toFloat32(): Float32Array;
}

export interface HfCheckpoint {
  readonly dir: string;
  /** Every tensor name, sorted (a fresh array). */
  names(): string[];
  has(name: string): boolean;
  get(name: string): HfTensor;
  /** config.json mapped to a ModelConfig (errors if the folder has none or it is unsupported). */
  readConfig(): ModelConfig;
  close(): void;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

function listDir(dir: string): string {
  try {
    const files = fs.readdirSync(dir);
    return files.length ? files.slice(0, 20).join(', ') + (files.length > 20 ? ', ...' : '') : '(empty)';
  } catch {
    return '(unreadable)';
  }
}

function readIndex(file: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${file}: not valid JSON (${(e as Error).message}); re-download or re-export the checkpoint`);
  }
  const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map))
    throw new CheckpointError(`${file}: has no "weight_map" object mapping tensor names to shard files`);
  for (const [k, v] of Object.entries(map as Record<string, unknown>)) {
    if (typeof v !== 'string' || v.includes('/') || v.includes('\\') || v.startsWith('.'))
      throw new CheckpointError(`${file}: weight_map["${k}"] = ${JSON.stringify(v)} is not a shard file name in this folder`);
  }
  return map as Record<string, string>;
}

/** Opens a checkpoint folder (or a single .safetensors file); every shard's header is checked up front. */
export function openHfCheckpoint(dir: string): HfCheckpoint {
  let files: Map<string, SafetensorsFile>;
  const where = new Map<string, string>(); // tensor -> shard file name
  const folder = fs.existsSync(dir) && fs.statSync(dir).isFile() ? path.dirname(dir) : dir;
  const indexPath = path.join(folder, INDEX_FILE);
  const opened: SafetensorsFile[] = [];
  const open = (name: string): SafetensorsFile => {
    const f = readSafetensors(path.join(folder, name));
    opened.push(f);
    return f;
  };
  try {
    if (dir !== folder) {
      files = new Map([[path.basename(dir), open(path.basename(dir))]]);
    } else if (fs.existsSync(indexPath)) {
      const map = readIndex(indexPath);
      const shards = [...new Set(Object.values(map))].sort();
      const missing = shards.filter((s) => !fs.existsSync(path.join(folder, s)));
      if (missing.length)
        throw new CheckpointError(
          `${folder}: ${INDEX_FILE} lists shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} but ` +
          `${missing.length > 1 ? 'they are' : 'it is'} missing (e.g. tensor '${Object.keys(map).find((k) => map[k] === missing[0])}'); ` +
          `download the missing shard${missing.length > 1 ? 's' : ''}`);
      files = new Map(shards.map((s) => [s, open(s)]));
      for (const [name, shard] of Object.entries(map)) {
        if (!files.get(shard)!.has(name))
          throw new CheckpointError(`${folder}: ${INDEX_FILE} puts tensor '${name}' in ${shard}, but that shard does not hold it`);
      }
    } else if (fs.existsSync(path.join(folder, SINGLE_FILE))) {
      files = new Map([[SINGLE_FILE, open(SINGLE_FILE)]]);
    } else if (!fs.existsSync(folder)) {
      throw new CheckpointError(`${folder}: no such directory`);
    } else {
      throw new CheckpointError(
        `${folder}: no ${SINGLE_FILE} or ${INDEX_FILE} here (found: ${listDir(folder)}). ` +
        'Only safetensors checkpoints are read; convert pytorch_model.bin with transformers\' save_pretrained(safe_serialization=True)');
    }
  } catch (e) {
    for (const f of opened) f.close();
    throw e;
  }
  for (const [shard, f] of files) {
    for (const n of f.names()) {
      const prev = where.get(n);
      if (prev !== undefined && prev !== shard) {
        for (const g of opened) g.close();
        throw new CheckpointError(`${folder}: tensor '${n}' appears in both ${prev} and ${shard}`);
      }
      where.set(n, shard);
    }
  }
  const names = [...where.keys()].sort();
  return {
    dir: folder,
    names: () => [...names],
    has: (name) => where.has(name),
    get(name) {
      const shard = where.get(name);
      if (shard === undefined) {
        const near = nearestNames(name, names, 4);
        throw new CheckpointError(
          `${folder}: no tensor '${name}' in the checkpoint (${names.length} tensors)` +
          (near.length ? `; nearest names: ${near.join(', ')}` : '') +
          '. Is this checkpoint of the family and size the config says?');
      }
      const f = files.get(shard)!;
      const info = f.info(name);
      return { name, shape: info.shape, dtype: info.dtype, toFloat32: () => f.toFloat32(name) };
    },
    readConfig() {
      const file = path.join(folder, 'config.json');
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new CheckpointError(`${file}: cannot read it as JSON (${(e as Error).message})`);
      }
      return fromHfConfig(raw, file);
    },
    close() {
      for (const f of files.values()) f.close();
    },
  };
}

export interface TensorOut {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

export interface SaveOptions {
  /** Stored dtype: F32 (default) or BF16 (round to nearest even). */
  dtype?: 'F32' | 'BF16';
  /** Start a new shard when the current one would pass this many bytes (default: one file). */
  maxShardBytes?: number;
  /** Family to export as (default cfg.family). */
  family?: Family;
  /** Extra files to write alongside (e.g. generation_config.json), name -> contents. */
  extraFiles?: Readonly<Record<string, string>>;
}

/** Splits tensors, in order, into shards of at most maxBytes each (a larger tensor gets a shard of its own). */
export function planShards<T extends { shape: readonly number[] }>(tensors: readonly T[], dtype: SafetensorsDType, maxBytes: number): T[][] {
  const shards: T[][] = [];
  let cur: T[] = [], size = 0;
  for (const t of tensors) {
    const b = storedBytes(t.shape, dtype);
    if (cur.length && size + b > maxBytes) {
      shards.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += b;
  }
  if (cur.length || shards.length === 0) shards.push(cur);
  return shards;
}

/** Whether a file name is one of the weight files a save writes (single file, index, or numbered shard). */
export const isWeightsFile = (f: string): boolean =>
  f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f);

/**
 * Writes config.json and the weights (one file, or shards plus index) into `dir`. Everything is first written to
 * a temporary sibling folder (`DIR.tmp-<pid>`); a new `dir` is then renamed into place in one step, an existing
 * one gets each file renamed in: files of the same name are replaced, weight files of an earlier save that this
 * one does not write are removed (they would contradict the new index), and every other file is kept.
 * Callers decide whether an existing non-empty `dir` may be written at all (files/atomic.ts checkOutputDir).
 */
export function saveHfCheckpoint(dir: string, cfg: ModelConfig, tensors: readonly TensorOut[], opts: SaveOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const config = toHfConfig(cfg, { family: opts.family, dtype: dtype === 'BF16' ? 'bfloat16' : 'float32' });
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new CheckpointError(`saveHfCheckpoint: tensor '${t.name}' is given twice`);
    seen.add(t.name);
  }
  for (const name of Object.keys(opts.extraFiles ?? {}))
    if (name.includes('/') || name.includes('\\') || name.startsWith('.'))
      throw new CheckpointError(`saveHfCheckpoint: extra file name '${name}' must be a plain file name`);
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  removeStaleTemps(parent, (n) => n.startsWith(`${path.basename(path.resolve(dir))}.tmp-`));
  const tmp = tmpPath(path.resolve(dir));
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    const shards = planShards(tensors, dtype, opts.maxShardBytes ?? Number.POSITIVE_INFINITY);
    const meta = { format: 'pt' };
    const toWrite = (ts: readonly TensorOut[]) => ts.map((t) => ({ name: t.name, dtype, shape: t.shape, data: t.data as TensorData }));
    if (shards.length === 1) {
      writeSafetensors(path.join(tmp, SINGLE_FILE), toWrite(shards[0]!), meta);
    } else {
      const n = String(shards.length).padStart(5, '0');
      const weightMap: Record<string, string> = {};
      let totalSize = 0, totalParams = 0;
      shards.forEach((s, i) => {
        const file = `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`;
        writeSafetensors(path.join(tmp, file), toWrite(s), meta);
        for (const t of s) {
          weightMap[t.name] = file;
          totalSize += storedBytes(t.shape, dtype);
          totalParams += t.data.length;
        }
      });
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => a.localeCompare(b)));
      writeFileAtomic(path.join(tmp, INDEX_FILE),
        JSON.stringify({ metadata: { total_size: totalSize, total_parameters: totalParams }, weight_map: sorted }, null, 2) + '\n');
    }
    writeFileAtomic(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileAtomic(path.join(tmp, name), text);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof SafetensorsError) throw new CheckpointError(`saving ${dir}: ${e.message}`);
    throw e;
  }
  publishDir(tmp, dir, isWeightsFile);
}

export interface HfModel {
  /** config.json as a ModelConfig. */
  config: ModelConfig;
  tensors: TensorSource;
  checkpoint: HfCheckpoint;
  close(): void;
}

/** A Hugging Face model folder: its config.json mapped to a ModelConfig plus its tensors, for `init_from`. */
export function openHfModel(dir: string): HfModel {
  const checkpoint = openHfCheckpoint(dir);
  let config: ModelConfig;
  try {
    config = checkpoint.readConfig();
  } catch (e) {
    checkpoint.close();
    throw e;
  }
  return {
    config,
    checkpoint,
    tensors: {
      has: (name) => checkpoint.has(name),
      shape: (name) => [...checkpoint.get(name).shape],
      read: (name) => checkpoint.get(name).toFloat32(),
      names: () => checkpoint.names(),
      close: () => checkpoint.close(),
    },
    close: () => checkpoint.close(),
  };
}
