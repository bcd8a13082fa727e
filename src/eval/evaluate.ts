/**
 * One downstream task end to end: read the data file, build the examples, tokenize, score, aggregate. Split in
 * two so that training can prepare once (read + tokenize) and score at every evaluation.
 */
import type { Decoder } from '../model/decoder.js';
import { exampleDetails, taskMetrics, type ExampleDetail, type MetricResult } from './aggregate.js';
import { scoreRequests, type ScoreOptions } from './loglikelihood.js';
import { tokenizeExamples, type TextTokenizer, type TokenRequest } from './requests.js';
import { EvalDataError, readRows, where } from './rows.js';
import type { Example, TaskDef } from './task.js';
import { checkRowFields, getTask } from './tasks/index.js';

export interface TaskSpec {
  /** A task name (tasks/index.ts). */
  task: string;
  /** Its data file: JSON Lines or Parquet. */
  data: string;
  /** Only the first `limit` examples. */
  limit?: number;
}

export interface PreparedTask {
  task: TaskDef;
  spec: TaskSpec;
  examples: Example[];
  /** Every example's requests, flat, in example order. */
  requests: TokenRequest[];
}

export interface TaskResult {
  task: string;
  data: string;
  n: number;
  metrics: MetricResult[];
  details: ExampleDetail[];
  /** Seconds spent scoring (tokenization excluded). */
  seconds: number;
}

/** Reads and parses a task's data file; every problem names the file and line. */
export async function loadExamples(spec: TaskSpec): Promise<{ task: TaskDef; examples: Example[] }> {
  const task = getTask(spec.task);
  if (spec.limit !== undefined && !(Number.isInteger(spec.limit) && spec.limit >= 1))
    throw new EvalDataError(`${task.name}: limit must be a whole number >= 1, got ${spec.limit}`);
  const rows = await readRows(spec.data, spec.limit);
  if (rows.length === 0) throw new EvalDataError(`${spec.data}: no examples in the file`);
  const examples = rows.map((row, index): Example => {
    const at = where(spec.data, row.line);
    checkRowFields(task, row, at);
    return { ...task.parse(row.fields, at), index, where: at };
  });
  return { task, examples };
}

/** Reads, parses and tokenizes (text tasks need `tokenizer`). */
export async function prepareTask(spec: TaskSpec, tokenizer: TextTokenizer | null): Promise<PreparedTask> {
  return tokenizeTask(spec, await loadExamples(spec), tokenizer);
}

/** Tokenizes parsed examples (so a caller can check the data before it loads a tokenizer). */
export async function tokenizeTask(spec: TaskSpec, loaded: { task: TaskDef; examples: Example[] }, tokenizer: TextTokenizer | null): Promise<PreparedTask> {
  const { task, examples } = loaded;
  const perExample = await tokenizeExamples(examples, task.text ? tokenizer : null);
  return { task, spec, examples, requests: perExample.flat() };
}

/** Token ids the model has no row for (a tokenizer of another model, or bad mc-tokens ids), named by file and line. */
function checkTokenIds(p: PreparedTask, vocab: number): void {
  let k = 0;
  for (const ex of p.examples) {
    for (let i = 0; i < ex.requests.length; i++) {
      const r = p.requests[k++]!;
      const bad = [...r.context, ...r.continuation].find((id) => id >= vocab);
      if (bad !== undefined) {
        const hint = p.task.text ? 'the tokenizer does not belong to this model; pass the right --tokenizer' : 'fix the ids or use the model they were made for';
        throw new EvalDataError(`${ex.where}: token id ${bad} is outside the model's vocabulary of ${vocab}; ${hint}`);
      }
    }
  }
}

export function scoreTask(model: Decoder, p: PreparedTask, opts: ScoreOptions = {}): TaskResult {
  checkTokenIds(p, model.cfg.vocab_size);
  const t0 = performance.now();
  const scored = scoreRequests(model, p.requests, opts);
  const seconds = (performance.now() - t0) / 1000;
  const details = exampleDetails(p.examples, scored);
  return { task: p.task.name, data: p.spec.data, n: details.length, metrics: taskMetrics(p.task.metrics, details), details, seconds };
}
