/**
 * Seeded fuzzing of the inputs a user hands lmforge: safetensors files (headers, length fields, truncation),
 * dataset manifests (with the loader reading real shards), and configs (--set overrides, model configs, Hugging
 * Face config.json). Every case must either work or fail with a clear error: an Error that names its source, not
 * a TypeError / RangeError from deep inside, never a crash or a hang.
 *
 * `npm test` runs FUZZ_CASES (a few hundred) per target in a few seconds; LMFORGE_FUZZ_CASES raises it
 * (`npm run test:faults` runs thousands). LMFORGE_FUZZ_SEED changes the seed; a failure prints seed and case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseSafetensorsHeader, readSafetensors, writeSafetensors, type WritableDType } from '../src/io/safetensors.js';
import { datasetInfo, openLoader } from '../src/data/loader.js';
import { MANIFEST_FILE } from '../src/data/manifest.js';
import { ShardWriter } from '../src/data/shard.js';
import { loadTrainConfig, TRAIN_KEYS } from '../src/config/train.js';
import { MODEL_KEYS, validateModelConfig } from '../src/config/schema.js';
import { fromHfConfig } from '../src/config/hf-config.js';
import { getPreset } from '../src/config/presets.js';
import { toHfConfig } from '../src/config/hf-config.js';
import { rng } from './data/helpers.js';

const CASES = Number(process.env.LMFORGE_FUZZ_CASES ?? 300);
const SEED = Number(process.env.LMFORGE_FUZZ_SEED ?? 20250101);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-fuzz-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** The shared seeded generator (test/data/helpers.ts) with the two draws the fuzzer needs. */
function prng(seed: number) {
  const next = rng(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  return { next, int, pick };
}
type Prng = ReturnType<typeof prng>;

/** Hostile JSON values: wrong types, edge numbers, deep and odd strings. */
function wildValue(r: Prng, depth = 0): unknown {
  const simple: unknown[] = [
    null, true, false, 0, -1, 1, 2, 7, 1.5, -0.5, 1e300, -1e300, 2 ** 53, 2 ** 64, Number.MAX_SAFE_INTEGER, 4294967295,
    '', 'x', '0', '-1', '1e3', 'NaN', 'Infinity', 'F32', 'BF16', 'I64', '../../etc/passwd', '/etc/passwd', 'a/b', '.', '..',
    '\u0000', '\ud800', 'é', 'train-00000.bin', [], {}, [0], [0, 0], [1, 2, 3], [-1, 4], [0, 2 ** 60], ['1', '2'],
  ];
  if (depth < 2 && r.next() < 0.15) {
    return r.next() < 0.5
      ? Array.from({ length: r.int(4) }, () => wildValue(r, depth + 1))
      : Object.fromEntries(Array.from({ length: r.int(3) }, (_, i) => [`k${i}`, wildValue(r, depth + 1)]));
  }
  return r.pick(simple);
}

/** Replaces, deletes or adds one field somewhere inside a JSON value. */
function mutateJson(v: unknown, r: Prng): unknown {
  if (v === null || typeof v !== 'object') return wildValue(r);
  const copy: Record<string, unknown> | unknown[] = Array.isArray(v) ? [...v] : { ...(v as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const roll = r.next();
  if (keys.length === 0 || roll < 0.1) {
    (copy as Record<string, unknown>)[r.pick(['extra', '__metadata__', 'splits', 'shards', 'file', 'dtype', '0'])] = wildValue(r);
    return copy;
  }
  const k = r.pick(keys);
  const rec = copy as Record<string, unknown>;
  if (roll < 0.3) delete rec[k];
  else if (roll < 0.6) rec[k] = wildValue(r);
  else rec[k] = mutateJson(rec[k], r);
  return copy;
}

/** An error is clear when it is not an internal JavaScript error and names where the problem is. */
function assertClear(e: unknown, mustMention: string, what: string): void {
  assert.ok(e instanceof Error, `${what}: threw a non-Error ${String(e)}`);
  assert.ok(!['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError'].includes(e.name), `${what}: ${e.name}: ${e.message}`);
  assert.doesNotMatch(e.message, /Cannot read propert|is not a function|is not iterable|Maximum call stack|Invalid array length/, what);
  assert.ok(e.message.includes(mustMention), `${what}: the message does not name ${mustMention}: ${e.message}`);
}

function runCase(what: string, mustMention: string, body: () => void): void {
  try {
    body();
  } catch (e) {
    assertClear(e, mustMention, what);
  }
}

async function runCaseAsync(what: string, mustMention: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    assertClear(e, mustMention, what);
  }
}

test(`safetensors: ${CASES} mutated headers and files give a file that reads or a clear error`, () => {
  const r = prng(SEED);
  const dtypes: WritableDType[] = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32'];
  for (let c = 0; c < CASES; c++) {
    const what = `safetensors case ${c} (seed ${SEED})`;
    const file = path.join(tmp, `f${c % 8}.safetensors`);
    const tensors = Array.from({ length: 1 + r.int(3) }, (_, i) => {
      const dtype = r.pick(dtypes);
      const shape = Array.from({ length: r.int(3) }, () => r.int(4));
      const n = shape.reduce((a, b) => a * b, 1);
      const data = dtype === 'I64' ? new BigInt64Array(n) : dtype === 'I32' ? new Int32Array(n) : dtype === 'F64' ? new Float64Array(n) : new Float32Array(n);
      return { name: `t${i}`, dtype, shape, data };
    });
    writeSafetensors(file, tensors, r.next() < 0.3 ? { format: 'pt' } : undefined);
    let bytes = new Uint8Array(fs.readFileSync(file));
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const kind = r.int(5);
    if (kind === 0) {
      // JSON-level mutation of the header, parsed directly.
      const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8')) as unknown;
      let m = header;
      for (let k = 1 + r.int(3); k > 0; k--) m = mutateJson(m, r);
      const json = JSON.stringify(m) ?? 'null';
      runCase(what, 'mutated.safetensors', () => void parseSafetensorsHeader(json, bytes.length - 8 - headerLen, 'mutated.safetensors', json.length));
      continue;
    }
    if (kind === 1) for (let k = 1 + r.int(4); k > 0; k--) bytes[8 + r.int(headerLen)] = r.int(256); // header bytes
    if (kind === 2) new DataView(bytes.buffer).setBigUint64(0, BigInt(r.pick([0, 1, 7, headerLen - 1, headerLen + 1, 2 ** 40, r.int(bytes.length)])), true);
    if (kind === 3) bytes = bytes.subarray(0, r.int(bytes.length)); // truncation
    if (kind === 4) bytes = Buffer.concat([bytes, Buffer.alloc(1 + r.int(16), 7)]); // appended bytes
    fs.writeFileSync(file, bytes);
    runCase(what, file, () => {
      const st = readSafetensors(file);
      try {
        for (const name of st.names()) {
          const t = st.info(name);
          if (t.dtype.startsWith('F') || t.dtype === 'BF16') st.toFloat32(name);
          else st.toBigInt64(name);
        }
      } finally {
        st.close();
      }
    });
  }
});

test(`manifests: ${CASES} mutated manifests over real shards give a working loader or a clear error`, async () => {
  const r = prng(SEED + 1);
  const ds = path.join(tmp, 'ds');
  fs.mkdirSync(ds);
  const shards: Record<'train' | 'val', { file: string; tokens: number; bytes: number; sha256: string }[]> = { train: [], val: [] };
  for (const [split, sizes] of [['train', [300, 200]], ['val', [120]]] as const) {
    sizes.forEach((n, i) => {
      const file = `${split}-0000${i}.bin`;
      const w = new ShardWriter(path.join(ds, file), 1000, n);
      w.append(Uint32Array.from({ length: n }, (_, j) => (j * 37) % 1000));
      const res = w.finish();
      shards[split].push({ file, tokens: res.tokens, bytes: res.bytes, sha256: res.sha256 });
    });
  }
  const split = (s: 'train' | 'val') => ({ docs: 3, tokens: shards[s].reduce((a, b) => a + b.tokens, 0), textBytes: 900, shards: shards[s] });
  const good = {
    format: 'lmforge-token-shards', version: 1,
    tokenizer: { sha256: 'x', file: 'tokenizer.json', vocabSize: 1000, eotId: 999, addedTokensInText: false },
    shard: { headerBytes: 32, dtype: 'uint32', separator: 'eot-after-each-document' },
    settings: {}, splitRule: 'every-1/f-th-document', sources: [], docs: { read: 6, accepted: 6, skipped: 0 }, skipped: {},
    splits: { train: split('train'), val: split('val') },
  };
  const manifest = path.join(ds, MANIFEST_FILE);
  fs.writeFileSync(manifest, JSON.stringify(good));
  const L = await openLoader({ dir: ds, split: 'train', seq: 8, batch: 2 });
  L.next();
  L.close();
  for (let c = 0; c < CASES; c++) {
    let m: unknown = good;
    for (let k = 1 + r.int(3); k > 0; k--) m = mutateJson(m, r);
    const text = r.next() < 0.05 ? JSON.stringify(m).slice(0, r.int(200)) : JSON.stringify(m) ?? 'null';
    fs.writeFileSync(manifest, text);
    await runCaseAsync(`manifest case ${c} (seed ${SEED + 1}): ${text.slice(0, 300)}`, ds, async () => {
      datasetInfo(ds);
      for (const s of ['train', 'val'] as const) {
        const loader = await openLoader({ dir: ds, split: s, seq: 1 + r.int(20), batch: 1 + r.int(3), order: r.next() < 0.5 ? 'random' : 'sequential' });
        try {
          for (let b = 0; b < 3; b++) loader.next();
        } finally {
          loader.close();
        }
      }
    });
  }
});

test(`configs: ${CASES} random --set lists, model configs and HF config.json files give a config or a clear error`, () => {
  const r = prng(SEED + 2);
  const trainKeys = Object.keys(TRAIN_KEYS).filter((k) => k !== 'data' && k !== 'init_from');
  const modelKeys = Object.keys(MODEL_KEYS);
  const values = ['0', '-1', '1', '2', '3', '1e9', '1e-9', 'NaN', 'Infinity', '-Infinity', '', 'x', 'true', 'no', '0.5', '1.5', '2e3', '128', 'qwen3', 'gpt2', 'cpu-tiny', '07', '0x10', ' 3 '];
  const preset = getPreset('cpu-tiny');
  const hf = toHfConfig(preset);
  for (let c = 0; c < CASES; c++) {
    const sets = Array.from({ length: r.int(5) }, () => {
      const key = r.next() < 0.3 ? `model.${r.pick(modelKeys)}` : r.next() < 0.1 ? `${r.pick(trainKeys)}x` : r.pick(trainKeys);
      return r.next() < 0.05 ? key : `${key}=${r.pick(values)}`;
    });
    runCase(`--set case ${c} (seed ${SEED + 2}): ${sets.join(' ')}`, '', () => void loadTrainConfig(undefined, sets));
    let own: unknown = preset;
    for (let k = 1 + r.int(3); k > 0; k--) own = mutateJson(own, r);
    runCase(`model config case ${c}: ${JSON.stringify(own)}`, 'fuzz-model.json', () => void validateModelConfig(own, 'fuzz-model.json'));
    let h: unknown = hf;
    for (let k = 1 + r.int(3); k > 0; k--) h = mutateJson(h, r);
    runCase(`HF config case ${c}: ${JSON.stringify(h)}`, 'config.json', () => void fromHfConfig(h, 'config.json'));
  }
});
