/**
 * Verbs that write never delete what lmforge did not create (import, export, tokenizer save), refuse NaN/Inf
 * weights by name, and generate checks its sampling flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, GOLDEN_FIXTURES } from '../helpers.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const GOLD = join(GOLDEN_FIXTURES, 'qwen3-tiny');
const root = mkdtempSync(join(tmpdir(), 'lmf-outputs-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('import: an existing file or a non-empty directory is never replaced; --force replaces only the model files', () => {
  const file = join(root, 'precious.txt');
  writeFileSync(file, 'precious');
  let r = cli('import', GOLD, '--out', file);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /precious\.txt exists and is not a directory; lmforge never replaces it/);
  assert.equal(readFileSync(file, 'utf8'), 'precious');

  const dir = join(root, 'models');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  writeFileSync(join(dir, 'sub', 'data.bin'), 'mine too');
  r = cli('import', GOLD, '--out', dir);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /models is not empty \(notes\.txt, sub\); .*--force to replace only the files import writes/);
  assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', 'sub']);

  r = cli('import', GOLD, '--out', dir, '--force');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors', 'model_config.json', 'notes.txt', 'sub']);
  assert.equal(readFileSync(join(dir, 'sub', 'data.bin'), 'utf8'), 'mine too');
  r = cli('import', GOLD, '--out', join(root, 'fresh'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(join(root, 'fresh', 'model.safetensors')), readFileSync(join(dir, 'model.safetensors')));
});

test('export: a non-empty --hf is refused; --force keeps other files and removes only stale weight shards', () => {
  const model = join(root, 'export-src');
  assert.equal(cli('import', GOLD, '--out', model).status, 0);
  const out = join(root, 'hf');
  mkdirSync(out);
  writeFileSync(join(out, 'README.md'), 'card');
  writeFileSync(join(out, 'model-00001-of-00003.safetensors'), 'stale shard');
  let r = cli('export', model, '--hf', out);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /hf is not empty .*--force/);
  r = cli('export', model, '--hf', out, '--force');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['README.md', 'config.json', 'model.safetensors']);
  assert.equal(readFileSync(join(out, 'README.md'), 'utf8'), 'card');
});

test('tokenizer save replaces an existing tokenizer.json only with --force', () => {
  const dir = join(root, 'tok');
  mkdirSync(dir);
  writeFileSync(join(dir, 'tokenizer.json'), '{"mine": true}');
  let r = cli('tokenizer', 'save', dir);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /already has tokenizer\.json; .*--force/);
  assert.equal(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), '{"mine": true}');
  r = cli('tokenizer', 'save', dir, '--force');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'tokenizer_config.json')));
});

test('NaN/Inf weights are refused on load, naming the tensor: import and generate', () => {
  const bad = join(root, 'nan-model');
  cpSync(GOLD, bad, { recursive: true });
  const st = readSafetensors(join(GOLD, 'model.safetensors'));
  const tensors = st.names().map((name) => {
    const data = st.toFloat32(name);
    if (name === 'model.layers.0.mlp.up_proj.weight') data[17] = Infinity;
    return { name, dtype: 'F32' as const, shape: st.info(name).shape, data };
  });
  st.close();
  writeSafetensors(join(bad, 'model.safetensors'), tensors);
  for (const args of [['import', bad, '--out', join(root, 'nan-out')], ['generate', '--model', bad, '--prompt-ids', '1,2', '--json']]) {
    const r = cli(...args);
    assert.notEqual(r.status, 0, args[0]);
    assert.match(r.stderr, /tensor 'model\.layers\.0\.mlp\.up_proj\.weight' holds 1 non-finite value\(s\) \(first: Infinity at element 17/);
    assert.equal(r.stdout, '');
  }
  assert.ok(!existsSync(join(root, 'nan-out')));
});

test('generate: --top-k must be a whole number >= 0; more new tokens than the context holds is said, not silent', () => {
  let r = cli('generate', '--model', GOLD, '--prompt-ids', '1,2,3', '--top-k', '-3');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--top-k must be a whole number >= 0/);
  r = cli('generate', '--model', GOLD, '--prompt-ids', '1,2,3', '--max-new-tokens', '200', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: only 125 of the 200 new tokens asked for fit in the model's context_length 128/);
  assert.equal((JSON.parse(r.stdout) as { ids: number[] }).ids.length, 125);
});
