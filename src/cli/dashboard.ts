/**
 * `lmforge dashboard [DIR] [--port N] [--host H]`: a local web page with the runs under DIR (default runs/), their
 * configs and status, and their loss, lr, throughput and grad-norm curves, live while they train. Loopback only
 * unless --host names another address.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { DEFAULT_PORT, startDashboard } from '../report/dashboard.js';

const FLAGS: Record<string, FlagSpec> = {
  port: { type: 'number', help: `port (0 = any free one)`, default: DEFAULT_PORT },
  host: { type: 'string', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 serves every network, with no authentication)' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('dashboard', argv, FLAGS);
  if (flags.help || positionals.length > 1) {
    const text = usage('dashboard', '[DIR] [--port N] [--host H]', FLAGS) + '\n';
    if (flags.help) process.stdout.write(text);
    else process.stderr.write(`dashboard: give at most one directory\n${text}`);
    return flags.help ? 0 : 2;
  }
  const port = flags.port as number;
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError(`dashboard: --port must be 0..65535, got ${port}`);
  const d = await startDashboard({ dir: positionals[0] ?? 'runs', port, host: flags.host as string | undefined });
  process.stderr.write(`lmforge dashboard: ${d.url} (runs under ${positionals[0] ?? 'runs'}; Ctrl-C stops it)\n`);
  if (flags.host !== undefined && !['127.0.0.1', 'localhost', '::1'].includes(flags.host as string))
    process.stderr.write(`warning: listening on ${d.host}: anyone who can reach this machine can read these runs' metrics and configs\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await d.close();
  return 0;
}
