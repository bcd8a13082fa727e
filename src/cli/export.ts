/**
 * `lmforge export RUN --hf DIR [--dtype f32|bf16] [--shard-mb N]`: a Hugging Face directory that
 * `AutoModelForCausalLM.from_pretrained` loads (config.json with the family's architecture class, safetensors
 * weights) plus the tokenizer files when the model uses the Qwen3 vocabulary. The directory must be new or empty;
 * with --force only the files export writes are replaced (weight files of an earlier export are removed so they
 * cannot contradict the new index) and everything else in it is kept.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { openModelSource } from '../io/model-dir.js';
import { checkExportable } from '../config/hf-config.js';
import { saveHfCheckpoint } from '../io/hf-checkpoint.js';
import { checkFinite, hfShape } from '../model/weights.js';
import { checkOutputDir } from '../files/atomic.js';
import { buildLayout } from '../model/layout.js';
import { QWEN3_EMBEDDING_ROWS, QWEN3_EOT_ID } from '../data/tokenizer.js';

const FLAGS: Record<string, FlagSpec> = {
  hf: { type: 'string', help: 'output directory' },
  dtype: { type: 'string', help: 'f32 | bf16', default: 'f32' },
  'shard-mb': { type: 'number', help: 'split the weights into shards of at most this many MB (0 = one file)', default: 0 },
  tokenizer: { type: 'string', help: 'tokenizer.json to include (default: the Qwen3 tokenizer for Qwen3-vocabulary models)' },
  force: { type: 'boolean', help: 'write into a non-empty --hf directory, replacing only the files export writes' },
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
  const out = flags.hf as string;
  checkOutputDir(out, {
    verb: 'export',
    force: flags.force === true,
    writes: 'config.json, the weights (model.safetensors, or model-*-of-*.safetensors + model.safetensors.index.json), tokenizer.json, tokenizer_config.json',
  });
  const src = openModelSource(positionals[0]!);
  let tensors: { name: string; shape: number[]; data: Float32Array }[];
  const layout = buildLayout(src.cfg);
  try {
    checkExportable(src.cfg);
    // The source already holds Hugging Face names and layout; a tied model gets no duplicate lm_head.
    tensors = layout.params.map((p) => {
      const data = src.tensors.read(p.name);
      checkFinite(p.name, data, src.dir);
      return { name: p.name, shape: hfShape(p), data };
    });
  } finally {
    src.close();
  }
  const mb = flags['shard-mb'] as number;
  const wrote = [`${out}/config.json`, 'weights'];
  let extraFiles: Record<string, string> = {};
  if (flags.tokenizer || src.tokenizer || (src.cfg.vocab_size >= QWEN3_EOT_ID && src.cfg.vocab_size <= QWEN3_EMBEDDING_ROWS)) {
    const { loadTokenizer } = await import('../data/tokenizer.js');
    const { tokenizerFiles } = await import('./tokenizer.js');
    extraFiles = tokenizerFiles(loadTokenizer((flags.tokenizer as string | undefined) ?? src.tokenizer ?? undefined), src.cfg.context_length);
    wrote.push(...Object.keys(extraFiles));
  } else {
    process.stderr.write(`export: no tokenizer written (vocab ${src.cfg.vocab_size} is not the Qwen3 vocabulary; pass --tokenizer FILE to include one)\n`);
  }
  saveHfCheckpoint(out, src.cfg, tensors, { dtype, maxShardBytes: mb > 0 ? mb * 1e6 : undefined, extraFiles });
  process.stderr.write(`exported ${layout.total.toLocaleString('en-US')} parameters (${src.cfg.family}, ${dtype}) to ${out}: ${wrote.join(', ')}\n`);
  return 0;
}
