/**
 * Task definitions against lm-evaluation-harness's templates, on fixture files in each task's published shape
 * (JSON Lines, and Parquet with the hub's column types), and the errors bad rows get.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExamples } from '../../src/eval/evaluate.js';
import { hellaswagPreprocess } from '../../src/eval/tasks/hellaswag.js';
import { fixture, jsonlRows, tempDir, writeHfParquet } from './helpers.js';

const text = (r: unknown): { context: string; continuation: string } => r as { context: string; continuation: string };

test('hellaswag: activity_label prompt, capitalised ctx_b, bracket cleanup, string labels', async () => {
  const { examples } = await loadExamples({ task: 'hellaswag', data: fixture('hellaswag.jsonl') });
  assert.equal(examples.length, 6);
  const e1 = examples[1]!;
  assert.equal(text(e1.requests[0]).context, 'Making a sandwich: A woman takes two slices of bread from a bag. She spreads butter on one slice. Then the woman');
  assert.equal(text(e1.requests[1]).continuation, ' places cheese and ham on the buttered slice.');
  assert.equal(e1.label, 1);
  // Expected strings printed by the harness's preprocess() in CPython.
  const e2 = examples[2]!;
  assert.equal(text(e2.requests[0]).context, 'Home and Garden: How to water a potted plant. Check the soil with your finger. if the top inch feels dry, it is time to water.');
  // The ending starts with a tag: strip() runs before the tag goes, so the choice keeps a leading space.
  assert.equal(text(e2.requests[0]).continuation, '  Pour water slowly until it drains from the bottom. Empty the saucer afterwards.');
  assert.deepEqual(e2.choiceTexts![0], ' Pour water slowly until it drains from the bottom. Empty the saucer afterwards.');
  assert.equal(text(examples[3]!.requests[0]).context, 'Personal Care and Style: How to tie a scarf. Fold the scarf in half lengthwise.');
  assert.equal(hellaswagPreprocess('a [b\r c] d [e\nf] g   h'), 'a d [e\nf] g  h');
});

test('arc: Question/Answer prompt, answerKey by letter or digit, 3 to 5 choices, the AI2 layout too', async () => {
  const { examples } = await loadExamples({ task: 'arc_easy', data: fixture('arc_easy.jsonl') });
  assert.equal(text(examples[0]!.requests[1]).context, 'Question: Which object is attracted to a magnet?\nAnswer:');
  assert.equal(text(examples[0]!.requests[1]).continuation, ' an iron nail');
  assert.deepEqual(examples.map((e) => e.label), [1, 2, 1, 2, 1]);
  assert.deepEqual(examples.map((e) => e.requests.length), [4, 4, 3, 4, 5]);
  const ch = await loadExamples({ task: 'arc_challenge', data: fixture('arc_challenge.jsonl') });
  assert.deepEqual(ch.examples.map((e) => e.label), [1, 2, 2]);
  const dir = tempDir();
  const ai2 = join(dir, 'ARC-Easy-Dev.jsonl');
  writeFileSync(ai2, JSON.stringify({ id: 'x', question: { stem: 'Why?', choices: [{ text: 'because', label: 'A' }, { text: 'no', label: 'B' }] }, answerKey: 'B' }) + '\n');
  const a = await loadExamples({ task: 'arc_easy', data: ai2 });
  assert.equal(text(a.examples[0]!.requests[0]).context, 'Question: Why?\nAnswer:');
  assert.equal(a.examples[0]!.label, 1);
});

test('piqa, winogrande (partial scoring of the shared suffix), lambada (last word), mc', async () => {
  const p = (await loadExamples({ task: 'piqa', data: fixture('piqa.jsonl') })).examples;
  assert.equal(text(p[1]!.requests[1]).context, 'Question: To open a jar with a tight lid,\nAnswer:');
  assert.equal(text(p[1]!.requests[1]).continuation, ' run the lid under hot water, then twist it.');
  assert.equal(p[1]!.label, 1);

  const w = (await loadExamples({ task: 'winogrande', data: fixture('winogrande.jsonl') })).examples;
  assert.deepEqual(w[0]!.requests, [
    { context: 'The trophy did not fit in the suitcase because the trophy', continuation: ' was too big.' },
    { context: 'The trophy did not fit in the suitcase because the suitcase', continuation: ' was too big.' },
  ]);
  assert.deepEqual(w.map((e) => e.label), [0, 1, 1, 0]);

  const l = (await loadExamples({ task: 'lambada', data: fixture('lambada_openai.jsonl') })).examples;
  assert.equal(text(l[3]!.requests[0]).context, 'The baker pulled the loaves from the oven and set them on the rack to cool. The whole street smelled of fresh');
  assert.equal(text(l[3]!.requests[0]).continuation, ' bread');
  assert.equal(l[3]!.label, null);

  const m = (await loadExamples({ task: 'mc', data: fixture('mc.jsonl') })).examples;
  assert.deepEqual(m[0]!.requests[2], { context: 'The capital of France is', continuation: ' Madrid' });
});

test('limit keeps the first N examples', async () => {
  const { examples } = await loadExamples({ task: 'hellaswag', data: fixture('hellaswag.jsonl'), limit: 2 });
  assert.equal(examples.length, 2);
});

for (const [task, schema, file] of [
  ['hellaswag', 'hellaswag', 'hellaswag.jsonl'],
  ['arc_easy', 'arc', 'arc_easy.jsonl'],
  ['piqa', 'piqa', 'piqa.jsonl'],
  ['winogrande', 'winogrande', 'winogrande.jsonl'],
  ['lambada_openai', 'lambada_openai', 'lambada_openai.jsonl'],
] as const) {
  test(`${task}: the hub's Parquet layout gives the same examples as JSON Lines`, async () => {
    const pq = join(tempDir(), `${task}.parquet`);
    writeHfParquet(pq, schema, jsonlRows(fixture(file)));
    const a = await loadExamples({ task, data: fixture(file) });
    const b = await loadExamples({ task, data: pq });
    const strip = (e: { where: string }) => ({ ...e, where: '' });
    assert.deepEqual(b.examples.map(strip), a.examples.map(strip));
    assert.match(b.examples[1]!.where, /\.parquet row 2$/);
  });
}

async function rejects(task: string, lines: string[], pattern: RegExp): Promise<void> {
  const f = join(tempDir(), 'bad.jsonl');
  writeFileSync(f, lines.join('\n') + '\n');
  await assert.rejects(loadExamples({ task, data: f }), (e: Error) => {
    assert.match(e.message, pattern);
    assert.ok(e.message.startsWith(f), `error names the file: ${e.message}`);
    return true;
  });
}

test('bad input: each error names the file, the line and the problem', async () => {
  const good = JSON.stringify({ context: 'a', choices: ['b', 'c'], label: 0 });
  await rejects('mc', [good, JSON.stringify({ context: 'a', choices: ['b', 'c'] })], /:2: no field 'label' for task mc/);
  await rejects('mc', [good, good, JSON.stringify({ context: 'a', choices: ['b', 'c'], label: 2 })], /:3: label 2 is out of range for 2 choices/);
  await rejects('mc', [JSON.stringify({ context: 'a', choices: ['b', ''], label: 0 })], /:1: choice 1 is empty/);
  await rejects('mc', [good, '{"context": "a", '], /:2: not valid JSON/);
  await rejects('mc', [JSON.stringify({ context: 'a', choices: 'b', label: 0 })], /:1: field 'choices' must be a list of strings/);
  await rejects('hellaswag', [JSON.stringify({ goal: 'g', sol1: 'a', sol2: 'b', label: 0 })], /:1: no field 'activity_label' for task hellaswag: this looks like a piqa file .*pass --task piqa/);
  await rejects('piqa', jsonlRows(fixture('winogrande.jsonl')).map((r) => JSON.stringify(r)), /:1: .*looks like a winogrande file/);
  await rejects('winogrande', [JSON.stringify({ sentence: 'No blank here.', option1: 'a', option2: 'b', answer: '1' })], /:1: field 'sentence' has no '_'/);
  await rejects('winogrande', [JSON.stringify({ sentence: 'A _ b.', option1: 'a', option2: 'b', answer: '' })], /:1: field 'answer' must be "1" or "2".*test split/);
  await rejects('hellaswag', [JSON.stringify({ ...jsonlRows(fixture('hellaswag.jsonl'))[0], label: '' })], /:1: field 'label' must be a whole number.*test split/);
  await rejects('arc_easy', [JSON.stringify({ ...jsonlRows(fixture('arc_easy.jsonl'))[0], answerKey: 'F' })], /:1: answerKey 'F' is not one of the choice labels A, B, C, D/);
  await rejects('mc-tokens', [JSON.stringify({ context_ids: [], choices_ids: [[1], [2]], label: 0 })], /:1: context_ids is empty/);
  await rejects('mc-tokens', [JSON.stringify({ context_ids: [1], choices_ids: [[1], [-2]], label: 0 })], /:1: choices_ids\[1\] must be a list of token ids/);
  await rejects('lambada_openai', [JSON.stringify({ text: 'ends in a space ' })], /:1: field 'text' ends in a space/);
  await assert.rejects(loadExamples({ task: 'hellaswag', data: '/nonexistent/file.jsonl' }), /\/nonexistent\/file.jsonl: cannot read the data file \(ENOENT\)/);
  await assert.rejects(loadExamples({ task: 'nope', data: fixture('mc.jsonl') }), /unknown task 'nope'; tasks: hellaswag, arc_easy/);
});
