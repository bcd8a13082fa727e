/**
 * ARC-Easy and ARC-Challenge (allenai/ai2_arc on the hub: `question`, `choices: {text, label}`, `answerKey`; the
 * original AI2 JSON Lines with `question: {stem, choices: [{text, label}]}` is read too).
 * lm-evaluation-harness `arc_easy` / `arc_challenge`: `Question: {question}\nAnswer:` then ` {choice}`.
 */
import { EvalDataError } from '../rows.js';
import { checkChoices, describe, stringField, type ParsedExample, type TaskDef } from '../task.js';

function choicesOf(f: Record<string, unknown>, at: string): { question: string; texts: string[]; labels: string[] } {
  const q = f.question;
  if (q !== null && typeof q === 'object' && !Array.isArray(q)) {
    // The original AI2 layout.
    const o = q as Record<string, unknown>;
    const list = o.choices;
    if (!Array.isArray(list)) throw new EvalDataError(`${at}: field 'question.choices' must be a list of {text, label}, got ${describe(list)}`);
    const texts: string[] = [];
    const labels: string[] = [];
    list.forEach((c: unknown, i) => {
      const e = (c ?? {}) as Record<string, unknown>;
      if (typeof e.text !== 'string' || typeof e.label !== 'string')
        throw new EvalDataError(`${at}: question.choices[${i}] must have string 'text' and 'label'`);
      texts.push(e.text);
      labels.push(e.label);
    });
    return { question: stringField(o, 'stem', at), texts, labels };
  }
  const c = f.choices;
  if (c === null || typeof c !== 'object' || Array.isArray(c))
    throw new EvalDataError(`${at}: field 'choices' must be an object {text: [...], label: [...]}, got ${describe(c)}`);
  const o = c as Record<string, unknown>;
  const texts = o.text, labels = o.label;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!strings(texts) || !strings(labels) || texts.length !== labels.length)
    throw new EvalDataError(`${at}: field 'choices' must hold two string lists of one length, 'text' and 'label'`);
  return { question: stringField(f, 'question', at), texts, labels };
}

function parseArc(f: Record<string, unknown>, at: string): ParsedExample {
  const { question, texts, labels } = choicesOf(f, at);
  checkChoices(texts, at);
  const key = stringField(f, 'answerKey', at);
  const label = labels.indexOf(key);
  if (label < 0) throw new EvalDataError(`${at}: answerKey '${key}' is not one of the choice labels ${labels.join(', ')}`);
  const context = `Question: ${question}\nAnswer:`;
  return { requests: texts.map((t) => ({ context, continuation: ' ' + t })), label, choiceTexts: texts };
}

const common = { fields: ['question', 'answerKey'], metrics: ['acc', 'acc_norm'], text: true, parse: parseArc } as const;

export const arcEasy: TaskDef = { ...common, name: 'arc_easy', about: 'ARC-Easy: grade-school science questions (acc, acc_norm)' };
export const arcChallenge: TaskDef = {
  ...common, name: 'arc_challenge', about: 'ARC-Challenge: the ARC questions simple methods get wrong (acc, acc_norm)',
};
