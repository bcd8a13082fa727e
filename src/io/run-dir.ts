/**
 * What a run directory looks like on disk, in one place:
 *   train_config.json, model_config.json   the run's settings (a resume reads them back)
 *   metrics.jsonl                          one JSON record per line (train/metrics.ts)
 *   plots/                                 PNG plots (report/)
 *   checkpoints/step-NNNNNNNN/             complete checkpoints (train/checkpoint.ts writes them)
 *   checkpoints/latest                     the name of the newest complete one (or the one a resume chose)
 *   checkpoints/abandoned/                 checkpoints after the step a `--resume --from-step` went back to
 * A checkpoint is complete once its directory has its final name and holds state.json.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FileError, removeStaleTemps, writeFileAtomic } from '../files/atomic.js';

export const RUN_FILES = {
  trainConfig: 'train_config.json',
  modelConfig: 'model_config.json',
  metrics: 'metrics.jsonl',
  plots: 'plots',
  checkpoints: 'checkpoints',
} as const;

/** The file whose presence makes a checkpoint directory complete (written last, before the rename). */
export const CHECKPOINT_STATE = 'state.json';
const STEP_DIR = /^step-\d{8}$/;

export function checkpointsRoot(runDir: string): string {
  return join(runDir, RUN_FILES.checkpoints);
}

export function checkpointDir(runDir: string, step: number): string {
  return join(checkpointsRoot(runDir), `step-${String(step).padStart(8, '0')}`);
}

/** Complete checkpoints of a run, oldest first (directory names sort by step). */
export function completedCheckpoints(runDir: string): string[] {
  const root = checkpointsRoot(runDir);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => STEP_DIR.test(d) && existsSync(join(root, d, CHECKPOINT_STATE)))
    .sort()
    .map((d) => join(root, d));
}

/** The newest complete checkpoint of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const root = checkpointsRoot(runDir);
  if (!existsSync(root)) return null;
  const pointer = join(root, 'latest');
  if (existsSync(pointer)) {
    const dir = join(root, readFileSync(pointer, 'utf8').trim());
    if (existsSync(join(dir, CHECKPOINT_STATE))) return dir;
  }
  const done = completedCheckpoints(runDir);
  return done.length ? done[done.length - 1]! : null;
}

/** Points `checkpoints/latest` at a complete checkpoint directory (atomically). */
export function markLatest(runDir: string, checkpoint: string): void {
  writeFileAtomic(join(checkpointsRoot(runDir), 'latest'), `${checkpoint.split('/').pop()}\n`);
}

/**
 * Keeps the newest `keep` complete checkpoints, plus `protect` when given (the last one saved before the loss
 * began to diverge, see train/health.ts), and removes the leftovers of interrupted saves by dead processes.
 */
export function pruneCheckpoints(runDir: string, keep: number, protect: string | null = null): void {
  const root = checkpointsRoot(runDir);
  const done = readdirSync(root).filter((d) => STEP_DIR.test(d)).sort();
  const keepName = protect ? basename(protect) : null;
  for (const d of done.slice(0, Math.max(0, done.length - keep)))
    if (d !== keepName) rmSync(join(root, d), { recursive: true, force: true });
  removeStaleTemps(root, isCheckpointTemp);
}

/** Temporaries lmforge writes in a run directory, its checkpoints and plots (nothing else there is touched). */
const isRunTemp = (n: string): boolean => /^(train_config\.json|model_config\.json|metrics\.jsonl)\.tmp-\d+$/.test(n);
const isCheckpointTemp = (n: string): boolean => /^(step-\d{8}|latest)\.tmp-\d+$/.test(n);
const isPlotTemp = (n: string): boolean => /\.png\.tmp-\d+$/.test(n);

/** The step a checkpoint directory was saved at (from its name). */
export function checkpointStep(dir: string): number {
  const m = /step-(\d{8})$/.exec(dir);
  if (!m) throw new Error(`internal: ${dir} is not a checkpoint directory`);
  return Number(m[1]);
}

/** Removes leftovers of a killed run (temporaries of dead processes) from the run directory and its checkpoints. */
export function cleanRunDir(runDir: string): string[] {
  return [
    ...removeStaleTemps(runDir, isRunTemp),
    ...removeStaleTemps(checkpointsRoot(runDir), isCheckpointTemp),
    ...removeStaleTemps(join(runDir, RUN_FILES.plots), isPlotTemp),
  ];
}

/**
 * Checks a run directory before a new run (not a resume) writes into it: it may be missing or empty (once the
 * temporaries of a killed start are gone); a directory holding a run or anything else is refused, because the
 * new run would mix its metrics with the old ones and prune the old checkpoints.
 */
export function checkNewRunDir(runDir: string): void {
  if (!existsSync(runDir)) return;
  if (!statSync(runDir).isDirectory()) throw new FileError(`${runDir} exists and is not a directory; choose another --run-dir`, 'ENOTDIR');
  cleanRunDir(runDir);
  const entries = readdirSync(runDir);
  if (entries.length === 0) return;
  if (entries.includes(RUN_FILES.trainConfig))
    throw new FileError(`${runDir} already holds a run; continue it with 'lmforge train --resume ${runDir}', or choose another --run-dir`, 'EEXIST');
  throw new FileError(`${runDir} is not empty (${entries.slice(0, 5).join(', ')}) and is not an lmforge run; choose another --run-dir`, 'ENOTEMPTY');
}

/**
 * Resuming from an earlier checkpoint than the newest: the later ones belong to the abandoned continuation.
 * They are moved to `checkpoints/abandoned/` (not deleted: they may be wanted for a post-mortem) and `latest`
 * points at the chosen one. Returns the new homes of the moved directories.
 */
export function setAsideLaterCheckpoints(runDir: string, step: number): string[] {
  const root = checkpointsRoot(runDir);
  const later = completedCheckpoints(runDir).filter((d) => checkpointStep(d) > step);
  const moved: string[] = [];
  if (later.length) {
    const aside = join(root, 'abandoned');
    mkdirSync(aside, { recursive: true });
    for (const d of later) {
      let dest = join(aside, basename(d));
      for (let i = 2; existsSync(dest); i++) dest = join(aside, `${basename(d)}-${i}`);
      renameSync(d, dest);
      moved.push(dest);
    }
  }
  markLatest(runDir, checkpointDir(runDir, step));
  return moved;
}
