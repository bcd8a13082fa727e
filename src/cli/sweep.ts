/**
 * `lmforge sweep SWEEP_FILE [--set key=value ...] [--nproc N] [--out DIR] [--resume] [--dry-run [--json]]`: trains
 * every variant of a sweep file one after another (docs/experiments.md), then writes the comparison report.
 */
import { join } from 'node:path';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { Progress } from './train-progress.js';
import { readSweepFile } from '../sweep/sweep-file.js';
import { formatValue, resolveSweep, type ResolvedVariant } from '../sweep/variants.js';
import { runSweep, WORKER_LOG } from '../sweep/runner.js';
import { writeSweepReport } from '../report/compare.js';
import { fmtBytes, fmtCount, fmtDuration, fmtSci } from '../report/format.js';
import { assumedFlops } from '../plan/run-cost.js';

const FLAGS: Record<string, FlagSpec> = {
  set: { type: 'list', help: 'for every run: --set lr=1e-3 model.n_layer=6; or change the budget: --set hold.tokens=1e5' },
  nproc: { type: 'number', help: 'data-parallel ranks per run (under mpirun)', default: 1 },
  out: { type: 'string', help: 'sweep directory (default runs/sweeps/<name>)' },
  resume: { type: 'boolean', help: 'continue a stopped sweep: skip finished runs, resume a partial one from its checkpoint' },
  'dry-run': { type: 'boolean', help: 'print each variant\'s parameters, FLOPs/token, tokens, planned time and memory; run nothing' },
  json: { type: 'boolean', help: 'with --dry-run: one JSON object per variant' },
  quiet: { type: 'boolean', help: 'no progress display' },
  help: { type: 'boolean', help: 'show this help' },
};

function dryRunTable(variants: ResolvedVariant[], keys: string[]): string {
  const head = ['variant', ...keys.map((k) => k.replace(/^model\./, '')), 'params', 'FLOPs/token', 'tokens', 'steps', 'time', 'memory'];
  const rows = variants.map((v) => [
    v.id, ...keys.map((k) => (k in v.values ? formatValue(v.values[k]!) : '')), fmtCount(v.cost.params), fmtSci(v.cost.flopsPerToken), fmtCount(v.cost.tokens),
    String(v.cost.steps), fmtDuration(v.cost.seconds), fmtBytes(v.cost.memoryBytes),
  ]);
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [head, ...rows].map((r) => r.map((x, c) => (c === 0 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join('  ')).join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('sweep', argv, FLAGS);
  if (flags.help || positionals.length !== 1) {
    const text = usage('sweep', 'SWEEP_FILE [--set key=value ...] [--nproc N] [--out DIR] [--resume] [--dry-run [--json]]', FLAGS) + '\n';
    if (flags.help) process.stdout.write(text);
    else process.stderr.write(`sweep: give one sweep file (e.g. config/ablations/cpu/gqa.yaml)\n${text}`);
    return flags.help ? 0 : 2;
  }
  const nproc = flags.nproc as number;
  if (!(Number.isInteger(nproc) && nproc >= 1)) throw new UsageError(`sweep: --nproc must be a whole number >= 1, got ${nproc}`);
  if (flags.json && !flags['dry-run']) throw new UsageError('sweep: --json goes with --dry-run');
  const spec = readSweepFile(positionals[0]!);
  const { variants, hold } = resolveSweep(spec, { cliSets: (flags.set as string[] | undefined) ?? [], nproc });
  const assumption = assumedFlops(spec.assume, nproc).words;
  if (flags['dry-run']) {
    if (flags.json) {
      for (const v of variants)
        process.stdout.write(JSON.stringify({
          id: v.id, values: v.values, params: v.cost.params, flops_per_token: v.cost.flopsPerToken, tokens: v.cost.tokens,
          steps: v.cost.steps, seconds: v.cost.seconds, memory_bytes: v.cost.memoryBytes, assumption, sets: v.sets,
        }) + '\n');
      return 0;
    }
    const total = variants.reduce((a, v) => a + v.cost.seconds, 0);
    process.stdout.write(
      `sweep ${spec.name}: ${variants.length} runs, ${nproc} rank(s) each; time assumes ${assumption}; memory is the engine's per rank\n\n` +
        dryRunTable(variants, spec.keys) + `\n\ntotal planned time ${fmtDuration(total)}\n`,
    );
    return 0;
  }
  const dir = (flags.out as string | undefined) ?? join('runs', 'sweeps', spec.name);
  const quiet = flags.quiet === true;
  const say = (s: string): void => {
    if (!quiet) process.stderr.write(s + '\n');
  };
  say(`lmforge sweep ${spec.name}: ${variants.length} runs in ${dir}`);
  let progress: Progress | null = null;
  const holdRecord = Object.fromEntries(Object.entries(hold).filter(([, v]) => v !== undefined)) as Record<string, string | number>;
  const state = await runSweep({
    spec, variants, hold: holdRecord, dir, resume: flags.resume === true, nproc,
    hooks: {
      onSkip: (v, i, n) => say(`[${i + 1}/${n}] ${v.id}: done earlier, skipped`),
      onStart: (v, i, n, from, steps) => {
        say(`[${i + 1}/${n}] ${v.id}: ${from > 0 ? `resuming at step ${from} of ${steps}` : `${steps} steps`}`);
        progress = quiet ? null : new Progress({ total: steps, stream: process.stderr });
      },
      onStep: (_v, r) => progress?.update(r),
      onLog: (_v, line) => progress?.log(line),
      onEnd: (v) => {
        progress?.done();
        progress = null;
        say(v.state === 'done' ? `    done in ${fmtDuration(v.measured?.wallSeconds)}` : `    FAILED: ${v.error}`);
      },
    },
  });
  const report = writeSweepReport(dir);
  process.stdout.write(report.markdown + '\n');
  say(`report: ${report.files[0]}`);
  const failed = state.variants.filter((v) => v.state !== 'done');
  if (failed.length) {
    process.stderr.write(`${failed.length} of ${state.variants.length} runs failed: ${failed.map((v) => v.id).join(', ')}; see each run's ${WORKER_LOG}, fix, and rerun with --resume\n`);
    return 1;
  }
  return 0;
}
