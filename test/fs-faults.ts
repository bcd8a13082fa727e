/**
 * File-system faults for tests, injected by replacing node:fs functions (and re-syncing the ES module bindings,
 * so `import * as fs` and `import fs` users both see the fault). Each installer returns its undo; `withFault`
 * undoes it whatever happens.
 *
 *   shortWrites()      every write moves at most half of what it was asked (at least one byte): a correct writer
 *                      loops; a writer that ignores the count leaves holes or torn lines.
 *   fullDisk(budget)   the disk has `budget` free bytes: a write that would grow a file past it moves only what
 *                      fits (a short write, as Linux does), the next one fails with ENOSPC; rewriting bytes a
 *                      file already has (a header at offset 0) still succeeds. This is how a full disk left a
 *                      truncated shard under its final name.
 *   deniedOpen(match)  opening a path for writing that `match` accepts fails with EACCES.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

type Undo = () => void;

function errnoError(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const text: Record<string, string> = { ENOSPC: 'no space left on device', EACCES: 'permission denied' };
  const e = new Error(`${code}: ${text[code] ?? code}, ${syscall}${path ? ` '${path}'` : ''}`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  if (path) e.path = path;
  return e;
}

type WriteSync = typeof fs.writeSync;

function patchWrite(replace: (orig: WriteSync) => WriteSync): Undo {
  const orig = fs.writeSync;
  fs.writeSync = replace(orig);
  syncBuiltinESMExports();
  return () => {
    fs.writeSync = orig;
    syncBuiltinESMExports();
  };
}

/** Normalises writeSync's overloads to (bytes, position) for buffer writes; string writes become bytes. */
function asBytes(args: unknown[]): { bytes: Uint8Array; position: number | null } {
  const [data, a, b, c] = args;
  if (typeof data === 'string') {
    const bytes = Buffer.from(data, (typeof b === 'string' ? b : 'utf8') as BufferEncoding);
    return { bytes, position: typeof a === 'number' ? a : null };
  }
  const view = data as ArrayBufferView;
  const all = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const offset = typeof a === 'number' ? a : 0;
  const length = typeof b === 'number' ? b : all.length - offset;
  return { bytes: all.subarray(offset, offset + length), position: typeof c === 'number' ? c : null };
}

export function shortWrites(): Undo {
  return patchWrite((orig) => ((fd: number, ...rest: unknown[]) => {
    const { bytes, position } = asBytes(rest);
    const n = Math.max(1, Math.floor(bytes.length / 2));
    return (orig as (...a: unknown[]) => number)(fd, bytes, 0, Math.min(n, bytes.length), position);
  }) as WriteSync);
}

export function fullDisk(budget: number): Undo {
  let free = budget;
  return patchWrite((orig) => ((fd: number, ...rest: unknown[]) => {
    const { bytes, position } = asBytes(rest);
    const size = fs.fstatSync(fd).size;
    const at = position ?? size; // append-mode and current-offset writes land at the end in these tests
    const grows = Math.max(0, at + bytes.length - size);
    let n = bytes.length;
    if (grows > free) {
      n = Math.max(0, size + free - at);
      if (n <= 0) throw errnoError('ENOSPC', 'write');
    }
    const written = (orig as (...a: unknown[]) => number)(fd, bytes, 0, n, position);
    free -= Math.max(0, at + written - size);
    return written;
  }) as WriteSync);
}

export function deniedOpen(match: (path: string) => boolean): Undo {
  const orig = fs.openSync;
  fs.openSync = ((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    const writing = flags !== undefined && flags !== 'r' && flags !== fs.constants.O_RDONLY;
    if (writing && match(String(p))) throw errnoError('EACCES', 'open', String(p));
    return orig(p, flags ?? "r", mode);
  }) as typeof fs.openSync;
  syncBuiltinESMExports();
  return () => {
    fs.openSync = orig;
    syncBuiltinESMExports();
  };
}

export function withFault<T>(install: () => Undo, body: () => T): T {
  const undo = install();
  try {
    return body();
  } finally {
    undo();
  }
}

/** Paths under `dir` (recursively) whose name marks an unfinished write. */
export function temporariesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (/\.tmp(-\d+)?$/.test(e.name)) out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** A pid that surely belongs to no running process: one that just exited. */
export function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}
