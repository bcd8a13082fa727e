/**
 * The generic multiple-choice task: JSON Lines `{"context": "...", "choices": ["...", ...], "label": k}`, scored
 * like the harness's multiple-choice tasks: the context, then ' ' + each choice (acc, acc_norm).
 */
import { checkChoices, checkLabel, indexField, stringField, stringListField, type TaskDef } from '../task.js';

export const mc: TaskDef = {
  name: 'mc',
  about: 'generic multiple choice: {"context", "choices", "label"} (acc, acc_norm)',
  fields: ['context', 'choices', 'label'],
  metrics: ['acc', 'acc_norm'],
  text: true,
  parse(f, at) {
    const context = stringField(f, 'context', at);
    const choices = stringListField(f, 'choices', at);
    checkChoices(choices, at);
    const label = checkLabel(indexField(f, 'label', at), choices.length, at);
    return { requests: choices.map((c) => ({ context, continuation: ' ' + c })), label, choiceTexts: choices };
  },
};
