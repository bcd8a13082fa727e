/** How the dist tests launch ranks: mpirun with the flags CI needs (root containers, more ranks than cores). */
import { spawnSync } from 'node:child_process';

export const HAVE_MPIRUN = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
export const SKIP_MPI = HAVE_MPIRUN ? false : 'mpirun not found: install openmpi-bin to run the multi-process tests';

/** mpirun flags: oversubscribe (CI has 2 cores), no core binding (ranks run OpenMP threads), root allowed. */
export function mpirunArgs(np: number): string[] {
  const args = ['--oversubscribe', '--bind-to', 'none', '-np', String(np)];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.unshift('--allow-run-as-root');
  return args;
}
