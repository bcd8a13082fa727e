/** The `lmforge` command: dispatches to one module per verb under src/cli/. */
import { UsageError } from './args.js';

type VerbModule = { run(argv: string[]): Promise<number> };

const VERBS: Record<string, { file: string; help: string }> = {
  train: { file: 'train', help: 'train a model (no arguments: a small Qwen3-style model on the bundled corpus, CPU)' },
  params: { file: 'params', help: 'parameter counts, FLOPs per token and memory of a preset, config file or HF directory' },
  'forward-backward': { file: 'forward-backward', help: 'logits, loss, gradients (and optional AdamW steps) of a HF model on a batch' },
  bench: { file: 'bench', help: 'time training steps of a preset on random tokens; prints one JSON line' },
  tokenize: { file: 'tokenize', help: 'tokenize JSON Lines from stdin with the Qwen3 tokenizer' },
  tokenizer: { file: 'tokenizer', help: 'tokenizer utilities (save DIR)' },
  prepare: { file: 'prepare', help: 'turn raw corpora into token shards' },
  generate: { file: 'generate', help: 'generate text with a KV cache' },
  eval: { file: 'eval', help: 'downstream accuracy (HellaSwag, ARC, PIQA, Winogrande, LAMBADA, multiple choice) as lm-evaluation-harness scores it' },
  export: { file: 'export', help: 'export a run to a Hugging Face directory' },
  import: { file: 'import', help: 'import a Hugging Face checkpoint to start training from' },
  plan: { file: 'plan', help: 'feasibility: FLOP budget, tokens, time and memory per GPU' },
  report: { file: 'report', help: 'plots of a run, or the comparison table and plots of a sweep or of several runs' },
  sweep: { file: 'sweep', help: 'train every variant of a sweep file (ablations), then compare them' },
  dashboard: { file: 'dashboard', help: 'a local web page with live curves of the runs under a directory' },
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
    // Verbs load lazily so `lmforge params` never pays for the tokenizer or the native engine.
    mod = (await import(`./${entry.file}.js`)) as VerbModule;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`/cli/`))
      throw new Error(`verb '${verb}' is not built into this version of lmforge yet`);
    throw e;
  }
  return mod.run(argv.slice(1));
}
