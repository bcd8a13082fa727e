/**
 * Pre-tokenized multiple choice: JSON Lines `{"context_ids": [...], "choices_ids": [[...], ...], "label": k}`.
 * The ids are scored as given, so it works for any model, with or without a tokenizer. Metric acc (there is no
 * text to measure for acc_norm).
 */
import { EvalDataError } from '../rows.js';
import { checkLabel, describe, indexField, type TaskDef } from '../task.js';

function ids(v: unknown, name: string, at: string): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0))
    throw new EvalDataError(`${at}: ${name} must be a list of token ids (whole numbers >= 0), got ${describe(v)}`);
  if (v.length === 0) throw new EvalDataError(`${at}: ${name} is empty${name === 'context_ids' ? ' (start it with the BOS or end-of-text id)' : ''}`);
  return v as number[];
}

export const mcTokens: TaskDef = {
  name: 'mc-tokens',
  about: 'pre-tokenized multiple choice: {"context_ids", "choices_ids", "label"} (acc)',
  fields: ['context_ids', 'choices_ids', 'label'],
  metrics: ['acc'],
  text: false,
  parse(f, at) {
    const context = ids(f.context_ids, 'context_ids', at);
    const list = f.choices_ids;
    if (!Array.isArray(list) || list.length < 2)
      throw new EvalDataError(`${at}: choices_ids must be a list of at least 2 token-id lists, got ${describe(list)}`);
    const choices = list.map((c, i) => ids(c, `choices_ids[${i}]`, at));
    const label = checkLabel(indexField(f, 'label', at), choices.length, at);
    return { requests: choices.map((c) => ({ contextIds: context, continuationIds: c })), label, choiceTexts: null };
  },
};
