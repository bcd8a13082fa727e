/** Predictions and metrics as the harness computes them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, exampleDetails, taskMetrics } from '../../src/eval/aggregate.js';
import type { Example } from '../../src/eval/task.js';

const choice = (index: number, texts: string[], label: number): Example => ({
  index, where: `f:${index + 1}`, label, choiceTexts: texts, requests: texts.map((t) => ({ context: 'c', continuation: ' ' + t })),
});

test('argmax takes the first maximum (numpy)', () => {
  assert.equal(argmax([-3, -1, -1, -2]), 1);
  assert.equal(argmax([-1]), 0);
});

test('acc by summed log-likelihood, acc_norm per character of the choice text (not of the continuation, not bytes)', () => {
  // Example 0: per character 'ab' -2.1/2 = -1.05 < 'abcdefgh' -8/8 = -1.0, so acc_norm picks 1; dividing by the
  // continuation (' ab': 3, ' abcdefgh': 9) would pick 0 (-0.7 > -0.889). acc picks 0 (-2.1 > -8).
  // Example 1: 'ééé' -3.3 over 3 characters = -1.1 < 'abcd' -1.0 (picks 1); over its 6 UTF-8 bytes it would pick 0.
  const ex = [choice(0, ['ab', 'abcdefgh'], 1), choice(1, ['\u00e9\u00e9\u00e9', 'abcd'], 0)];
  const scored = [-2.1, -8, -3.3, -4.0].map((logprob) => ({ logprob, greedy: false, tokens: 2 }));
  const d = exampleDetails(ex, scored);
  assert.deepEqual(d.map((x) => [x.pred, x.pred_norm]), [[0, 1], [0, 1]]);
  assert.deepEqual(d[1]!.chars, [3, 4]);
  assert.deepEqual(d[1]!.bytes, [6, 4]);
  const m = taskMetrics(['acc', 'acc_norm'], d);
  assert.deepEqual(m.map((x) => x.value), [0.5, 0.5]);
  // Sample standard deviation over sqrt(n) (the harness's mean_stderr): hits [0, 1] -> sqrt(0.5) / sqrt(2) = 0.5.
  assert.ok(Math.abs(m[0]!.stderr! - 0.5) < 1e-15);
  assert.equal(m[0]!.n, 2);
});

test('cloze: acc is the greedy share, perplexity exp(-mean log-likelihood)', () => {
  const ex: Example[] = [0, 1, 2].map((i) => ({ index: i, where: '', label: null, choiceTexts: null, requests: [{ context: 'a', continuation: ' word' }] }));
  const d = exampleDetails(ex, [
    { logprob: -1, greedy: true, tokens: 1 },
    { logprob: -2, greedy: false, tokens: 2 },
    { logprob: -3, greedy: true, tokens: 1 },
  ]);
  assert.deepEqual(d[0]!.bytes, [5]);
  const [ppl, acc] = taskMetrics(['perplexity', 'acc'], d);
  assert.ok(Math.abs(ppl!.value - Math.exp(2)) < 1e-12);
  assert.ok(Math.abs(ppl!.stderr! - Math.exp(2) * (1 / Math.sqrt(3))) < 1e-12);
  assert.equal(acc!.value, 2 / 3);
  assert.equal(taskMetrics(['acc'], d.slice(0, 1))[0]!.stderr, null);
});
