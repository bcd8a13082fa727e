/**
 * Safe file writes: the one implementation every writer uses (safetensors, checkpoints, token shards, manifests,
 * metrics, plots, configs, tokenizer files).
 *
 *   - Bytes go to `<path>.tmp-<pid>`, are synced, and are renamed over the final name: a reader (or a resume
 *     after a kill) sees the old file or the whole new one, never a torn one.
 *   - Every byte is written: `fs.writeSync` may write fewer bytes than asked (a filling disk does that), so the
 *     write loops until all are down, or fails. A short write never passes as a complete one.
 *   - Errors name the file and the fix (ENOSPC, EDQUOT, EACCES, EPERM, EROFS), not just `write`.
 *   - A kill leaves at most a `.tmp-<pid>` entry; `removeStaleTemps` deletes those of dead processes when the
 *     next run starts. (The pid is checked on this host only: do not share one directory between hosts that
 *     write into it at the same time.)
 *
 * It sits below every other folder (data writes shards, io writes checkpoints) and imports nothing of lmforge.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A failed file operation; the message names the path and what to do, `code` keeps the errno name. */
export class FileError extends Error {
  override name = 'FileError';
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

/** The temporary name a write by this process uses; TMP_SUFFIX matches it and gives the pid back. */
export function tmpPath(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

export const TMP_SUFFIX = /\.tmp-(\d+)$/;

const ADVICE: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device; free some space or write to another disk',
  EDQUOT: 'disk quota exceeded; free some space or write to another disk',
  EACCES: 'permission denied; check the permissions of the directory or choose another path',
  EPERM: 'operation not permitted; check the permissions of the directory or choose another path',
  EROFS: 'the file system is read-only; choose a writable path',
  EISDIR: 'a directory is in the way',
  ENOTDIR: 'a file is in the way where a directory is needed',
};

/** Turns an fs error into one line that names `file`: `file: <what happened> while <action> (<CODE>)`. */
export function fileError(e: unknown, file: string, action: string): FileError {
  if (e instanceof FileError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const why = (code && ADVICE[code]) ?? (e instanceof Error ? e.message : String(e));
  return new FileError(`${file}: ${action} failed: ${why}${code ? ` (${code})` : ''}`, code);
}

/** fs.writeSync moves at most 2 GiB per call; stay well below. */
const IO_CHUNK = 1 << 30;

/**
 * Writes every byte of `data` to `fd`, at `position` (or the current offset when null), looping over short
 * writes. `file` is only for the error message.
 */
export function writeAll(fd: number, data: Uint8Array, file: string, position: number | null = null): void {
  let done = 0;
  while (done < data.length) {
    let n: number;
    try {
      n = fs.writeSync(fd, data, done, Math.min(IO_CHUNK, data.length - done), position === null ? null : position + done);
    } catch (e) {
      throw fileError(e, file, `writing ${data.length - done} of ${data.length} bytes`);
    }
    if (!(n > 0))
      throw new FileError(`${file}: writing made no progress after ${done} of ${data.length} bytes (is the disk full?)`, 'ENOSPC');
    done += n;
  }
}

/** Syncs a directory so a rename inside it is durable. Some file systems refuse fsync on directories; the rename is atomic anyway. */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // best effort
  }
}

/**
 * A file written under its temporary name and published by `commit()` (fsync, close, rename); `abort()` removes
 * it. Streaming writers (safetensors, token shards) use this; small files use writeFileAtomic.
 */
export class AtomicFile {
  readonly tmp: string;
  private fd: number | null;
  private offset = 0;

  constructor(readonly file: string) {
    this.tmp = tmpPath(file);
    try {
      this.fd = fs.openSync(this.tmp, 'w');
    } catch (e) {
      throw fileError(e, file, 'creating');
    }
  }

  private handle(): number {
    if (this.fd === null) throw new FileError(`${this.file}: write after commit or abort`, undefined);
    return this.fd;
  }

  /** Appends after the furthest byte written so far. */
  write(data: Uint8Array): void {
    this.writeAt(data, this.offset);
  }

