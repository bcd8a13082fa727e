/**
 * LAMBADA, OpenAI's variant (EleutherAI/lambada_openai on the hub, or lambada_test.jsonl: one `text` each).
 * lm-evaluation-harness `lambada_openai`: the context is the text up to its last space-separated word, the
 * target is ' ' + that word; acc is whether greedy decoding reproduces every target token, and perplexity is
 * exp(-mean log-likelihood of the target).
 */
import { stringField, type TaskDef } from '../task.js';
import { EvalDataError } from '../rows.js';

export const lambadaOpenai: TaskDef = {
  name: 'lambada_openai',
  about: 'LAMBADA (OpenAI variant): predict the last word of a passage (acc = greedy match, perplexity)',
  fields: ['text'],
  metrics: ['perplexity', 'acc'],
  text: true,
  parse(f, at) {
    // Python's text.split(' '): single spaces, keeping empty words between runs of spaces.
    const words = stringField(f, 'text', at).split(' ');
    const last = words[words.length - 1]!;
    if (last === '') throw new EvalDataError(`${at}: field 'text' ends in a space, so it has no last word to predict`);
    return { requests: [{ context: words.slice(0, -1).join(' '), continuation: ' ' + last }], label: null, choiceTexts: null };
  },
};
