/**
 * `lmforge export RUN --hf DIR [--dtype f32|bf16] [--shard-mb N]`: a Hugging Face directory that
 * `AutoModelForCausalLM.from_pretrained` loads (config.json with the family's architecture class, safetensors
 * weights) plus the tokenizer files when the model uses the Qwen3 vocabulary.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { openModelSource } from '../io/model-dir.js';
import { checkExportable } from '../config/hf-config.js';
import { saveHfCheckpoint } from '../io/hf-checkpoint.js';
import { hfShape } from '../model/weights.js';
import { buildLayout } from '../model/layout.js';
import { QWEN3_EMBEDDING_ROWS, QWEN3_EOT_ID } from '../data/tokenizer.js';

const FLAGS: Record<string, FlagSpec> = {
  hf: { type: 'string', help: 'output directory' },
  dtype: { type: 'string', help: 'f32 | bf16', default: 'f32' },
  'shard-mb': { type: 'number', help: 'split the weights into shards of at most this many MB (0 = one file)', default: 0 },
  tokenizer: { type: 'string', help: 'tokenizer.json to include (default: the Qwen3 tokenizer for Qwen3-vocabulary models)' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('export', argv, FLAGS);
  if (flags.help || positionals.length === 0) {
    process.stdout.write(usage('export', 'RUN --hf DIR [flags]', FLAGS) + '\n');
    return flags.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new UsageError(`export: one run directory expected, got ${positionals.join(' ')}`);
  if (!flags.hf) throw new UsageError('export: --hf DIR (the output directory) is required');
  const dtype = String(flags.dtype).toUpperCase();
  if (dtype !== 'F32' && dtype !== 'BF16') throw new UsageError(`export: --dtype must be f32 or bf16, got ${flags.dtype}`);
  const src = openModelSource(positionals[0]!);
  checkExportable(src.cfg);
  const layout = buildLayout(src.cfg);
  // The source already holds Hugging Face names and layout; a tied model gets no duplicate lm_head.
  const tensors = layout.params.map((p) => {
    const shape = hfShape(p);
    return { name: p.name, shape, data: src.tensors.read(p.name) };
  });
  src.close();
  const out = flags.hf as string;
  const mb = flags['shard-mb'] as number;
  saveHfCheckpoint(out, src.cfg, tensors, { dtype, maxShardBytes: mb > 0 ? mb * 1e6 : undefined });
  const wrote = [`${out}/config.json`, 'weights'];
  if (flags.tokenizer || src.tokenizer || (src.cfg.vocab_size >= QWEN3_EOT_ID && src.cfg.vocab_size <= QWEN3_EMBEDDING_ROWS)) {
    const { loadTokenizer } = await import('../data/tokenizer.js');
    const { saveTokenizer } = await import('./tokenizer.js');
    const tok = loadTokenizer((flags.tokenizer as string | undefined) ?? src.tokenizer ?? undefined);
    saveTokenizer(tok, out, src.cfg.context_length);
    wrote.push('tokenizer.json', 'tokenizer_config.json');
  } else {
    process.stderr.write(`export: no tokenizer written (vocab ${src.cfg.vocab_size} is not the Qwen3 vocabulary; pass --tokenizer FILE to include one)\n`);
  }
  process.stderr.write(`exported ${layout.total.toLocaleString('en-US')} parameters (${src.cfg.family}, ${dtype}) to ${out}: ${wrote.join(', ')}\n`);
  return 0;
}
