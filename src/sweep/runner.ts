/**
 * Runs a sweep: one worker process per variant, one after another, each in its own run directory under the sweep
 * directory, with sweep.json rewritten atomically at every change of state. A failed run is recorded with its
 * error and the sweep goes on. `resume` skips finished runs and continues a partial one from its checkpoint.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';
import { isSweepDir, readSweepState, writeSweepState, type SweepState, type SweepVariant } from '../io/sweep-dir.js';
import { localMpirunArgs } from '../parallel/launch.js';
import { writeReport } from '../report/run-plots.js';
import { assumedFlops } from '../plan/run-cost.js';
import type { SweepSpec } from './sweep-file.js';
import { formatValue, type ResolvedVariant } from './variants.js';
import type { WorkerMessage, WorkerSpec } from './worker.js';
import type { StepReport } from '../train/trainer.js';

export interface SweepHooks {
  /** A variant starts (or resumes from `fromStep`). */
  onStart?(v: SweepVariant, index: number, total: number, fromStep: number, steps: number): void;
  onStep?(v: SweepVariant, report: StepReport): void;
  onLog?(v: SweepVariant, line: string): void;
  /** A finished variant was skipped on resume. */
  onSkip?(v: SweepVariant, index: number, total: number): void;
  /** A variant ended: its state is 'done' or 'failed'. */
  onEnd?(v: SweepVariant): void;
}

export interface RunSweepOptions {
  spec: SweepSpec;
  variants: ResolvedVariant[];
  /** The sweep file's hold after the command line's changes. */
  hold: Record<string, string | number>;
  dir: string;
  resume: boolean;
  nproc: number;
  hooks?: SweepHooks;
}

export class SweepStateError extends Error {}

const WORKER = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** Worker log file in each run directory (stderr of every attempt, appended). */
export const WORKER_LOG = 'sweep-worker.log';

function freshState(o: RunSweepOptions): SweepState {
  return {
    version: 1,
    name: o.spec.name,
    file: o.spec.file,
    base: o.spec.base,
    hold: o.hold,
    keys: o.spec.keys,
    nproc: o.nproc,
    assumption: assumedFlops(o.spec.assume, o.nproc).words,
    created: new Date().toISOString(),
    variants: o.variants.map((v) => ({
      id: v.id,
      values: Object.fromEntries(Object.entries(v.values).map(([k, x]) => [k, typeof x === 'number' ? formatValue(x) : x])),
      sets: v.sets,
      runDir: v.id,
      state: 'pending',
      attempts: 0,
      prediction: {
        params: v.cost.params, flopsPerToken: v.cost.flopsPerToken, tokens: v.cost.tokens, steps: v.cost.steps,
        seconds: v.cost.seconds, memoryBytes: v.cost.memoryBytes,
      },
    })),
  };
}

/** The state to continue from: a new one, or the saved one when it describes the same runs. */
function openState(o: RunSweepOptions): SweepState {
  const fresh = freshState(o);
  if (isSweepDir(o.dir)) {
    if (!o.resume)
      throw new SweepStateError(`${o.dir} already holds a sweep; continue it with --resume, or write this one elsewhere with --out DIR`);
    const saved = readSweepState(o.dir);
    const key = (s: SweepState): string => JSON.stringify([s.base, s.nproc, s.variants.map((v) => [v.id, v.sets])]);
    if (key(saved) !== key(fresh)) {
      const diff = fresh.variants.find((v, i) => JSON.stringify(v.sets) !== JSON.stringify(saved.variants[i]?.sets));
      throw new SweepStateError(
        `${o.dir} holds a sweep with other runs than this sweep file and --set give now` +
          (diff ? ` (variant '${diff.id}' differs)` : saved.nproc !== fresh.nproc ? ` (--nproc ${saved.nproc} then, ${fresh.nproc} now)` : '') +
          `; resume with the same file and flags, or start a new sweep with --out DIR`,
      );
    }
    return saved;
  }
  if (existsSync(o.dir) && readdirSync(o.dir).length > 0)
    throw new SweepStateError(`${o.dir} exists and is not a sweep directory; choose an empty or new directory with --out DIR`);
  return fresh;
}

