/** `lmforge report RUN [--out DIR]`: draws RUN/plots/{loss,lr,throughput,grad_norm}.png from RUN/metrics.jsonl. */
import { parseArgs, usage, type FlagSpec } from './args.js';
import { writeReport } from '../report/run-plots.js';

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'directory for the PNGs (default RUN/plots)' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('report', argv, FLAGS);
  if (flags.help || positionals.length !== 1) {
    const text = usage('report', 'RUN [--out DIR]', FLAGS) + '\n';
    if (flags.help) process.stdout.write(text);
    else process.stderr.write(`report: give exactly one run directory\n${text}`);
    return flags.help ? 0 : 2;
  }
  const files = writeReport(positionals[0]!, { outDir: flags.out as string | undefined });
  for (const f of files) process.stdout.write(f + '\n');
  return 0;
}
