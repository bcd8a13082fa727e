import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_FIXTURES } from '../helpers.js';
import { CheckpointError, INDEX_FILE, openHfCheckpoint, openHfModel, planShards, saveHfCheckpoint, type TensorOut } from '../../src/io/hf-checkpoint.js';
import { bf16ToF32, f32ToBf16, readSafetensors } from '../../src/io/safetensors.js';
import { fromHfConfig } from '../../src/config/hf-config.js';

const GOLDEN = GOLDEN_FIXTURES;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-ckpt-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const throwsMsg = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => (e instanceof CheckpointError && re.test(e.message)) || assert.fail(String(e)));

/** The golden qwen3-tiny weights as a tensor list. */
function goldenTensors(name: string): TensorOut[] {
  const st = readSafetensors(`${GOLDEN}/${name}/model.safetensors`);
  try {
    return st.names().map((n) => ({ name: n, shape: st.info(n).shape, data: st.toFloat32(n) }));
  } finally {
    st.close();
  }
}

test('opens the golden checkpoints; tied ones have no lm_head', () => {
  const c = openHfCheckpoint(`${GOLDEN}/qwen3-tiny`);
  try {
    assert.ok(c.has('lm_head.weight'));
    assert.ok(c.has('model.layers.1.self_attn.q_norm.weight'));
    const q = c.get('model.layers.0.self_attn.q_proj.weight');
    assert.deepEqual(q.shape, [4 * 32, 64]);
    assert.equal(q.toFloat32().length, 128 * 64);
    assert.equal(c.readConfig().head_dim, 32);
    throwsMsg(() => c.get('model.layers.0.self_attn.q_nrom.weight'), /no tensor 'model\.layers\.0\.self_attn\.q_nrom\.weight'.*nearest names: model\.layers\.0\.self_attn\.q_norm\.weight/);
  } finally {
    c.close();
  }
  const t = openHfCheckpoint(`${GOLDEN}/qwen3-tiny-tied`);
  assert.equal(t.has('lm_head.weight'), false);
  t.close();
});

test('save then open: single file, f32, exact', () => {
  const cfg = fromHfConfig(JSON.parse(fs.readFileSync(`${GOLDEN}/qwen3-tiny/config.json`, 'utf8')), 'g');
  const ts = goldenTensors('qwen3-tiny');
  const dir = path.join(tmp, 'single');
  saveHfCheckpoint(dir, cfg, ts);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
  const c = openHfCheckpoint(dir);
  try {
    assert.deepEqual(c.names(), ts.map((t) => t.name).sort());
    for (const t of ts) assert.deepEqual(c.get(t.name).toFloat32(), t.data, t.name);
    assert.deepEqual(c.readConfig(), cfg);
  } finally {
    c.close();
  }
  assert.equal(readSafetensors(path.join(dir, 'model.safetensors')).metadata['format'], 'pt');
});

test('save sharded bf16 into an existing folder: index, shards, stale files removed, others kept', () => {
  const cfg = fromHfConfig(JSON.parse(fs.readFileSync(`${GOLDEN}/llama-tiny/config.json`, 'utf8')), 'g');
  const ts = goldenTensors('llama-tiny');
  const dir = path.join(tmp, 'sharded');
  saveHfCheckpoint(dir, cfg, ts); // a single-file version first
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  saveHfCheckpoint(dir, cfg, ts, { dtype: 'BF16', maxShardBytes: 60_000, extraFiles: { 'generation_config.json': '{}' } });
  const files = fs.readdirSync(dir).sort();
  assert.ok(!files.includes('model.safetensors'), 'stale single file removed');
  assert.ok(files.includes('tokenizer.json') && files.includes('generation_config.json') && files.includes(INDEX_FILE));
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length > 1, `shards: ${shards.join(', ')}`);
  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
  const bytes = ts.reduce((s, t) => s + 2 * t.data.length, 0);
  assert.equal(index.metadata.total_size, bytes);
  for (const s of shards) assert.ok(fs.statSync(path.join(dir, s)).size < 60_000 + 4096 || shards.length === ts.length, s);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(config.dtype, 'bfloat16');
  const c = openHfCheckpoint(dir);
  try {
    for (const t of ts) {
      assert.equal(c.get(t.name).dtype, 'BF16');
      assert.deepEqual(c.get(t.name).toFloat32(), bf16ToF32(f32ToBf16(t.data)), t.name);
    }
  } finally {
    c.close();
  }
  // Back to one file: the shards and the index go.
  saveHfCheckpoint(dir, cfg, ts);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
});

