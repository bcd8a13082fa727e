/**
 * `lmforge report RUN [--out DIR]`: a run's plots (loss, lr, throughput, grad norm) as PNG and SVG, in RUN/plots.
 * `lmforge report SWEEP_DIR [--out DIR]`: the sweep's comparison (table + overlaid plots), in SWEEP_DIR/report.
 * `lmforge report RUN_A RUN_B ... [--out DIR]`: the same comparison of any runs, in ./report.
 */
import { existsSync } from 'node:fs';
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { writeReport } from '../report/run-plots.js';
import { runsComparison, writeComparison, writeSweepReport } from '../report/compare.js';
import { isSweepDir } from '../io/sweep-dir.js';

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'output directory (default RUN/plots, SWEEP_DIR/report, or ./report for several runs)' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('report', argv, FLAGS);
  const synopsis = 'RUN | SWEEP_DIR | RUN_A RUN_B ... [--out DIR]';
  if (flags.help || positionals.length === 0) {
    const text = usage('report', synopsis, FLAGS) + '\n';
    if (flags.help) process.stdout.write(text);
    else process.stderr.write(`report: give a run directory, a sweep directory, or several run directories\n${text}`);
    return flags.help ? 0 : 2;
  }
  for (const p of positionals) if (!existsSync(p)) throw new UsageError(`report: '${p}' does not exist; give a run or sweep directory`);
  const out = flags.out as string | undefined;
  if (positionals.length === 1 && !isSweepDir(positionals[0]!)) {
    const files = writeReport(positionals[0]!, { outDir: out });
    for (const f of files) process.stdout.write(`${f}\n${f.replace(/\.png$/, '.svg')}\n`);
    return 0;
  }
  if (positionals.some(isSweepDir) && positionals.length > 1)
    throw new UsageError('report: give one sweep directory, or run directories (a sweep\'s runs are its subdirectories)');
  const report = positionals.length === 1 ? writeSweepReport(positionals[0]!, out) : writeComparison(runsComparison(positionals), out ?? 'report');
  process.stdout.write(report.markdown + '\n');
  process.stderr.write(`report: wrote ${report.files.join(', ')}\n`);
  return 0;
}