/** Runs one attempt of a variant in a worker process; resolves once the process has exited. */
function attempt(o: RunSweepOptions, v: SweepVariant, state: SweepState, index: number): Promise<void> {
  const runDir = join(o.dir, v.runDir);
  mkdirSync(runDir, { recursive: true });
  const spec: WorkerSpec = { base: o.spec.base, sets: v.sets, runDir };
  const args = [WORKER, JSON.stringify(spec)];
  const [cmd, argv] = o.nproc > 1 ? ['mpirun', [...localMpirunArgs(o.nproc), process.execPath, ...args]] : [process.execPath, args];
  const log = join(runDir, WORKER_LOG);
  appendFileSync(log, `--- attempt ${v.attempts} at ${new Date().toISOString()}\n`);
  const save = (): void => writeSweepState(o.dir, state);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let base = 0;
    let lastError = '';
    let stderrTail = '';
    let ended = false;
    let pending = '';
    const onMessage = (m: WorkerMessage): void => {
      switch (m.t) {
        case 'start':
          // A resumed attempt adds to the training time its checkpoint stands for.
          base = m.step > 0 ? (v.elapsedAtCheckpoint?.step === m.step ? v.elapsedAtCheckpoint.seconds : 0) : 0;
          o.hooks?.onStart?.(v, index, state.variants.length, m.step, m.steps);
          break;
        case 'step':
          o.hooks?.onStep?.(v, m);
          break;
        case 'log':
          o.hooks?.onLog?.(v, m.line);
          break;
        case 'checkpoint':
          v.elapsedAtCheckpoint = { step: m.step, seconds: base + m.seconds };
          save();
          break;
        case 'end':
          ended = true;
          v.measured = { wallSeconds: base + m.seconds, peakRssBytes: m.peakRssBytes, enginePeakBytes: m.enginePeakBytes };
          break;
        case 'error':
          lastError = m.message;
          break;
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          onMessage(JSON.parse(line) as WorkerMessage);
        } catch {
          appendFileSync(log, line + '\n'); // not a message: keep it with the log
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      appendFileSync(log, chunk);
      stderrTail = (stderrTail + chunk).slice(-4000);
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (code === 0 && ended) {
        v.state = 'done';
        delete v.error;
        try {
          writeReport(runDir); // the run's own plots, drawn here where the chart library is loaded once
        } catch (e) {
          appendFileSync(log, `plots not drawn: ${(e as Error).message}\n`);
        }
      } else {
        v.state = 'failed';
        const lastLine = stderrTail.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? '';
        const how = signal ? `killed by ${signal}` : `exit code ${code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)}`;
        v.error = lastError || (lastLine ? `${lastLine} (${how})` : `the worker stopped (${how})`);
      }
      save();
      resolve();
    };
    child.on('error', (e) => {
      lastError = `cannot start the worker: ${e.message}`;
    });
    child.on('close', finish);
  });
}

/** Runs (or continues) the sweep; returns the final state. Failed variants do not stop it. */
export async function runSweep(o: RunSweepOptions): Promise<SweepState> {
  mkdirSync(o.dir, { recursive: true });
  const state = openState(o);
  writeSweepState(o.dir, state);
  for (let i = 0; i < state.variants.length; i++) {
    const v = state.variants[i]!;
    if (v.state === 'done') {
      o.hooks?.onSkip?.(v, i, state.variants.length);
      continue;
    }
    v.state = 'running';
    v.attempts += 1;
    writeSweepState(o.dir, state);
    await attempt(o, v, state, i);
    o.hooks?.onEnd?.(v);
  }
  return state;
}
