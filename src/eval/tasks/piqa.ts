/**
 * PIQA (baber/piqa / ybisk/piqa on the hub: `goal`, `sol1`, `sol2`, `label`). lm-evaluation-harness `piqa`:
 * `Question: {goal}\nAnswer:` then ` {sol}`. Metrics acc and acc_norm.
 */
import { checkChoices, checkLabel, indexField, stringField, type TaskDef } from '../task.js';

export const piqa: TaskDef = {
  name: 'piqa',
  about: 'PIQA: pick the solution to a physical goal (acc, acc_norm)',
  fields: ['goal', 'sol1', 'sol2', 'label'],
  metrics: ['acc', 'acc_norm'],
  text: true,
  parse(f, at) {
    const context = `Question: ${stringField(f, 'goal', at)}\nAnswer:`;
    const choices = [stringField(f, 'sol1', at), stringField(f, 'sol2', at)];
    checkChoices(choices, at, 'solution');
    const label = checkLabel(indexField(f, 'label', at), 2, at);
    return { requests: choices.map((c) => ({ context, continuation: ' ' + c })), label, choiceTexts: choices };
  },
};
