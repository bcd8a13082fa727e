/**
 * `lmforge import HF_DIR --out DIR [--force]`: reads a Hugging Face checkpoint (Qwen3, Llama or GPT-2; single or
 * sharded; f32/f16/bf16/f64; tied with or without a duplicate lm_head), checks it loads into the engine (finite
 * weights of the right shapes), and writes an lmforge model directory (model_config.json + model.safetensors f32
 * + config.json) that training starts from:
 *   lmforge train --set model=DIR init_from=DIR
 * DIR must be new or empty; with --force an existing one gets only those three files replaced (written to
 * DIR.tmp-<pid> first, then renamed in), and everything else in it is kept.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { MODEL_DIR_FILES, openModelSource, writeModelDir } from '../io/model-dir.js';
import { checkOutputDir, publishDir, tmpPath } from '../files/atomic.js';
import { createBackend } from '../engine/index.js';
import { Decoder } from '../model/decoder.js';
import { hfTensors, loadWeights } from '../model/weights.js';

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'lmforge model directory to write (new or empty)' },
  force: { type: 'boolean', help: `write into a non-empty --out, replacing only ${MODEL_DIR_FILES.join(', ')}` },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('import', argv, FLAGS);
  if (flags.help || positionals.length === 0) {
    process.stdout.write(usage('import', 'HF_DIR --out DIR [--force]', FLAGS) + '\n');
    return flags.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new UsageError(`import: one source directory expected, got ${positionals.join(' ')}`);
  if (!flags.out) throw new UsageError('import: --out DIR is required');
  const out = resolve(flags.out as string);
  checkOutputDir(out, { verb: 'import', force: flags.force === true, writes: MODEL_DIR_FILES.join(', ') });
  const src = openModelSource(positionals[0]!);
  const model = new Decoder(createBackend('cpu'), src.cfg);
  try {
    loadWeights(model, src.tensors, src.dir);
  } finally {
    src.close();
  }
  mkdirSync(dirname(out), { recursive: true });
  const tmp = tmpPath(out);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeModelDir(tmp, model.cfg, hfTensors(model, 'params'));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  publishDir(tmp, out, (name) => MODEL_DIR_FILES.includes(name));
  process.stderr.write(
    `imported ${model.layout.total.toLocaleString('en-US')} parameters (${src.cfg.family}) into ${out}\n` +
      `train from it: lmforge train --set model=${out} init_from=${out}\n`,
  );
  model.dispose();
  return 0;
}
