/**
 * The dashboard on a worker thread, for `lmforge train --dashboard`: the training loop keeps the main thread busy
 * between steps, so the server runs on its own event loop and answers while the run trains.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startDashboard, type DashboardOptions } from './dashboard.js';

interface ThreadData {
  lmforgeDashboard: DashboardOptions;
}

export interface DashboardThread {
  url: string;
  close(): Promise<void>;
}

export function startDashboardThread(opts: DashboardOptions): Promise<DashboardThread> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { lmforgeDashboard: opts } satisfies ThreadData });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { url?: string; error?: string }) => {
      if (m.error) return reject(new Error(m.error));
      worker.unref(); // the run's end, not the server, decides when the process exits
      resolve({ url: m.url!, close: async () => void (await worker.terminate()) });
    });
  });
}

if (!isMainThread && (workerData as Partial<ThreadData> | null)?.lmforgeDashboard) {
  startDashboard((workerData as ThreadData).lmforgeDashboard).then(
    (d) => parentPort!.postMessage({ url: d.url }),
    (e: Error) => parentPort!.postMessage({ error: e.message }),
  );
}
