/**
 * `lmforge generate --model RUN|DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N --temperature X
 *  --top-k K --top-p P --seed S] [--json]`. Greedy by default (temperature 0), like transformers' generate.
 * Streams text as it is produced; with --json prints {"ids": [...]} with only the new ids.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { createBackend, DEVICE_NAMES, parseDevice } from '../engine/index.js';
import { Decoder } from '../model/decoder.js';
import { loadWeights } from '../model/weights.js';
import { KvGenerator } from '../model/generate.js';
import { openModelSource } from '../io/model-dir.js';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'run directory, checkpoint, or Hugging Face model directory' },
  prompt: { type: 'string', help: 'prompt text (tokenized with the model\'s tokenizer, default Qwen3)' },
  'prompt-ids': { type: 'string', help: 'prompt as comma-separated token ids (models without a tokenizer)' },
  'max-new-tokens': { type: 'number', help: 'tokens to generate', default: 64 },
  temperature: { type: 'number', help: 'sampling temperature; 0 = greedy', default: 0 },
  'top-k': { type: 'number', help: 'sample among the k most likely tokens (0 = all)', default: 0 },
  'top-p': { type: 'number', help: 'nucleus sampling threshold (1 = off)', default: 1 },
  seed: { type: 'number', help: 'sampling seed', default: 0 },
  json: { type: 'boolean', help: 'print {"ids": [...]} (new ids only) instead of text' },
  tokenizer: { type: 'string', help: 'tokenizer.json or directory (default: beside the model, else Qwen3)' },
  device: { type: 'string', help: DEVICE_NAMES.join(' | ') + ' (cuda-interpret: the CUDA kernels on the CPU, slow)', default: 'cpu' },
  threads: { type: 'number', help: 'CPU threads' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('generate', argv, FLAGS);
  const synopsis = '--model RUN|DIR (--prompt TEXT | --prompt-ids 1,2,3) [flags]';
  if (flags.help) {
    process.stdout.write(usage('generate', synopsis, FLAGS) + '\n');
    return 0;
  }
  if (positionals.length) throw new UsageError(`generate: unexpected argument '${positionals[0]}'`);
  if (!flags.model) throw new UsageError(`generate: --model is required\n${usage('generate', synopsis, FLAGS)}`);
  if ((flags.prompt === undefined) === (flags['prompt-ids'] === undefined))
    throw new UsageError('generate: give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
  const maxNew = flags['max-new-tokens'] as number;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new UsageError(`generate: --max-new-tokens must be a whole number >= 1, got ${maxNew}`);
  const temperature = flags.temperature as number;
  const topP = flags['top-p'] as number;
  if (temperature < 0) throw new UsageError('generate: --temperature must be >= 0');
  if (!(topP > 0 && topP <= 1)) throw new UsageError('generate: --top-p must be in (0, 1]');
  const topK = flags['top-k'] as number;
  if (!(Number.isInteger(topK) && topK >= 0)) throw new UsageError(`generate: --top-k must be a whole number >= 0 (0 = all tokens), got ${topK}`);

  const src = openModelSource(flags.model as string);
  const be = createBackend(parseDevice(flags.device as string));
  if (flags.threads !== undefined) be.setThreads(flags.threads as number);
  const model = new Decoder(be, src.cfg);
  try {
    loadWeights(model, src.tensors, src.dir);
  } finally {
    src.close();
  }

  let prompt: number[];
  let tok: import('../data/tokenizer.js').Qwen3Tokenizer | null = null;
  if (flags['prompt-ids'] !== undefined) {
    prompt = String(flags['prompt-ids']).split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
      const x = Number(s);
      if (!Number.isInteger(x)) throw new UsageError(`generate: --prompt-ids: '${s}' is not a token id`);
      return x;
    });
  } else {
    const { loadTokenizer } = await import('../data/tokenizer.js');
    tok = loadTokenizer((flags.tokenizer as string | undefined) ?? src.tokenizer ?? undefined);
    prompt = await tok.encode(flags.prompt as string);
  }
  if (prompt.length === 0) throw new UsageError('generate: the prompt is empty');
  const maxLen = Math.min(src.cfg.context_length, prompt.length + maxNew);
  if (prompt.length >= src.cfg.context_length)
    throw new UsageError(`generate: the prompt has ${prompt.length} tokens, at or past the model's context_length ${src.cfg.context_length}`);
  if (maxLen - prompt.length < maxNew)
    process.stderr.write(
      `generate: warning: only ${maxLen - prompt.length} of the ${maxNew} new tokens asked for fit in the model's context_length ` +
        `${src.cfg.context_length} after the ${prompt.length}-token prompt; generation stops there\n`,
    );
  const gen = new KvGenerator(model, maxLen);
  const opts = { maxNewTokens: maxLen - prompt.length, temperature, topK, topP, seed: flags.seed as number };
  const out: number[] = [];
  const dec = tok?.incrementalDecoder();
  if (!flags.json && flags.prompt !== undefined) process.stdout.write(flags.prompt as string);
  for (const id of gen.generate(prompt, opts)) {
    out.push(id);
    if (!flags.json) process.stdout.write(dec ? dec.push(id) : `${out.length > 1 ? ',' : ''}${id}`);
  }
  if (flags.json) process.stdout.write(JSON.stringify({ ids: out }) + '\n');
  else process.stdout.write((dec ? dec.flush() : '') + '\n');
  gen.dispose();
  model.dispose();
  return 0;
}