test('planShards', () => {
  const t = (n: number) => ({ shape: [n] });
  assert.deepEqual(planShards([t(10), t(10), t(100), t(5)], 'F32', 80).map((s) => s.map((x) => x.shape[0])), [[10, 10], [100], [5]]);
  assert.equal(planShards([], 'F32', 10).length, 1);
});

test('errors: missing shard, index pointing to the wrong shard, no weights, bad config', () => {
  const cfg = fromHfConfig(JSON.parse(fs.readFileSync(`${GOLDEN}/gpt2-tiny/config.json`, 'utf8')), 'g');
  const ts = goldenTensors('gpt2-tiny');
  const dir = path.join(tmp, 'broken');
  saveHfCheckpoint(dir, cfg, ts, { maxShardBytes: 100_000 });
  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
  const shard2 = Object.values(index.weight_map as Record<string, string>).find((f) => f.startsWith('model-00002'))!;
  fs.renameSync(path.join(dir, shard2), path.join(dir, 'moved'));
  throwsMsg(() => openHfCheckpoint(dir), new RegExp(`lists shard ${shard2} but it is missing \\(e\\.g\\. tensor '.*'\\); download the missing shard`));
  fs.renameSync(path.join(dir, 'moved'), path.join(dir, shard2));
  const name = Object.keys(index.weight_map).find((k) => index.weight_map[k] === shard2)!;
  index.weight_map[name] = 'model-00001-of-' + shard2.slice(-17);
  fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify(index));
  throwsMsg(() => openHfCheckpoint(dir), /puts tensor .* in model-00001.*but that shard does not hold it/);
  fs.writeFileSync(path.join(dir, INDEX_FILE), '{"weight_map": {"a": "../etc"}}');
  throwsMsg(() => openHfCheckpoint(dir), /is not a shard file name/);
  const empty = path.join(tmp, 'noweights');
  fs.mkdirSync(empty);
  fs.writeFileSync(path.join(empty, 'pytorch_model.bin'), '');
  throwsMsg(() => openHfCheckpoint(empty), /no model\.safetensors or model\.safetensors\.index\.json here \(found: pytorch_model\.bin\)/);
  throwsMsg(() => openHfCheckpoint(path.join(tmp, 'absent')), /no such directory/);
  assert.throws(() => saveHfCheckpoint(path.join(tmp, 'x'), { ...cfg, n_kv_head: 2 }, ts), /GPT-2 has no GQA/);
  assert.equal(fs.existsSync(path.join(tmp, 'x')), false);
  // A single .safetensors file opens too.
  const one = openHfCheckpoint(`${GOLDEN}/gpt2-tiny/model.safetensors`);
  assert.ok(one.has('transformer.wte.weight'));
  one.close();
});

test('openHfModel: config plus a tensor source for the weight loader', () => {
  const m = openHfModel(`${GOLDEN}/gpt2-tiny`);
  try {
    assert.equal(m.config.family, 'gpt2');
    assert.equal(m.tensors.has('transformer.h.0.attn.c_attn.weight'), true);
    assert.deepEqual(m.tensors.shape('transformer.h.0.attn.c_attn.weight'), [64, 192]); // Conv1D: [in, out]
    assert.equal(m.tensors.read('transformer.h.0.attn.c_attn.weight').length, 64 * 192);
    assert.ok(m.tensors.names().includes('transformer.wpe.weight'));
  } finally {
    m.close();
  }
  const dir = path.join(tmp, 'noconfig');
  fs.mkdirSync(dir);
  fs.copyFileSync(`${GOLDEN}/gpt2-tiny/model.safetensors`, path.join(dir, 'model.safetensors'));
  assert.throws(() => openHfModel(dir), /config\.json: cannot read it as JSON/);
});