  /** Writes at a byte position (a header rewritten at the end goes through here). */
  writeAt(data: Uint8Array, position: number): void {
    writeAll(this.handle(), data, this.file, position);
    this.offset = Math.max(this.offset, position + data.length);
  }

  /** Bytes up to the furthest write. */
  get size(): number {
    return this.offset;
  }

  commit(): void {
    const fd = this.handle();
    try {
      fs.fsyncSync(fd);
    } catch (e) {
      this.abort();
      throw fileError(e, this.file, 'syncing');
    }
    fs.closeSync(fd);
    this.fd = null;
    try {
      fs.renameSync(this.tmp, this.file);
    } catch (e) {
      fs.rmSync(this.tmp, { force: true });
      throw fileError(e, this.file, `renaming ${path.basename(this.tmp)} into place`);
    }
    fsyncDir(path.dirname(this.file));
  }

  /** Closes and removes the temporary file (safe to call after commit, or twice). */
  abort(): void {
    if (this.fd === null) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = null;
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Writes a whole file safely (temporary name, every byte, fsync, rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const out = new AtomicFile(file);
  try {
    out.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
}

/** Whether a process with this pid exists on this host (a pid we may not signal still exists). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `<name>.tmp-<pid>` entries (files or directories) in `dir` left by processes that no longer run;
 * `accept` narrows which names are considered. Returns the removed paths. A missing directory is not an error.
 */
export function removeStaleTemps(dir: string, accept: (name: string) => boolean = () => true): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TMP_SUFFIX.exec(n);
    if (!m || !accept(n)) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    fs.rmSync(path.join(dir, n), { recursive: true, force: true });
    removed.push(path.join(dir, n));
  }
  return removed;
}

export interface OutputDirRules {
  /** The verb, for the message. */
  verb: string;
  /** Replace the files the verb writes in a non-empty directory (others are kept). */
  force: boolean;
  /** The files the verb writes, for the message. */
  writes: string;
}

/**
 * Checks an output directory before a verb writes into it: a missing or empty directory is fine; a file is
 * never replaced; a non-empty directory needs `force`. A staging directory a killed write left beside it goes.
 */
export function checkOutputDir(dir: string, rules: OutputDirRules): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory())
    throw new FileError(`${rules.verb}: ${dir} exists and is not a directory; lmforge never replaces it: choose another output path`, 'ENOTDIR');
  // Only the staging directory a killed write of this output left beside it (DIR.tmp-<pid>); nothing inside DIR.
  removeStaleTemps(path.dirname(path.resolve(dir)), (n) => n.startsWith(`${path.basename(path.resolve(dir))}.tmp-`));
  const entries = fs.readdirSync(dir);
  if (entries.length === 0 || rules.force) return;
  const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, ... (${entries.length} entries)` : '');
  throw new FileError(
    `${rules.verb}: ${dir} is not empty (${shown}); choose a new or empty directory, or pass --force to replace only ` +
      `the files ${rules.verb} writes (${rules.writes}); nothing else in it is touched`,
    'ENOTEMPTY',
  );
}

/**
 * Publishes a directory written under a temporary name: when `dest` does not exist the whole directory is
 * renamed into place in one step; otherwise each file is renamed in (replacing a file of the same name), files
 * that `owned` claims but this write did not produce are removed (e.g. weight shards of an earlier export), and
 * everything else in `dest` is kept.
 */
export function publishDir(tmp: string, dest: string, owned: (name: string) => boolean): void {
  try {
    if (!fs.existsSync(dest)) {
      fs.renameSync(tmp, dest);
      fsyncDir(path.dirname(path.resolve(dest)));
      return;
    }
    if (!fs.statSync(dest).isDirectory()) throw new FileError(`${dest} exists and is not a directory`, 'ENOTDIR');
    const fresh = new Set(fs.readdirSync(tmp));
    for (const f of fresh) fs.renameSync(path.join(tmp, f), path.join(dest, f));
    for (const f of fs.readdirSync(dest)) {
      const p = path.join(dest, f);
      if (owned(f) && !fresh.has(f) && fs.statSync(p).isFile()) fs.rmSync(p);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    fsyncDir(dest);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw fileError(e, dest, 'publishing');
  }
}
