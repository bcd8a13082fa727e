/** `lmforge prepare`: raw corpora (text, JSONL, .jsonl.gz/.zst, Parquet) to uint32 token shards + manifest.json. */
import os from 'node:os';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { prepare, PrepareError } from '../data/prepare.js';
import type { TextMode } from '../data/readers.js';

const SPEC: Record<string, FlagSpec> = {
  input: { type: 'list', help: 'input files or directories (.txt and other text, .jsonl/.ndjson, .jsonl.gz, .jsonl.zst, .parquet)' },
  out: { type: 'string', help: 'output directory (rerun the same command to resume after an interruption)' },
  tokenizer: { type: 'string', help: 'tokenizer.json or a Hugging Face directory (default: the bundled Qwen3 tokenizer)' },
  field: { type: 'string', help: 'JSON / Parquet field holding the text', default: 'text' },
  'val-fraction': { type: 'number', help: 'fraction of documents held out for validation', default: 0.005 },
  workers: { type: 'number', help: `tokenizer worker threads (default: CPUs, here ${os.availableParallelism()})` },
  'text-mode': { type: 'string', help: "plain text: 'file' (one document per file) or 'blank-lines' (per blank-line-separated block)", default: 'file' },
  'on-error': { type: 'string', help: "bad input: 'skip' (skip and count in the manifest) or 'fail' (stop, naming file and line)", default: 'skip' },
  'shard-tokens': { type: 'number', help: 'tokens per shard file', default: 1 << 27 },
  'max-doc-mb': { type: 'number', help: 'longest document or JSONL line accepted, in MiB (longer ones are skipped as too_long)', default: 256 },
  force: { type: 'boolean', help: 'write into a non-empty --out that holds no dataset (other files are kept)' },
  quiet: { type: 'boolean', help: 'no progress output' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('prepare', argv, SPEC);
  if (flags.help) {
    process.stdout.write(usage('prepare', '--input PATHS... --out DIR [flags]', SPEC) + '\n');
    return 0;
  }
  if (positionals.length) throw new UsageError(`prepare: unexpected argument '${positionals[0]}'; inputs go after --input`);
  const inputs = flags.input as string[] | undefined;
  const out = flags.out as string | undefined;
  if (!inputs?.length) throw new UsageError('prepare: --input is required (files or directories to tokenize)');
  if (!out) throw new UsageError('prepare: --out DIR is required');
  const workers = flags.workers as number | undefined;
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) throw new UsageError(`prepare: --workers must be a positive integer, got ${workers}`);
  try {
    const m = await prepare({
      inputs,
      out,
      tokenizer: flags.tokenizer as string | undefined,
      field: flags.field as string,
      valFraction: flags['val-fraction'] as number,
      workers,
      textMode: flags['text-mode'] as TextMode,
      onError: flags['on-error'] as 'skip' | 'fail',
      shardTokens: flags['shard-tokens'] as number,
      maxDocBytes: Math.round((flags['max-doc-mb'] as number) * (1 << 20)),
      progress: !flags.quiet,
      force: flags.force === true,
    });
    const t = m.splits.train;
    const v = m.splits.val;
    process.stderr.write(
      `prepare: ${m.docs.accepted} documents -> train ${t.tokens} tokens in ${t.shards.length} shard(s), val ${v.tokens} tokens in ${v.shards.length} shard(s); manifest ${out}/manifest.json\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof PrepareError) {
      process.stderr.write(`lmforge prepare: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
