/**
 * What a run directory looks like on disk, in one place:
 *   train_config.json, model_config.json   the run's settings (a resume reads them back)
 *   metrics.jsonl                          one JSON record per line (train/metrics.ts)
 *   plots/                                 PNG plots (report/)
 *   checkpoints/step-NNNNNNNN/             complete checkpoints (train/checkpoint.ts writes them)
 *   checkpoints/latest                     the name of the newest complete one
 * A checkpoint is complete once its directory has its final name and holds state.json.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TMP_SUFFIX, writeFileAtomic } from './atomic.js';

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

/** Keeps the newest `keep` complete checkpoints and removes the leftovers of interrupted saves. */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const root = checkpointsRoot(runDir);
  const done = readdirSync(root).filter((d) => STEP_DIR.test(d)).sort();
  for (const d of done.slice(0, Math.max(0, done.length - keep))) rmSync(join(root, d), { recursive: true, force: true });
  for (const d of readdirSync(root)) if (TMP_SUFFIX.test(d)) rmSync(join(root, d), { recursive: true, force: true });
}
