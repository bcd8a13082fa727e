/**
 * Process groups: the collectives data-parallel training needs, over whole backend buffers.
 *
 * Three implementations share this interface: `SingleProcessGroup` (world size 1, no MPI loaded at all),
 * `MpiProcessGroup` (Open MPI through build/Release/lmforge_mpi.node, for CPU buffers and for bootstrap) and
 * `NcclProcessGroup` (CUDA buffers; its communicator comes from a unique id broadcast over MPI).
 * All collectives are blocking from the caller's point of view on the CPU; on CUDA they are enqueued on the
 * engine's stream and ordered with its kernels.
 */
import type { Backend, Ptr } from '../engine/backend.js';

export type ReduceOp = 'sum' | 'avg';
export type HostReduceOp = 'sum' | 'max' | 'min';

/** A per-rank element count: one number for equal parts, or one count per rank (uneven last shard). */
export type RankCounts = number | readonly number[];

export interface ProcessGroup {
  readonly kind: 'single' | 'mpi' | 'nccl';
  readonly rank: number;
  readonly size: number;
  /** Rank among the processes on this host (picks the GPU; divides the CPU cores). */
  readonly localRank: number;
  readonly localSize: number;
  /** One line for logs: library, world size, host. */
  describe(): string;
  barrier(): void;
  /** Copies root's n elements at buf to every rank. */
  broadcast(buf: Ptr, n: number, root: number): void;
  /** In place: buf = sum (or mean) over ranks, element by element. */
  allReduce(buf: Ptr, n: number, op: ReduceOp): void;
  /**
   * Sums `input` (sum of counts elements, rank r's slice at displacement sum(counts[0..r))) over ranks;
   * rank r receives its slice's sum in `output` (counts[r] elements). input and output must not overlap.
   */
  reduceScatter(input: Ptr, output: Ptr, counts: RankCounts): void;
  /**
   * Rank r's counts[r] elements at `input` land at output + displacement(r) on every rank. Passing
   * input = output shifted by this rank's displacement gathers in place.
   */
  allGather(input: Ptr, output: Ptr, counts: RankCounts): void;
  /** Like allGather, but only `root` receives (output may be null elsewhere). */
  gather(input: Ptr, output: Ptr | null, counts: RankCounts, root: number): void;
  /** Small host-side reductions (loss sums, norms), in place. */
  allReduceHost(values: Float64Array, op: HostReduceOp): void;
  /** Prints the message and stops every rank of the job (never returns). */
  abort(message: string, code?: number): never;
  /** Clean shutdown after the last collective (called at normal exit). */
  finalize(): void;
}

/** counts as an explicit per-rank list. */
export function countsList(counts: RankCounts, size: number): number[] {
  if (typeof counts === 'number') return new Array<number>(size).fill(counts);
  if (counts.length !== size) throw new Error(`expected ${size} per-rank counts (one per rank), got ${counts.length}`);
  return [...counts];
}

/** World size 1: every collective is the identity (or a copy between distinct buffers). No MPI is loaded. */
export class SingleProcessGroup implements ProcessGroup {
  readonly kind = 'single' as const;
  readonly rank = 0;
  readonly size = 1;
  readonly localRank = 0;
  readonly localSize = 1;

  constructor(private readonly be: Backend) {}

  describe(): string {
    return 'single process (world size 1)';
  }
  barrier(): void {}
  broadcast(_buf: Ptr, _n: number, root: number): void {
    if (root !== 0) throw new Error(`broadcast: root ${root} is not a rank (world size 1)`);
  }
  allReduce(): void {}
  reduceScatter(input: Ptr, output: Ptr, counts: RankCounts): void {
    const [n] = countsList(counts, 1);
    if (!samePlace(input, output)) this.be.copy(output, input, n!);
  }
  allGather(input: Ptr, output: Ptr, counts: RankCounts): void {
    const [n] = countsList(counts, 1);
    if (!samePlace(input, output)) this.be.copy(output, input, n!);
  }
  gather(input: Ptr, output: Ptr | null, counts: RankCounts, root: number): void {
    if (root !== 0) throw new Error(`gather: root ${root} is not a rank (world size 1)`);
    if (!output) throw new Error('gather: the root needs an output buffer');
    this.allGather(input, output, counts);
  }
  allReduceHost(): void {}
  abort(message: string, code = 1): never {
    process.stderr.write(message + '\n');
    process.exit(code === 0 ? 1 : code);
  }
  finalize(): void {}
}

function samePlace(a: Ptr, b: Ptr): boolean {
  return a.buf.handle === b.buf.handle && a.offset === b.offset;
}

/**
 * The world size a launcher announced in the environment, or null when no launcher started this process.
 * Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH/Hydra and Slurm's PMI2 set PMI_SIZE; Slurm's srun
 * with --mpi=pmix sets PMIX_RANK and SLURM_STEP_NUM_TASKS.
 */
export function launcherWorldSize(env: NodeJS.ProcessEnv = process.env): number | null {
  const pick = (v: string | undefined): number | null => {
    if (v === undefined || v === '') return null;
    const n = Number(v);
    return Number.isInteger(n) && n >= 1 ? n : null;
  };
  return (
    pick(env.OMPI_COMM_WORLD_SIZE) ??
    pick(env.PMI_SIZE) ??
    (env.PMIX_RANK !== undefined ? pick(env.SLURM_STEP_NUM_TASKS) ?? pick(env.SLURM_NTASKS) : null)
  );
}

/** Rank 0's string on every rank (run directories, which embed rank 0's clock), through host reductions only. */
export function agreeOnString(group: ProcessGroup, s: string): string {
  if (group.size === 1) return s;
  const len = Float64Array.of(group.rank === 0 ? s.length : 0);
  group.allReduceHost(len, 'sum');
  const codes = new Float64Array(len[0]!);
  if (group.rank === 0) for (let i = 0; i < s.length; i++) codes[i] = s.charCodeAt(i);
  group.allReduceHost(codes, 'sum');
  return String.fromCharCode(...codes);
}
