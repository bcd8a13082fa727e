/** `lmforge eval` end to end: every task on its fixture, the pre-tokenized form on a golden model, --json, --details, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend } from '../../src/engine/index.js';
import { hfTensors } from '../../src/model/weights.js';
import { writeModelDir } from '../../src/io/model-dir.js';
import { CLI, goldenCase } from '../helpers.js';
import { runEval } from '../../src/cli/eval.js';
import { fixture, jsonlRows, qwen3VocabModel, tempDir } from '../eval/helpers.js';

function lmforge(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'eval', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A model directory with the Qwen3 vocabulary (no tokenizer.json beside it: the bundled Qwen3 one is used). */
function qwen3VocabModelDir(): string {
  const dir = join(tempDir(), 'model');
  mkdirSync(dir);
  const model = qwen3VocabModel(createBackend('cpu'));
  writeModelDir(dir, model.cfg, hfTensors(model));
  model.dispose();
  return dir;
}

test('mc-tokens on a golden model: --json gives one object, --details one line per example in input order', () => {
  const details = join(tempDir(), 'details.jsonl');
  const r = lmforge('--model', goldenCase('qwen3-tiny'), '--task', 'mc-tokens', '--data', fixture('mc_tokens.jsonl'), '--json', '--details', details);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { task: string; n: number; metrics: Record<string, { value: number; stderr: number | null }> };
  assert.equal(out.task, 'mc-tokens');
  assert.equal(out.n, 3);
  assert.deepEqual(Object.keys(out.metrics), ['acc']);
  const lines = readFileSync(details, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => l.index), [0, 1, 2]);
  assert.deepEqual(Object.keys(lines[0]!), ['index', 'loglikelihoods', 'tokens', 'bytes', 'chars', 'pred', 'pred_norm', 'label']);
  assert.deepEqual(lines[0]!.tokens, [2, 1, 3]);
  assert.equal(lines[0]!.bytes, null);
  assert.deepEqual(lines.map((l) => l.label), [2, 0, 3]);
  const hits = lines.filter((l) => l.pred === l.label).length;
  assert.equal(out.metrics.acc!.value, hits / 3);
});

/** The verb in this process (one tokenizer load for every task), its output returned. */
async function lmforgeHere(...args: string[]): Promise<string> {
  let out = '';
  assert.equal(await runEval(args, (t) => (out += t)), 0);
  return out;
}

test('every text task runs on its fixture and prints the table', async () => {
  const model = qwen3VocabModelDir();
  for (const [task, file, metrics] of [
    ['hellaswag', 'hellaswag.jsonl', ['acc', 'acc_norm']],
    ['arc_easy', 'arc_easy.jsonl', ['acc', 'acc_norm']],
    ['arc_challenge', 'arc_challenge.jsonl', ['acc', 'acc_norm']],
    ['piqa', 'piqa.jsonl', ['acc', 'acc_norm']],
    ['winogrande', 'winogrande.jsonl', ['acc']],
    ['lambada_openai', 'lambada_openai.jsonl', ['perplexity', 'acc']],
    ['mc', 'mc.jsonl', ['acc', 'acc_norm']],
  ] as const) {
    const stdout = await lmforgeHere('--model', model, '--task', task, '--data', fixture(file));
    const rows = stdout.trim().split('\n');
    assert.match(rows[0]!, /^task\s+metric\s+value\s+stderr\s+n$/);
    const n = jsonlRows(fixture(file)).length;
    metrics.forEach((m, i) => assert.match(rows[1 + i]!, new RegExp(`^${task}\\s+${m}\\s+[0-9.]+\\s+[0-9.]+\\s+${n}$`), stdout));
    assert.match(rows[rows.length - 1]!, new RegExp(`^\\(${n} examples in [0-9.]+ s, [0-9.]+ examples/s\\)$`));
  }
});

test('bad input is one line naming the file and line; a text task on a model without the vocabulary is refused', async () => {
  const bad = lmforge('--model', goldenCase('qwen3-tiny'), '--task', 'hellaswag', '--data', fixture('piqa.jsonl'));
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^lmforge: .*piqa\.jsonl:1: no field 'activity_label' for task hellaswag: this looks like a piqa file/);
  await assert.rejects(
    lmforgeHere('--model', goldenCase('qwen3-tiny'), '--task', 'piqa', '--data', fixture('piqa.jsonl')),
    /piqa\.jsonl:1: token id \d+ is outside the model's vocabulary of 384/,
  );
  await assert.rejects(lmforgeHere('--model', goldenCase('qwen3-tiny'), '--task', 'mc-tokens'), /--data is required/);
});
