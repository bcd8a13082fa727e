/**
 * `lmforge eval --model RUN|DIR --task NAME --data FILE [--limit N] [--json] [--details FILE]`: zero-shot
 * downstream accuracy, scored as lm-evaluation-harness scores it (docs/eval.md). Prints a table (task, metric,
 * value, standard error, n), or with --json one object; --details writes one JSON line per example.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { createBackend, DEVICE_NAMES, parseDevice } from '../engine/index.js';
import { Decoder } from '../model/decoder.js';
import { loadWeights } from '../model/weights.js';
import { openModelSource } from '../io/model-dir.js';
import { writeFileAtomic } from '../files/atomic.js';
import { loadExamples, scoreTask, tokenizeTask, type TaskResult } from '../eval/evaluate.js';
import { TASKS } from '../eval/tasks/index.js';
import type { ScoreMethod } from '../eval/loglikelihood.js';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'run directory, checkpoint, or Hugging Face model directory' },
  task: { type: 'string', help: `task: ${[...TASKS.keys()].join(', ')}` },
  data: { type: 'string', help: "the task's data file: JSON Lines (.jsonl, .json, optionally .gz/.zst) or Parquet" },
  limit: { type: 'number', help: 'score only the first N examples' },
  json: { type: 'boolean', help: 'print one JSON object instead of the table' },
  details: { type: 'string', help: 'write one JSON line per example (log-likelihoods, predictions) to this file' },
  tokenizer: { type: 'string', help: "tokenizer.json or directory (default: beside the model, else Qwen3); unused by mc-tokens" },
  'batch-tokens': { type: 'number', help: 'padded tokens per forward (rows x length)', default: 2048 },
  method: { type: 'string', help: "engine (per-token log-probs on the device) | host (full logits reduced here in float64: a reference)", default: 'engine' },
  device: { type: 'string', help: DEVICE_NAMES.join(' | ') + ' (cuda-interpret: the CUDA kernels on the CPU, slow)', default: 'cpu' },
  threads: { type: 'number', help: 'CPU threads' },
  help: { type: 'boolean', help: 'show this help' },
};

const SYNOPSIS = '--model RUN|DIR --task NAME --data FILE [--limit N] [--json] [--details FILE]';

export async function run(argv: string[]): Promise<number> {
  return runEval(argv, (text) => process.stdout.write(text));
}

/** The verb with its output sent to `print` (tests run it in-process). */
export async function runEval(argv: string[], print: (text: string) => void): Promise<number> {
  const { flags, positionals } = parseArgs('eval', argv, FLAGS);
  if (flags.help) {
    print(usage('eval', SYNOPSIS, FLAGS) + '\n');
    return 0;
  }
  if (positionals.length) throw new UsageError(`eval: unexpected argument '${positionals[0]}'`);
  for (const k of ['model', 'task', 'data'] as const)
    if (flags[k] === undefined) throw new UsageError(`eval: --${k} is required\n${usage('eval', SYNOPSIS, FLAGS)}`);
  const limit = flags.limit as number | undefined;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new UsageError(`eval: --limit must be a whole number >= 1, got ${limit}`);
  const batchTokens = flags['batch-tokens'] as number;
  if (!(Number.isInteger(batchTokens) && batchTokens >= 1)) throw new UsageError(`eval: --batch-tokens must be a whole number >= 1, got ${batchTokens}`);
  const method = flags.method as string;
  if (method !== 'engine' && method !== 'host') throw new UsageError(`eval: --method must be engine or host, got '${method}'`);

  const spec = { task: flags.task as string, data: flags.data as string, limit };
  const src = openModelSource(flags.model as string);
  let prepared;
  try {
    // Data problems surface before the tokenizer and the model are loaded.
    const loaded = await loadExamples(spec);
    let tok = null;
    if (loaded.task.text) {
      const { loadTokenizer } = await import('../data/tokenizer.js');
      tok = loadTokenizer((flags.tokenizer as string | undefined) ?? src.tokenizer ?? undefined);
    }
    prepared = await tokenizeTask(spec, loaded, tok);
  } catch (e) {
    src.close();
    throw e;
  }
  const be = createBackend(parseDevice(flags.device as string));
  if (flags.threads !== undefined) be.setThreads(flags.threads as number);
  const model = new Decoder(be, src.cfg);
  try {
    loadWeights(model, src.tensors, src.dir);
    src.close();
    const progress = !flags.json && process.stderr.isTTY;
    const result = scoreTask(model, prepared, {
      batchTokens,
      method: method as ScoreMethod,
      onProgress: progress ? (d, t) => process.stderr.write(`\r${prepared.task.name}: ${d}/${t} requests`) : undefined,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    if (flags.details !== undefined) writeFileAtomic(flags.details as string, result.details.map((d) => JSON.stringify(d) + '\n').join(''));
    print(flags.json ? JSON.stringify(resultJson(result)) + '\n' : formatTable(result));
  } finally {
    model.dispose();
  }
  return 0;
}

export function resultJson(r: TaskResult): Record<string, unknown> {
  return {
    task: r.task,
    data: r.data,
    n: r.n,
    metrics: Object.fromEntries(r.metrics.map((m) => [m.metric, { value: m.value, stderr: m.stderr }])),
    seconds: r.seconds,
    examples_per_s: r.seconds > 0 ? r.n / r.seconds : null,
  };
}

export function formatTable(r: TaskResult): string {
  const rows = [['task', 'metric', 'value', 'stderr', 'n']];
  for (const m of r.metrics) {
    const digits = m.metric === 'perplexity' ? 3 : 4;
    rows.push([r.task, m.metric, m.value.toFixed(digits), m.stderr === null ? 'n/a' : m.stderr.toFixed(digits), String(m.n)]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => (c >= 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  '));
  const rate = r.seconds > 0 ? `${(r.n / r.seconds).toFixed(1)} examples/s` : '';
  return lines.join('\n') + `\n(${r.n} examples in ${r.seconds.toFixed(2)} s${rate ? ', ' + rate : ''})\n`;
}
