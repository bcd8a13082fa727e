/**
 * NcclProcessGroup: collectives over CUDA engine buffers with NCCL, bootstrapped over MPI (rank 0's
 * ncclUniqueId is broadcast with MPI_Bcast). Collectives are enqueued on the engine's stream
 * (`rawStream()`), so they run after the backward kernels without a host synchronisation; host-side
 * reductions, barriers and abort go through MPI.
 *
 * The CUDA engine (CudaBackend) provides the buffer addresses (`rawAddress`), its stream (`rawStream`) and its
 * device index, which NCCL is initialised on; createProcessGroup (index.ts) picks this group for it under a
 * launcher. Not yet compiled or run: the native part (src/parallel/native/nccl.cc) compiles only where nccl.h is
 * installed (scripts/device-test.sh builds it on the GPU host), and no GPU has run it (docs/distributed.md).
 */
import type { Ptr } from '../engine/backend.js';
import { countsList, type HostReduceOp, type ProcessGroup, type RankCounts, type ReduceOp } from './group.js';
import { DTYPE_CODE, MpiProcessGroup, type AddressableBackend, type NativeMpi, loadNativeMpi } from './mpi.js';

type NcclOps = Required<Pick<NativeMpi, 'ncclInit' | 'ncclAllReduce' | 'ncclBroadcast' | 'ncclReduceScatter' | 'ncclAllGather' | 'ncclGather'>>;

function ncclOps(n: NativeMpi): NcclOps {
  if (!n.ncclInit || !n.ncclAllReduce || !n.ncclBroadcast || !n.ncclReduceScatter || !n.ncclAllGather || !n.ncclGather)
    throw new Error(
      'the MPI addon was built without NCCL (nccl.h was not found at install time): install NCCL ' +
        '(e.g. apt install libnccl-dev, or set NCCL_HOME / CUDA_HOME) and rerun `npm install`',
    );
  return n as NativeMpi & NcclOps;
}

export class NcclProcessGroup implements ProcessGroup {
  readonly kind = 'nccl' as const;
  readonly rank: number;
  readonly size: number;
  readonly localRank: number;
  readonly localSize: number;
  private readonly ops: NcclOps;

  /** `device` must be the CUDA device index the engine uses (CudaBackend.deviceIndex()). */
  constructor(private readonly be: AddressableBackend, private readonly mpi: MpiProcessGroup, device: number, n: NativeMpi = loadNativeMpi()) {
    if (!be.rawStream) throw new Error('NCCL needs a CUDA engine that exposes its stream (rawStream); this backend has none');
    this.ops = ncclOps(n);
    this.rank = mpi.rank;
    this.size = mpi.size;
    this.localRank = mpi.localRank;
    this.localSize = mpi.localSize;
    this.ops.ncclInit(device);
  }

  describe(): string {
    return `NCCL over ${this.mpi.describe()}`;
  }
  private addr(p: Ptr, n: number): bigint {
    return this.be.rawAddress(p, n);
  }
  private stream(): bigint {
    return this.be.rawStream!();
  }

  barrier(): void {
    this.be.synchronize();
    this.mpi.barrier();
  }
  broadcast(buf: Ptr, n: number, root: number): void {
    this.ops.ncclBroadcast(this.addr(buf, n), n, DTYPE_CODE[buf.buf.dtype], root, this.stream());
  }
  allReduce(buf: Ptr, n: number, op: ReduceOp): void {
    this.ops.ncclAllReduce(this.addr(buf, n), n, DTYPE_CODE[buf.buf.dtype], op === 'avg' ? 3 : 0, this.stream());
  }
  reduceScatter(input: Ptr, output: Ptr, counts: RankCounts): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    this.ops.ncclReduceScatter(this.addr(input, total), this.addr(output, c[this.rank]!), c, DTYPE_CODE[input.buf.dtype], this.stream());
  }
  allGather(input: Ptr, output: Ptr, counts: RankCounts): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    this.ops.ncclAllGather(this.addr(input, c[this.rank]!), this.addr(output, total), c, DTYPE_CODE[input.buf.dtype], this.stream());
  }
  gather(input: Ptr, output: Ptr | null, counts: RankCounts, root: number): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    const out = this.rank === root && output ? this.addr(output, total) : 0n;
    this.ops.ncclGather(this.addr(input, c[this.rank]!), out, c, DTYPE_CODE[input.buf.dtype], root, this.stream());
  }
  allReduceHost(values: Float64Array, op: HostReduceOp): void {
    this.mpi.allReduceHost(values, op);
  }
  abort(message: string, code = 1): never {
    return this.mpi.abort(message, code);
  }
  finalize(): void {
    this.be.synchronize();
    this.mpi.finalize();
  }
}
