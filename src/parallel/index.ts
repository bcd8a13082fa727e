/**
 * Picks the process group for this process: world size 1 (no launcher in the environment) needs no MPI at all;
 * under mpirun/srun, CPU engines use MPI and CUDA engines NCCL (bootstrapped over MPI) on the device the engine
 * picked (the launcher's local rank unless LMFORGE_CUDA_DEVICE says otherwise).
 */
import type { Backend } from '../engine/backend.js';
import { CudaBackend } from '../engine/cuda.js';
import { launcherWorldSize, SingleProcessGroup, type ProcessGroup } from './group.js';
import { isAddressable, MpiProcessGroup } from './mpi.js';
import { NcclProcessGroup } from './nccl.js';

export type { ProcessGroup } from './group.js';

export function createProcessGroup(be: Backend, env: NodeJS.ProcessEnv = process.env): ProcessGroup {
  const world = launcherWorldSize(env);
  if (world === null || (world === 1 && env.LMFORGE_DIST !== 'mpi')) return new SingleProcessGroup(be);
  if (!isAddressable(be))
    throw new Error(`the ${be.name} engine does not expose buffer addresses, so it cannot run collectives; run one process (without mpirun)`);
  if (be instanceof CudaBackend && be.kind === 'cuda-interpret')
    throw new Error('the interpreted CUDA engine (--device cuda-interpret) runs in one process: run without mpirun/--nproc, or use --device cpu or cuda');
  const mpi = new MpiProcessGroup(be);
  if (mpi.size !== world)
    process.stderr.write(`lmforge: warning: the launcher announced ${world} processes but MPI reports ${mpi.size}\n`);
  return be instanceof CudaBackend ? new NcclProcessGroup(be, mpi, be.deviceIndex()) : mpi;
}
