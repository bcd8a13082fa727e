/** The `lmforge` command: dispatches to one module per verb under src/cli/. */
import { UsageError } from './args.js';

type VerbModule = { run(argv: string[]): Promise<number> };

const VERBS: Record<string, { load: () => Promise<VerbModule>; help: string }> = {
  train: { load: () => import('./train.js'), help: 'train a model (no arguments: a small Qwen3-style model on the bundled corpus, CPU)' },
  params: { load: () => import('./params.js'), help: 'parameter counts, FLOPs per token and memory of a preset, config file or HF directory' },
  'forward-backward': { load: () => import('./forward-backward.js'), help: 'logits, loss, gradients (and optional AdamW steps) of a HF model on a batch' },
  bench: { load: () => import('./bench.js'), help: 'time training steps of a preset on random tokens; prints one JSON line' },
  tokenize: { load: () => import('./tokenize.js'), help: 'tokenize JSON Lines from stdin with the Qwen3 tokenizer' },
  tokenizer: { load: () => import('./tokenizer.js'), help: 'tokenizer utilities (save DIR)' },
  prepare: { load: () => import('./prepare.js'), help: 'turn raw corpora into token shards' },
  generate: { load: () => import('./generate.js'), help: 'generate text with a KV cache' },
  export: { load: () => import('./export.js'), help: 'export a run to a Hugging Face directory' },
  import: { load: () => import('./import.js'), help: 'import a Hugging Face checkpoint to start training from' },
  plan: { load: () => import('./plan.js'), help: 'feasibility: FLOP budget, tokens, time and memory per GPU' },
  report: { load: () => import('./report.js'), help: 'plot a run\'s metrics to PNG' },
};

export async function main(argv: string[]): Promise<number> {
  const verb = argv[0];
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    const lines = ['usage: lmforge <verb> [flags]', '', 'verbs:'];
    for (const [k, v] of Object.entries(VERBS)) lines.push(`  ${k.padEnd(18)} ${v.help}`);
    process.stdout.write(lines.join('\n') + '\n');
    return verb ? 0 : 0;
  }
  const entry = VERBS[verb];
  if (!entry) throw new UsageError(`unknown verb '${verb}'. Run 'lmforge --help' for the list.`);
  let mod: VerbModule;
  try {
    mod = await entry.load();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`/cli/`))
      throw new Error(`verb '${verb}' is not built into this version of lmforge yet`);
    throw e;
  }
  return mod.run(argv.slice(1));
}
