/**
 * Writes that a kill cannot leave half-done: the bytes go to `<path>.tmp-<pid>`, are synced, and are renamed over
 * the final name. Readers see the old file or the new one, never a torn one.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';

/** The temporary name a write by this process uses; leftovers of dead processes match TMP_SUFFIX. */
export function tmpPath(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

export const TMP_SUFFIX = /\.tmp-\d+$/;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tmpPath(path);
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

/** Makes a rename inside `dir` durable. Some filesystems refuse fsync on directories; the rename is still atomic. */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // best effort
  }
}
