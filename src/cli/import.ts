/**
 * `lmforge import HF_DIR --out DIR`: reads a Hugging Face checkpoint (Qwen3, Llama or GPT-2; single or sharded;
 * f32/f16/bf16/f64; tied with or without a duplicate lm_head), checks it loads into the engine, and writes an
 * lmforge model directory (model_config.json + model.safetensors f32 + config.json) that training starts from:
 *   lmforge train --set model=DIR init_from=DIR
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { openModelSource, writeModelDir } from '../io/model-dir.js';
import { createBackend } from '../engine/index.js';
import { Decoder } from '../model/decoder.js';
import { hfTensors, loadWeights } from '../model/weights.js';

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'lmforge model directory to write' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('import', argv, FLAGS);
  if (flags.help || positionals.length === 0) {
    process.stdout.write(usage('import', 'HF_DIR --out DIR', FLAGS) + '\n');
    return flags.help ? 0 : 2;
  }
  if (!flags.out) throw new UsageError('import: --out DIR is required');
  const src = openModelSource(positionals[0]!);
  const model = new Decoder(createBackend('cpu'), src.cfg);
  loadWeights(model, src.tensors, src.dir);
  src.close();
  const out = resolve(flags.out as string);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeModelDir(tmp, model.cfg, hfTensors(model, 'params'));
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  process.stderr.write(
    `imported ${model.layout.total.toLocaleString('en-US')} parameters (${src.cfg.family}) into ${out}\n` +
      `train from it: lmforge train --set model=${out} init_from=${out}\n`,
  );
  model.dispose();
  return 0;
}
