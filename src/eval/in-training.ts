/**
 * Downstream tasks during training (`eval_tasks`, `eval_tasks_every`): the data files are read and tokenized
 * once when the run starts (so a bad file stops the run before step 1), then scored on the training model
 * every `eval_tasks_every` steps and at the end. Each task gives one eval record for metrics.jsonl.
 */
import type { Decoder } from '../model/decoder.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { prepareTask, scoreTask, type PreparedTask, type TaskSpec } from './evaluate.js';
import { getTask } from './tasks/index.js';
import { EvalDataError } from './rows.js';

export interface TaskRecordFields {
  step: number;
  task: string;
  n: number;
  seconds: number;
  /** Each metric, and `<metric>_stderr`. */
  [metric: string]: number | string | null;
}

export interface TaskEvaluation {
  record: TaskRecordFields;
  /** One line for the person watching. */
  line: string;
}

export class TaskEvaluator {
  private constructor(private readonly tasks: PreparedTask[], private readonly every: number, private readonly batchTokens: number) {}

  /**
   * Reads and tokenizes every task. `tokenizer` is a tokenizer.json (empty: the bundled Qwen3 one); when the
   * training data records its tokenizer's sha256, a text task's tokenizer must be that one.
   */
  static async open(specs: readonly TaskSpec[], o: { every: number; batchTokens: number; tokenizer: string; dataTokenizerSha256?: string }): Promise<TaskEvaluator> {
    const needsText = specs.some((s) => getTask(s.task).text);
    const tok = needsText ? loadTokenizer(o.tokenizer || undefined) : null;
    if (tok && o.dataTokenizerSha256 && tok.sha256 !== o.dataTokenizerSha256)
      throw new EvalDataError(
        `eval_tasks: the tokenizer ${tok.path} (sha256 ${tok.sha256.slice(0, 12)}...) is not the one the training data was prepared with ` +
          `(sha256 ${o.dataTokenizerSha256.slice(0, 12)}...); set eval_tokenizer to that tokenizer.json`,
      );
    const prepared: PreparedTask[] = [];
    for (const s of specs) prepared.push(await prepareTask(s, tok));
    return new TaskEvaluator(prepared, o.every, o.batchTokens);
  }

  /** Due every `every` steps (0: never before the end) and at the final step. */
  due(step: number, final: boolean): boolean {
    return final || (this.every > 0 && step % this.every === 0);
  }

  /** Scores every task on the model as it is now. */
  run(model: Decoder, step: number): TaskEvaluation[] {
    return this.tasks.map((p) => {
      const r = scoreTask(model, p, { batchTokens: this.batchTokens });
      const record: TaskRecordFields = { step, task: r.task, n: r.n, seconds: r.seconds };
      for (const m of r.metrics) {
        record[m.metric] = m.value;
        record[`${m.metric}_stderr`] = m.stderr;
      }
      const figures = r.metrics.map((m) => `${m.metric} ${m.value.toFixed(4)}${m.stderr === null ? '' : ` ± ${m.stderr.toFixed(4)}`}`).join(', ');
      return { record, line: `step ${step}: ${r.task} ${figures} (${r.n} examples, ${r.seconds.toFixed(1)} s)` };
    });
  }
}
