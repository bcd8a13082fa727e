/** Process entry of a sweep worker: `node worker-main.js '<WorkerSpec as JSON>'` (started by runner.ts). */
import { runWorker, type WorkerMessage, type WorkerSpec } from './worker.js';

const send = (m: WorkerMessage): void => {
  process.stdout.write(JSON.stringify(m) + '\n');
};

try {
  await runWorker(JSON.parse(process.argv[2] ?? '{}') as WorkerSpec, send);
} catch (e) {
  send({ t: 'error', message: (e as Error).message.split('\n')[0]! });
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
}
