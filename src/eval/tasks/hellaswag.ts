/**
 * HellaSwag (Rowan/hellaswag on the hub; also the original hellaswag_val.jsonl, whose label is a number).
 * lm-evaluation-harness `hellaswag`: the prompt is `activity_label: ctx_a Ctx_b` and each ending is a choice,
 * all passed through its WikiHow bracket cleanup. Metrics acc and acc_norm.
 */
import { pyCapitalize, pyStrip } from '../python-text.js';
import { checkChoices, checkLabel, indexField, stringField, stringListField, type TaskDef } from '../task.js';

/** The harness's cleanup: strip, " [title]" becomes ". ", other [bracketed] tags go, double spaces become single. */
export function hellaswagPreprocess(text: string): string {
  let t = pyStrip(text);
  t = t.replaceAll(' [title]', '. ');
  // Python's '.' matches everything but '\n' (JavaScript's also stops at '\r', U+2028, U+2029).
  t = t.replace(/\[[^\n]*?\]/g, '');
  return t.replaceAll('  ', ' ');
}

export const hellaswag: TaskDef = {
  name: 'hellaswag',
  about: 'HellaSwag: pick the ending of an ActivityNet / WikiHow context (acc, acc_norm)',
  fields: ['activity_label', 'ctx_a', 'ctx_b', 'endings', 'label'],
  metrics: ['acc', 'acc_norm'],
  text: true,
  parse(f, at) {
    const ctx = stringField(f, 'ctx_a', at) + ' ' + pyCapitalize(stringField(f, 'ctx_b', at));
    const query = hellaswagPreprocess(stringField(f, 'activity_label', at) + ': ' + ctx);
    const choices = stringListField(f, 'endings', at).map(hellaswagPreprocess);
    checkChoices(choices, at, 'ending');
    const label = checkLabel(indexField(f, 'label', at), choices.length, at);
    return { requests: choices.map((c) => ({ context: query, continuation: ' ' + c })), label, choiceTexts: choices };
  },
};
