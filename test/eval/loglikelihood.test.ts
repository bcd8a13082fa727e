/**
 * The scoring arithmetic against a plain reference: each request alone, unpadded, through the model's full
 * logits, log-softmax in float64. Batching, padding, sorting and truncation must not change a log-likelihood
 * beyond float32 rounding (1e-5 relative), nor any greedy flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadWeights } from '../../src/model/weights.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { scoreRequests, type ScoreMethod, type Scored } from '../../src/eval/loglikelihood.js';
import { prepareTask, scoreTask } from '../../src/eval/evaluate.js';
import type { TokenRequest } from '../../src/eval/requests.js';
import { Rng } from '../../src/model/rng.js';
import { goldenCase } from '../helpers.js';
import { fixture, qwen3VocabModel, tempDir } from './helpers.js';

const be = createBackend('cpu');

/** log P(continuation | context) from one unbatched forward, reduced in float64; the harness's left truncation. */
function reference(model: Decoder, r: TokenRequest): Scored {
  const L = model.cfg.context_length;
  const V = model.cfg.vocab_size;
  const input = [...r.context, ...r.continuation].slice(-(L + 1)).slice(0, -1);
  const logits = new Float32Array(input.length * V);
  model.run(Int32Array.from(input), new Int32Array(input.length).fill(-100), { batch: 1, seq: input.length, backward: false, logits });
  let logprob = 0;
  let greedy = true;
  r.continuation.forEach((t, j) => {
    const pos = input.length - r.continuation.length + j;
    const row = Float64Array.from(logits.subarray(pos * V, (pos + 1) * V));
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
    const mx = row[best]!;
    const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
    logprob += row[t]! - lse;
    if (best !== t) greedy = false;
  });
  return { logprob, greedy, tokens: r.continuation.length };
}

function randomRequests(rng: Rng, n: number, vocab: number, maxCtx: number, maxCont: number): TokenRequest[] {
  const ids = (k: number) => Array.from({ length: k }, () => Math.floor(rng.next() * vocab));
  return Array.from({ length: n }, () => ({
    context: ids(1 + Math.floor(rng.next() * maxCtx)),
    continuation: ids(1 + Math.floor(rng.next() * maxCont)),
  }));
}

function assertClose(got: Scored[], want: Scored[], what: string): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    const rel = Math.abs(g.logprob - w.logprob) / Math.max(Math.abs(w.logprob), 1e-12);
    assert.ok(rel < 1e-5, `${what}: request ${i}: ${g.logprob} vs reference ${w.logprob} (rel ${rel.toExponential(2)})`);
    assert.equal(g.greedy, w.greedy, `${what}: request ${i}: greedy flag`);
    assert.equal(g.tokens, w.tokens);
  });
}

const METHODS: ScoreMethod[] = ['engine', 'host'];

for (const name of ['qwen3-tiny', 'gpt2-tiny']) {
  test(`${name}: batched log-likelihoods equal the float64 reference (padding, sorting, several batch sizes, left truncation)`, () => {
    const src = openModelSource(goldenCase(name));
    const model = new Decoder(be, src.cfg);
    loadWeights(model, src.tensors, name);
    src.close();
    const rng = new Rng(7);
    const L = model.cfg.context_length;
    // Mostly short requests, plus two longer than the context (truncated from the left, continuation kept whole).
    const reqs = [...randomRequests(rng, 24, model.cfg.vocab_size, 40, 6), ...randomRequests(rng, 2, model.cfg.vocab_size, 1, 1)];
    reqs[24]!.context = Array.from({ length: L + 20 }, (_, i) => (i * 7) % model.cfg.vocab_size);
    reqs[25]!.continuation = Array.from({ length: L }, (_, i) => (i * 13) % model.cfg.vocab_size);
    const ref = reqs.map((r) => reference(model, r));
    for (const method of METHODS)
      for (const batchTokens of [1, 200, 4096]) assertClose(scoreRequests(model, reqs, { method, batchTokens }), ref, `${method} @${batchTokens}`);
    model.dispose();
  });
}

test('greedy flags: a continuation of the greedy tokens is greedy, one changed token is not', () => {
  const src = openModelSource(goldenCase('llama-tiny'));
  const model = new Decoder(be, src.cfg);
  loadWeights(model, src.tensors, 'llama-tiny');
  src.close();
  const V = model.cfg.vocab_size;
  const context = [5, 17, 3, 99, 42];
  const cont: number[] = [];
  for (let i = 0; i < 4; i++) {
    const seq = [...context, ...cont];
    const logits = new Float32Array(seq.length * V);
    model.run(Int32Array.from(seq), new Int32Array(seq.length).fill(-100), { batch: 1, seq: seq.length, backward: false, logits });
    const last = logits.subarray((seq.length - 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v]! > last[best]!) best = v;
    cont.push(best);
  }
  const changed = [...cont];
  changed[2] = (changed[2]! + 1) % V;
  for (const method of METHODS) {
    const [a, b] = scoreRequests(model, [{ context, continuation: cont }, { context, continuation: changed }], { method });
    assert.equal(a!.greedy, true, method);
    assert.equal(b!.greedy, false, method);
  }
  model.dispose();
});

test('text tasks with the Qwen3 tokenizer: per-example log-likelihoods equal the float64 reference', async () => {
  const model = qwen3VocabModel(be);
  const tok = loadTokenizer();
  for (const [task, file, limit] of [['hellaswag', 'hellaswag.jsonl', 2], ['winogrande', 'winogrande.jsonl', 2], ['lambada_openai', 'lambada_openai.jsonl', 2]] as const) {
    const p = await prepareTask({ task, data: fixture(file), limit }, tok);
    const ref = p.requests.map((r) => reference(model, r));
    // The host path is held to the reference on the small-vocabulary models above; here the engine's.
    for (const method of ['engine'] as const) {
      const res = scoreTask(model, p, { method, batchTokens: 256 });
      let k = 0;
      for (const d of res.details) {
        d.loglikelihoods.forEach((ll, i) => {
          const w = ref[k++]!;
          assert.ok(Math.abs(ll - w.logprob) / Math.abs(w.logprob) < 1e-5, `${task} example ${d.index} choice ${i}: ${ll} vs ${w.logprob}`);
          assert.equal(d.tokens[i], w.tokens);
        });
      }
    }
  }
  model.dispose();
});

test('mc-tokens and the text form give identical log-likelihoods when the ids agree', async () => {
  const model = qwen3VocabModel(be, 3);
  const tok = loadTokenizer();
  const text = await prepareTask({ task: 'mc', data: fixture('mc.jsonl') }, tok);
  const file = join(tempDir(), 'mc-tokens.jsonl');
  let k = 0;
  writeFileSync(file, text.examples.map((ex) => {
    const reqs = ex.requests.map(() => text.requests[k++]!);
    // Every choice of an example shares the context's ids (the split moves no whitespace here).
    for (const r of reqs) assert.deepEqual(r.context, reqs[0]!.context);
    return JSON.stringify({ context_ids: reqs[0]!.context, choices_ids: reqs.map((r) => r.continuation), label: ex.label }) + '\n';
  }).join(''));
  const ids = await prepareTask({ task: 'mc-tokens', data: file }, null);
  assert.deepEqual(ids.requests, text.requests);
  for (const method of METHODS) {
    const a = scoreTask(model, text, { method });
    const b = scoreTask(model, ids, { method });
    assert.deepEqual(b.details.map((d) => d.loglikelihoods), a.details.map((d) => d.loglikelihoods));
    assert.deepEqual(b.details.map((d) => d.pred), a.details.map((d) => d.pred));
  }
  model.dispose();
});
