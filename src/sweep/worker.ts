/**
 * One variant of a sweep, trained in its own process (so a crash or a kill costs that run only, and a resume is a
 * fresh process that continues from the run's checkpoint). The sweep runner starts `worker-main.js` with a
 * WorkerSpec; the worker talks back on stdout, one JSON message per line (rank 0 only), and logs on stderr.
 */
import { existsSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadTrainConfig } from '../config/train.js';
import { resolveModelConfig, Trainer, type StepReport } from '../train/trainer.js';
import { latestCheckpoint, RUN_FILES } from '../io/run-dir.js';

export interface WorkerSpec {
  /** Base training config file, or null for the defaults. */
  base: string | null;
  sets: string[];
  runDir: string;
}

/** What a worker reports; `seconds` count from the worker process's start. */
export type WorkerMessage =
  | { t: 'start'; step: number; steps: number; params: number }
  | ({ t: 'step'; seconds: number } & StepReport)
  | { t: 'log'; line: string }
  | { t: 'checkpoint'; step: number; seconds: number }
  | { t: 'end'; step: number; seconds: number; peakRssBytes: number; enginePeakBytes: number }
  | { t: 'error'; message: string };

/**
 * Test hook: `LMFORGE_SWEEP_KILL_AT=<variant dir name>:<step>` kills the whole sweep (runner and worker, SIGKILL)
 * right after that step, as a power cut or an OOM killer would. Used by the resume test; never set otherwise.
 */
export const KILL_ENV = 'LMFORGE_SWEEP_KILL_AT';

function killPoint(runDir: string): number | null {
  const v = process.env[KILL_ENV];
  if (!v) return null;
  const at = v.lastIndexOf(':');
  return v.slice(0, at) === basename(runDir) ? Number(v.slice(at + 1)) : null;
}

const seconds = (): number => performance.now() / 1000;

/** Trains one variant: resumes from the run's latest checkpoint when there is one, else starts it afresh. */
export async function runWorker(spec: WorkerSpec, send: (m: WorkerMessage) => void): Promise<void> {
  const tc = loadTrainConfig(spec.base ?? undefined, spec.sets);
  tc.run_dir = spec.runDir;
  const trainer = new Trainer(tc, resolveModelConfig(tc), spec.runDir, { zero1: tc.zero1 });
  const lead = trainer.group.rank === 0;
  const say = (m: WorkerMessage): void => {
    if (lead) send(m);
  };
  const ckpt = latestCheckpoint(spec.runDir);
  const resume = ckpt !== null;
  // A previous attempt that died before its first checkpoint left metrics that a fresh start must not append to.
  const metrics = join(spec.runDir, RUN_FILES.metrics);
  if (!resume && lead && existsSync(metrics)) {
    let n = 1;
    while (existsSync(join(spec.runDir, `metrics.attempt-${n}.jsonl`))) n++;
    renameSync(metrics, join(spec.runDir, `metrics.attempt-${n}.jsonl`));
  }
  trainer.group.barrier();
  // The runner made this directory for the variant (its log is already there).
  await trainer.setup(resume, { ownedDir: true });
  const kill = killPoint(spec.runDir);
  const from = ckpt ? Number(/step-(\d+)$/.exec(ckpt)?.[1] ?? 0) : 0;
  say({ t: 'start', step: from, steps: tc.steps, params: trainer.model.layout.total });
  const result = await trainer.run({
    onStep: (r) => {
      say({ t: 'step', ...r, seconds: seconds() });
    },
    onLog: (line) => say({ t: 'log', line }),
    afterStep: (s) => {
      if (tc.checkpoint_every > 0 && s % tc.checkpoint_every === 0 && s !== tc.steps) say({ t: 'checkpoint', step: s, seconds: seconds() });
      if (kill === s) {
        process.kill(process.ppid, 'SIGKILL');
        process.kill(process.pid, 'SIGKILL');
      }
    },
  });
  say({
    t: 'end', step: result.steps, seconds: seconds(),
    peakRssBytes: process.resourceUsage().maxRSS * 1024, enginePeakBytes: trainer.be.peakAllocatedBytes(),
  });
  trainer.dispose();
}
