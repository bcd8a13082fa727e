/**
 * `lmforge train --nproc N`: re-executes the same command under `mpirun -np N` on this host (one rank per GPU on
 * a GPU host, or N CPU ranks sharing the cores). Multi-node runs use mpirun/srun directly (docs/distributed.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';

/** mpirun's flags for N local ranks. Ranks run OpenMP teams, so no core binding; root needs an explicit opt-in. */
export function localMpirunArgs(np: number, isRoot = typeof process.getuid === 'function' && process.getuid() === 0): string[] {
  const args = ['--oversubscribe', '--bind-to', 'none', '-np', String(np)];
  if (isRoot) args.unshift('--allow-run-as-root');
  return args;
}

/** argv without `--nproc N` / `--nproc=N`. */
export function withoutFlag(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) {
      i++;
      continue;
    }
    if (a.startsWith(`--${name}=`)) continue;
    out.push(a);
  }
  return out;
}

/** Runs `mpirun ... node <script> <args>` with inherited stdio; resolves to its exit code. */
export async function relaunchUnderMpirun(np: number, script: string, args: readonly string[]): Promise<number> {
  if (!(Number.isInteger(np) && np >= 1)) throw new Error(`--nproc must be a positive integer, got ${np}`);
  if (spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('--nproc needs mpirun, which was not found: install Open MPI (apt install openmpi-bin libopenmpi-dev) and rerun npm install');
  const child = spawn('mpirun', [...localMpirunArgs(np), process.execPath, script, ...args], { stdio: 'inherit' });
  // Ctrl-C reaches mpirun through the process group; it forwards the signal to the ranks.
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
  });
}
