import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyOverrides, loadModelConfig, loadModelConfigWithSource, readConfigFile } from '../../src/config/load.js';
import { getPreset } from '../../src/config/presets.js';
import { ConfigError } from '../../src/config/schema.js';
import { GOLDEN_FIXTURES } from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-load-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string) => { const f = path.join(tmp, name); fs.writeFileSync(f, text); return f; };
const throwsMsg = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => (e instanceof ConfigError && re.test(e.message)) || assert.fail(String(e)));

test('preset names', () => {
  assert.deepEqual(loadModelConfig('qwen3-0.6b'), getPreset('qwen3-0.6b'));
  assert.equal(loadModelConfigWithSource('gpt2').kind, 'preset');
  throwsMsg(() => loadModelConfig('qwen3-06b'), /'qwen3-06b' is neither a preset nor an existing file or directory\. Did you mean preset 'qwen3-0\.6b'\?/);
});

test('our JSON and YAML files, with and without a base preset', () => {
  const j = write('m.json', JSON.stringify({ family: 'llama', hidden_size: 256, n_head: 4, n_layer: 2, vocab_size: 1000 }));
  const c = loadModelConfig(j);
  assert.deepEqual([c.family, c.head_dim, c.n_kv_head, c.tie_embeddings], ['llama', 64, 4, false]);
  const y = write('m.yaml', '# a comment\nfamily: gpt2\nhidden_size: 128\nn_head: 4\nn_layer: 2\nvocab_size: 500\ncontext_length: 64\n');
  const g = loadModelConfig(y);
  assert.deepEqual([g.family, g.norm, g.positions, g.context_length, g.ffn_hidden], ['gpt2', 'layernorm', 'learned', 64, 512]);
  const p = write('p.yml', 'preset: cpu-small\nn_layer: 2\n');
  assert.deepEqual(loadModelConfig(p), { ...getPreset('cpu-small'), n_layer: 2 });
  assert.equal(loadModelConfigWithSource(p).kind, 'file');
  throwsMsg(() => loadModelConfig(write('bad.json', '{"n_heads": 4}')), /unknown key 'n_heads' in .*bad\.json; did you mean 'n_head'\?/);
  throwsMsg(() => loadModelConfig(write('bad2.json', '{"n_head": 4,}')), /bad2\.json: not valid JSON/);
  throwsMsg(() => loadModelConfig(write('bad.yaml', 'n_head: [1,\n')), /bad\.yaml: not valid YAML/);
  throwsMsg(() => loadModelConfig(write('bad3.yaml', 'preset: nope\n')), /unknown preset 'nope'/);
  throwsMsg(() => readConfigFile(path.join(tmp, 'absent.json')), /cannot read \(ENOENT\)/);
});

test('a Hugging Face config.json file', () => {
  const c = loadModelConfigWithSource(path.join(GOLDEN_FIXTURES, 'qwen3-tiny', 'config.json'));
  assert.equal(c.kind, 'hf');
  assert.equal(c.config.head_dim, 32);
  assert.equal(c.config.qk_norm, true);
  throwsMsg(() => loadModelConfig(GOLDEN_FIXTURES), /is a directory; model directories are read by loadModelSpec/);
});

test('overrides', () => {
  const c = applyOverrides(getPreset('cpu-tiny'), ['n_layer=2', 'rope_theta=1e4', 'tie_embeddings=false'], '--set');
  assert.deepEqual([c.n_layer, c.rope_theta, c.tie_embeddings], [2, 1e4, false]);
  assert.equal(applyOverrides(c, []), c);
  throwsMsg(() => applyOverrides(c, ['n_kv_head=3']), /n_head 4 is not a multiple of n_kv_head 3/);
  throwsMsg(() => applyOverrides(c, ['n_layers=3']), /did you mean 'n_layer'/);
  throwsMsg(() => applyOverrides(c, ['n_layer=0']), /'n_layer' is 0 but must be >= 1/);
});
