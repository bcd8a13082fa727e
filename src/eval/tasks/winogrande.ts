/**
 * Winogrande (allenai/winogrande on the hub: `sentence` with one '_', `option1`, `option2`, `answer` "1"/"2").
 * lm-evaluation-harness `winogrande` uses partial scoring: each option fills the blank to make a context, and the
 * score is the log-likelihood of the same suffix (the text after the blank) under each context. Metric acc.
 */
import { pyStrip } from '../python-text.js';
import { EvalDataError } from '../rows.js';
import { checkChoices, describe, stringField, type TaskDef } from '../task.js';

export const winogrande: TaskDef = {
  name: 'winogrande',
  about: 'Winogrande: fill the blank with the right option, scored on the shared suffix (acc)',
  fields: ['sentence', 'option1', 'option2', 'answer'],
  metrics: ['acc'],
  text: true,
  parse(f, at) {
    const sentence = stringField(f, 'sentence', at);
    const blank = sentence.indexOf('_');
    if (blank < 0) throw new EvalDataError(`${at}: field 'sentence' has no '_' blank to fill`);
    const options = [stringField(f, 'option1', at), stringField(f, 'option2', at)];
    checkChoices(options, at, 'option');
    const suffix = pyStrip(sentence.slice(blank + 1));
    if (suffix === '') throw new EvalDataError(`${at}: nothing follows the blank in 'sentence', so there is no shared suffix to score`);
    const answer = f.answer;
    const label = answer === '1' || answer === 1 ? 0 : answer === '2' || answer === 2 ? 1 : -1;
    if (label < 0) {
      const hint = answer === '' ? ' (an unlabelled test split? use the validation split)' : '';
      throw new EvalDataError(`${at}: field 'answer' must be "1" or "2", got ${describe(answer)}${hint}`);
    }
    const contexts = options.map((o) => sentence.slice(0, blank) + o);
    return { requests: contexts.map((context) => ({ context, continuation: ' ' + suffix })), label, choiceTexts: contexts };
  },
};
