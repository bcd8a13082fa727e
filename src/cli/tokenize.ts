/**
 * `lmforge tokenize --jsonl`: JSON Lines `{"text": ...}` on stdin, one JSON array of token ids per line on
 * stdout, in order. This is the library's default encode: added tokens in the text are recognised, no BOS.
 * A line that is not valid UTF-8 is an error naming it (never silently replaced by U+FFFD): the same input
 * `prepare` refuses too (it skips such a document and counts it as invalid_utf8, or stops with --on-error fail).
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { loadTokenizer } from '../data/tokenizer.js';

const SPEC: Record<string, FlagSpec> = {
  jsonl: { type: 'boolean', help: 'read JSON Lines with a text field from stdin (the only input mode)' },
  field: { type: 'string', help: 'JSON field holding the text', default: 'text' },
  tokenizer: { type: 'string', help: 'tokenizer.json or a Hugging Face directory (default: the bundled Qwen3 tokenizer)' },
  help: { type: 'boolean', help: 'show this help' },
};

const BATCH = 512;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** stdin as raw lines (bytes, without the '\n' or '\r\n'), so invalid UTF-8 is seen rather than replaced. */
async function* stdinLines(): AsyncGenerator<Uint8Array> {
  // Pieces of the current line so far: a long line costs one concatenation, not one per chunk.
  let parts: Buffer[] = [];
  const line = (tail: Buffer): Buffer => {
    const b = parts.length ? Buffer.concat([...parts, tail]) : tail;
    parts = [];
    return b.length && b[b.length - 1] === 0x0d ? b.subarray(0, b.length - 1) : b;
  };
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      yield line(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length) yield line(Buffer.alloc(0));
}

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
  let batch: string[] = [];
  let lineNo = 0;
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const ids = await tok.encodeBatch(batch);
    batch = [];
    const out = ids.map((a) => JSON.stringify(a)).join('\n') + '\n';
    if (!process.stdout.write(out)) await new Promise((r) => process.stdout.once('drain', r));
  };
  for await (const bytes of stdinLines()) {
    lineNo++;
    let line: string;
    try {
      line = strictUtf8.decode(bytes);
    } catch {
      process.stderr.write(
        `lmforge tokenize: stdin line ${lineNo} is not valid UTF-8; fix or drop it (prepare skips such documents as invalid_utf8)\n`,
      );
      await flush();
      return 1;
    }
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
