/**
 * `lmforge tokenizer save DIR`: writes tokenizer.json (byte for byte the one lmforge uses) and a
 * tokenizer_config.json that transformers' AutoTokenizer loads as a Qwen2TokenizerFast.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { loadTokenizer, type Qwen3Tokenizer } from '../data/tokenizer.js';

const SPEC: Record<string, FlagSpec> = {
  tokenizer: { type: 'string', help: 'tokenizer.json or a Hugging Face directory (default: the bundled Qwen3 tokenizer)' },
  'max-length': { type: 'number', help: 'model_max_length written to tokenizer_config.json', default: 131072 },
  help: { type: 'boolean', help: 'show this help' },
};

/** The tokenizer_config.json of a base (pretraining) model: `<|endoftext|>` ends documents and pads; no BOS. */
export function tokenizerConfig(tok: Qwen3Tokenizer, maxLength: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of tok.addedTokens)
    decoder[String(t.id)] = { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special };
  const eot = tok.addedTokens.find((t) => t.id === tok.eotId)?.content ?? null;
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: tok.addedTokens.filter((t) => t.special && t.id !== tok.eotId).map((t) => t.content),
    bos_token: null,
    clean_up_tokenization_spaces: false,
    eos_token: eot,
    errors: 'replace',
    model_max_length: maxLength,
    pad_token: eot,
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}

/** Writes tokenizer.json + tokenizer_config.json into dir (created if missing). */
export function saveTokenizer(tok: Qwen3Tokenizer, dir: string, maxLength = 131072): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const a = path.join(dir, 'tokenizer.json');
  const b = path.join(dir, 'tokenizer_config.json');
  fs.writeFileSync(a, tok.jsonText());
  fs.writeFileSync(b, JSON.stringify(tokenizerConfig(tok, maxLength), null, 2) + '\n');
  return [a, b];
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('tokenizer', argv, SPEC);
  if (flags.help || positionals.length === 0) {
    process.stdout.write(usage('tokenizer', 'save DIR [flags]', SPEC) + '\n');
    return flags.help ? 0 : 2;
  }
  const [sub, dir, ...rest] = positionals;
  if (sub !== 'save') throw new UsageError(`tokenizer: unknown subcommand '${sub}'; the only one is 'save DIR'`);
  if (!dir) throw new UsageError('tokenizer save: give the directory to write, e.g. lmforge tokenizer save out/tok');
  if (rest.length) throw new UsageError(`tokenizer save: unexpected argument '${rest[0]}'`);
  const maxLength = flags['max-length'] as number;
  if (!(Number.isInteger(maxLength) && maxLength > 0)) throw new UsageError(`tokenizer save: --max-length must be a positive integer`);
  const files = saveTokenizer(loadTokenizer(flags.tokenizer as string | undefined), dir, maxLength);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return 0;
}
