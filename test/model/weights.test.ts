/** Loading Hugging Face checkpoints into the flat layout: tied heads with or without a duplicate, clear errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadWeights } from '../../src/model/weights.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { goldenCase } from '../helpers.js';

const be = createBackend('cpu');
const golden = goldenCase;

/** Copies a golden model directory, rewriting its safetensors through `edit`. */
function variant(name: string, edit: (t: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[]) => typeof t): string {
  const dir = mkdtempSync(join(tmpdir(), 'lmf-weights-'));
  cpSync(join(golden(name), 'config.json'), join(dir, 'config.json'));
  const st = readSafetensors(join(golden(name), 'model.safetensors'));
  const t = st.names().map((n) => ({ name: n, dtype: 'F32' as const, shape: st.info(n).shape, data: st.toFloat32(n) }));
  st.close();
  writeSafetensors(join(dir, 'model.safetensors'), edit(t));
  return dir;
}

function load(dir: string): Decoder {
  const src = openModelSource(dir);
  const m = new Decoder(be, src.cfg);
  try {
    loadWeights(m, src.tensors, dir);
  } finally {
    src.close();
  }
  return m;
}

test('a tied checkpoint loads with or without a duplicate lm_head.weight', () => {
  const plain = load(golden('qwen3-tiny-tied'));
  const dup = load(variant('qwen3-tiny-tied', (t) => {
    const e = t.find((x) => x.name === 'model.embed_tokens.weight')!;
    return [...t, { ...e, name: 'lm_head.weight' }];
  }));
  const spec = plain.layout.byName.get('model.embed_tokens.weight')!;
  assert.deepEqual(dup.getParam(spec), plain.getParam(spec));
  plain.dispose();
  dup.dispose();
});

test('a missing tensor is named, with a hint', () => {
  const dir = variant('llama-tiny', (t) => t.filter((x) => x.name !== 'model.layers.1.mlp.up_proj.weight'));
  assert.throws(() => load(dir), /model\.layers\.1\.mlp\.up_proj\.weight/);
});

test('a wrong shape names the tensor, both shapes and the likely cause', () => {
  const dir = variant('llama-tiny', (t) => t.map((x) => (x.name === 'model.norm.weight' ? { ...x, shape: [x.data.length / 2, 2] } : x)));
  assert.throws(() => load(dir), /model\.norm\.weight.*\[32, 2\].*\[64\]/);
});

test('a truncated safetensors file is a clear error', () => {
  const dir = variant('llama-tiny', (t) => t);
  const file = join(dir, 'model.safetensors');
  const all = readFileSync(file);
  writeFileSync(file, all.subarray(0, all.length - 100));
  assert.throws(() => load(dir), /truncated/i);
});
