/**
 * `lmforge tokenize --jsonl`: JSON Lines `{"text": ...}` on stdin, one JSON array of token ids per line on
 * stdout, in order. This is the library's default encode: added tokens in the text are recognised, no BOS.
 */
import readline from 'node:readline';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { loadTokenizer } from '../data/tokenizer.js';

const SPEC: Record<string, FlagSpec> = {
  jsonl: { type: 'boolean', help: 'read JSON Lines with a text field from stdin (the only input mode)' },
  field: { type: 'string', help: 'JSON field holding the text', default: 'text' },
  tokenizer: { type: 'string', help: 'tokenizer.json or a Hugging Face directory (default: the bundled Qwen3 tokenizer)' },
  help: { type: 'boolean', help: 'show this help' },
};

const BATCH = 512;

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('tokenize', argv, SPEC);
  if (flags.help) {
    process.stdout.write(usage('tokenize', '--jsonl < in.jsonl > ids.jsonl', SPEC) + '\n');
    return 0;
  }
  if (positionals.length) throw new UsageError(`tokenize: unexpected argument '${positionals[0]}'; the input comes on stdin`);
  if (!flags.jsonl) throw new UsageError('tokenize: pass --jsonl and JSON Lines {"text": ...} on stdin');
  const field = flags.field as string;
  const tok = loadTokenizer(flags.tokenizer as string | undefined);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let batch: string[] = [];
  let lineNo = 0;
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const ids = await tok.encodeBatch(batch);
    batch = [];
    const out = ids.map((a) => JSON.stringify(a)).join('\n') + '\n';
    if (!process.stdout.write(out)) await new Promise((r) => process.stdout.once('drain', r));
  };
  for await (const line of rl) {
    lineNo++;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      process.stderr.write(`lmforge tokenize: stdin line ${lineNo} is not JSON (${(e as Error).message}); expected {"${field}": "..."}\n`);
      await flush();
      return 1;
    }
    const v = obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[field] : undefined;
    if (typeof v !== 'string') {
      process.stderr.write(`lmforge tokenize: stdin line ${lineNo} has no string field '${field}'\n`);
      await flush();
      return 1;
    }
    batch.push(v);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return 0;
}
