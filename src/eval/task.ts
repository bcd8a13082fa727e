/**
 * What a task is: how one row of its data file becomes an example (the log-likelihood requests to score and the
 * correct answer), and which metrics it reports. The definitions follow lm-evaluation-harness's zero-shot
 * templates (src/eval/tasks/*); docs/eval.md lists them.
 */
import { EvalDataError } from './rows.js';

/** Score log P(continuation | context): text, tokenized with the model's tokenizer, or token ids as given. */
export type Request =
  | { readonly context: string; readonly continuation: string }
  | { readonly contextIds: readonly number[]; readonly continuationIds: readonly number[] };

export interface ParsedExample {
  /** One request per choice (multiple choice), or one request (cloze). */
  requests: Request[];
  /** Index of the correct choice; null for a cloze task (LAMBADA), which is scored by greedy match. */
  label: number | null;
  /**
   * Per choice, the text lm-evaluation-harness measures for length normalisation: `acc_norm` divides the
   * log-likelihood by its length in characters (Python's len). Null for token-id tasks.
   */
  choiceTexts: string[] | null;
}

export interface Example extends ParsedExample {
  /** 0-based position among the examples read (the input order). */
  index: number;
  /** "FILE:LINE", for errors found after parsing (e.g. at tokenization). */
  where: string;
}

export type MetricName = 'acc' | 'acc_norm' | 'perplexity';

export interface TaskDef {
  readonly name: string;
  readonly about: string;
  /** Fields every row of this task has (a row missing them may belong to another task: the error says which). */
  readonly fields: readonly string[];
  readonly metrics: readonly MetricName[];
  /** Text requests need a tokenizer; token-id tasks do not. */
  readonly text: boolean;
  /** One row to one example; `at` ("FILE:LINE") prefixes every error. */
  parse(fields: Record<string, unknown>, at: string): ParsedExample;
}

// ---- field readers shared by the task definitions: each error names the file, line and field ----

export function stringField(f: Record<string, unknown>, name: string, at: string): string {
  const v = f[name];
  if (typeof v !== 'string') throw new EvalDataError(`${at}: field '${name}' must be a string, got ${describe(v)}`);
  return v;
}

export function stringListField(f: Record<string, unknown>, name: string, at: string): string[] {
  const v = f[name];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new EvalDataError(`${at}: field '${name}' must be a list of strings, got ${describe(v)}`);
  return v as string[];
}

/** A whole number, or a string of one (Hugging Face HellaSwag stores "0".."3"). */
export function indexField(f: Record<string, unknown>, name: string, at: string): number {
  const v = f[name];
  const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    const hint = v === '' || v === null || v === undefined ? ' (an unlabelled test split? use the validation split)' : '';
    throw new EvalDataError(`${at}: field '${name}' must be a whole number (the correct choice), got ${describe(v)}${hint}`);
  }
  return n;
}

export function checkLabel(label: number, choices: number, at: string, field = 'label'): number {
  if (label < 0 || label >= choices)
    throw new EvalDataError(`${at}: ${field} ${label} is out of range for ${choices} choices (0..${choices - 1})`);
  return label;
}

export function checkChoices(choices: readonly string[], at: string, what = 'choice'): void {
  if (choices.length < 2) throw new EvalDataError(`${at}: needs at least 2 choices, got ${choices.length}`);
  choices.forEach((c, i) => {
    if (c.trim() === '') throw new EvalDataError(`${at}: ${what} ${i} is empty${c === '' ? '' : ' (only whitespace)'}`);
  });
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 40 ? s.slice(0, 40) + '...' : s}`;
}
