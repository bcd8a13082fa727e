/**
 * `lmforge tokenizer save DIR`: writes tokenizer.json (byte for byte the one lmforge uses) and a
 * tokenizer_config.json that transformers' AutoTokenizer loads as a Qwen2TokenizerFast.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { loadTokenizer, type Qwen3Tokenizer } from '../data/tokenizer.js';
import { writeFileAtomic } from '../files/atomic.js';

const SPEC: Record<string, FlagSpec> = {
  tokenizer: { type: 'string', help: 'tokenizer.json or a Hugging Face directory (default: the bundled Qwen3 tokenizer)' },
  'max-length': { type: 'number', help: 'model_max_length written to tokenizer_config.json', default: 131072 },
  force: { type: 'boolean', help: 'replace an existing tokenizer.json / tokenizer_config.json in DIR' },
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

/** The two files a tokenizer save writes, name -> contents. */
export function tokenizerFiles(tok: Qwen3Tokenizer, maxLength = 131072): Record<string, string> {
  return {
    'tokenizer.json': tok.jsonText(),
    'tokenizer_config.json': JSON.stringify(tokenizerConfig(tok, maxLength), null, 2) + '\n',
  };
}

/**
 * Writes tokenizer.json + tokenizer_config.json into dir (created if missing), each safely. Existing files of
 * those names (a model's own tokenizer, say) are replaced only with `force`.
 */
export function saveTokenizer(tok: Qwen3Tokenizer, dir: string, maxLength = 131072, force = false): string[] {
  const files = tokenizerFiles(tok, maxLength);
  const existing = Object.keys(files).filter((f) => fs.existsSync(path.join(dir, f)));
  if (existing.length && !force)
    throw new UsageError(`tokenizer save: ${dir} already has ${existing.join(' and ')}; choose another directory, or pass --force to replace ${existing.length > 1 ? 'them' : 'it'}`);
  fs.mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([name, text]) => {
    const file = path.join(dir, name);
    writeFileAtomic(file, text);
    return file;
  });
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
  const files = saveTokenizer(loadTokenizer(flags.tokenizer as string | undefined), dir, maxLength, flags.force === true);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return 0;
}
