/**
 * The training loop end to end on a tiny model and a tiny prepared corpus: bit-exact resume after an interruption,
 * NaN/Inf guard with the last checkpoint intact, export -> import round trip with identical logits.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { prepare } from '../../src/data/prepare.js';
import { loadTrainConfig, type TrainConfig } from '../../src/config/train.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { train } from './fixture.js';
import { latestCheckpoint } from '../../src/io/run-dir.js';
import { readMetrics } from '../../src/train/metrics.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadWeights } from '../../src/model/weights.js';
import { CLI, REPO_ROOT } from '../helpers.js';

let data = '';
const root = mkdtempSync(join(tmpdir(), 'lmf-train-'));

before(async () => {
  // A small real-text corpus: the repository's own docs, one document per blank-line block.
  const text = ['README.md', 'docs/data.md', 'docs/planning.md']
    .filter((f) => existsSync(join(REPO_ROOT, f)))
    .map((f) => readFileSync(join(REPO_ROOT, f), 'utf8'))
    .join('\n\n');
  const file = join(root, 'corpus.txt');
  writeFileSync(file, text);
  data = join(root, 'data');
  await prepare({ inputs: [file], out: data, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
});

function config(runDir: string, extra: string[] = []): TrainConfig {
  const tc = loadTrainConfig(undefined, [
    'model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'grad_accum=2', 'steps=8', 'warmup_steps=2',
    'eval_every=4', 'eval_batches=2', 'checkpoint_every=3', 'keep_checkpoints=2', 'sample_tokens=0', 'lr=3e-2',
    'model.hidden_size=32', 'model.n_layer=2', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
    ...extra,
  ]);
  tc.run_dir = runDir;
  return tc;
}


function trainLosses(runDir: string): number[] {
  return readMetrics(runDir).filter((r) => r.kind === 'train').map((r) => r.loss as number);
}

test('an interrupted and resumed run equals the uninterrupted run, float for float', async () => {
  const a = join(root, 'straight');
  const ta = await train(config(a), false);
  const wa = ta.model.getParam(ta.model.layout.params[0]!);
  const last = ta.model.layout.params[ta.model.layout.params.length - 1]!;
  const wa2 = ta.model.getParam(last);
  ta.dispose();

  const b = join(root, 'interrupted');
  await assert.rejects(train(config(b), false, 5), /simulated kill/); // dies after the step-3 checkpoint, mid-way
  assert.match(latestCheckpoint(b) ?? '', /step-00000003$/);
  const tb = await train(config(b), true);
  assert.deepEqual(trainLosses(b), trainLosses(a));
  assert.equal(trainLosses(a).length, 8);
  assert.deepEqual(tb.model.getParam(tb.model.layout.params[0]!), wa);
  assert.deepEqual(tb.model.getParam(last), wa2);
  const evals = readMetrics(b).filter((r) => r.kind === 'eval').map((r) => r.loss);
  assert.deepEqual(evals, readMetrics(a).filter((r) => r.kind === 'eval').map((r) => r.loss));
  tb.dispose();
});

test('the validation loss falls', () => {
  const evals = readMetrics(join(root, 'straight')).filter((r) => r.kind === 'eval').map((r) => r.loss as number);
  assert.ok(evals.length >= 2);
  assert.ok(evals[evals.length - 1]! < evals[0]! - 0.05, `val loss ${evals.join(' -> ')}`);
});

test('NaN weights: steps are skipped, then the run stops with the last good checkpoint intact', async () => {
  const dir = join(root, 'nan');
  const tc = config(dir, ['max_bad_steps=3']);
  const t = new Trainer(tc, resolveModelConfig(tc), dir);
  await t.setup(false);
  const spec = t.model.layout.params[1]!;
  await assert.rejects(
    t.run({
        afterStep: (step) => {
        if (step === 4) t.model.setParam(spec, new Float32Array(spec.size).fill(NaN));
      },
    }),
    /3 consecutive steps had a NaN\/Inf loss or gradient.*diverge at step 5.*step-00000003 \(intact\).*--from-step 3/,
  );
  const events = readMetrics(dir).filter((r) => r.kind === 'event');
  assert.equal(events.length, 3);
  const src = openModelSource(dir);
  assert.ok(src.tensors.read(spec.name).every(Number.isFinite), 'the checkpoint holds finite weights');
  src.close();
  t.dispose();
});

test('export -> import round trip gives identical logits; the export loads as a Hugging Face directory', () => {
  const run = join(root, 'straight');
  const hf = join(root, 'hf');
  const imported = join(root, 'imported');
  let r = spawnSync(process.execPath, [CLI, 'export', run, '--hf', hf], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const cfg = JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['Qwen3ForCausalLM']);
  assert.ok(existsSync(join(hf, 'tokenizer.json')));
  r = spawnSync(process.execPath, [CLI, 'import', hf, '--out', imported], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const be = createBackend('cpu');
  const logitsOf = (dir: string) => {
    const src = openModelSource(dir);
    const m = new Decoder(be, src.cfg);
    loadWeights(m, src.tensors, dir);
    src.close();
    const ids = Int32Array.from([1, 200, 3000, 151643, 7, 8]);
    const out = new Float32Array(ids.length * m.cfg.vocab_size);
    m.run(ids, new Int32Array(ids.length).fill(-100), { batch: 1, seq: ids.length, backward: false, logits: out });
    m.dispose();
    return out;
  };
  const a = logitsOf(run);
  assert.deepEqual(logitsOf(hf), a);
  assert.deepEqual(logitsOf(imported), a);
});

test('train verb: a wrong key is a clear error naming the key and a fix', () => {
  const r = spawnSync(process.execPath, [CLI, 'train', '--set', 'stpes=3'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /stpes.*steps/);
});

test('CLI: --resume continues a run from its saved config and reproduces the original metrics exactly', () => {
  const run = join(root, 'cli-run');
  const sets = [
    'model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'steps=6', 'warmup_steps=2', 'eval_every=3',
    'eval_batches=1', 'checkpoint_every=3', 'keep_checkpoints=3', 'sample_tokens=0', 'lr=3e-2',
    'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
  ];
  let r = spawnSync(process.execPath, [CLI, 'train', '--quiet', '--run-dir', run, '--set', ...sets], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const full = readFileSync(join(run, 'metrics.jsonl'), 'utf8');
  // Pretend the run died after its step-3 checkpoint: the later checkpoint never happened.
  rmSync(join(run, 'checkpoints', 'step-00000006'), { recursive: true, force: true });
  writeFileSync(join(run, 'checkpoints', 'latest'), 'step-00000003\n');
  r = spawnSync(process.execPath, [CLI, 'train', '--quiet', '--resume', run], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const strip = (text: string) => text.trim().split('\n').map((l) => {
    const o = JSON.parse(l);
    delete o.step_s; delete o.tokens_per_s; delete o.gflops; delete o.mfu; delete o.time;
    return JSON.stringify(o);
  });
  assert.deepEqual(strip(readFileSync(join(run, 'metrics.jsonl'), 'utf8')), strip(full));
});
