/** The harness's context/continuation split, with the real Qwen3 tokenizer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { splitPair, tokenizeExamples } from '../../src/eval/requests.js';
import type { Example } from '../../src/eval/task.js';

function example(context: string, continuation: string): Example {
  return { index: 0, where: 'f.jsonl:1', requests: [{ context, continuation }], label: null, choiceTexts: null };
}

test('trailing context whitespace moves into the continuation', () => {
  assert.deepEqual(splitPair('Answer: ', 'Paris'), { context: 'Answer:', continuation: ' Paris' });
  assert.deepEqual(splitPair('hello\n', '\nworld'), { context: 'hello', continuation: '\n\nworld' });
  assert.deepEqual(splitPair('no space', ' x'), { context: 'no space', continuation: ' x' });
});

test('continuation tokens are the whole encoding minus the context encoding', async () => {
  const tok = loadTokenizer();
  const [[a], [b], [c]] = await tokenizeExamples(
    [example('The capital of France is', ' Paris'), example('hello\n', '\nworld'), example('Answer:', '  Paris')],
    tok,
  );
  assert.deepEqual(a, { context: [785, 6722, 315, 9625, 374], continuation: [12095] });
  // "hello\n" + "\nworld" is encoded whole: "\n\n" is one token (271), which a separate encoding would miss.
  assert.deepEqual(b, { context: [14990], continuation: [271, 14615] });
  assert.deepEqual(c, { context: [16141, 25], continuation: [220, 12095] });
});

test('an empty context is the end-of-text token', async () => {
  const tok = loadTokenizer();
  const [[r]] = await tokenizeExamples([example('', ' Paris')], tok);
  assert.deepEqual(r, { context: [tok.eotId], continuation: [12095] });
  const [[s]] = await tokenizeExamples([example('', '<|endoftext|> Paris')], tok);
  assert.deepEqual(s, { context: [tok.eotId], continuation: [12095] });
});

test('a text task without a tokenizer is refused with the example named', async () => {
  await assert.rejects(tokenizeExamples([example('a', ' b')], null), /f\.jsonl:1: this task is text and the model has no tokenizer/);
});
