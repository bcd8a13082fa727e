/**
 * MpiProcessGroup: collectives over CPU engine buffers through Open MPI (native addon lmforge_mpi, sources in
 * src/parallel/native/mpi.cc). Buffers reach MPI as raw addresses the engine hands out after its own bounds
 * check (CpuBackend.rawAddress), so no data is copied through JavaScript.
 *
 * Failure handling: every MPI call returns errors as JavaScript Errors. An exception that escapes on one rank
 * must not leave the others blocked in a collective forever, so a failing rank calls MPI_Abort (abort()),
 * which makes the launcher take the whole job down; uncaught exceptions and non-zero exits are routed there too.
 * When a rank dies outright (killed, out of memory), mpirun notices and terminates the others itself.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, DType, Ptr } from '../engine/backend.js';
import { countsList, type HostReduceOp, type ProcessGroup, type RankCounts, type ReduceOp } from './group.js';

/** The addon's exports; buffers are (address, count, dtype code) triples. */
export interface NativeMpi {
  init(): { rank: number; size: number; localRank: number; localSize: number; host: string; library: string; nccl: boolean };
  allReduce(addr: bigint, n: number, dtype: number, op: number): void;
  broadcast(addr: bigint, n: number, dtype: number, root: number): void;
  reduceScatter(input: bigint, output: bigint, counts: number[], dtype: number): void;
  allGather(input: bigint, output: bigint, counts: number[], dtype: number): void;
  gather(input: bigint, output: bigint, counts: number[], dtype: number, root: number): void;
  barrier(): void;
  allReduceHost(values: Float64Array, op: number): void;
  abort(code: number, message: string): never;
  finalize(): void;
  // Present only in builds with NCCL (src/parallel/native/nccl.cc).
  ncclInit?(device: number): void;
  ncclAllReduce?(addr: bigint, n: number, dtype: number, op: number, stream: bigint): void;
  ncclBroadcast?(addr: bigint, n: number, dtype: number, root: number, stream: bigint): void;
  ncclReduceScatter?(input: bigint, output: bigint, counts: number[], dtype: number, stream: bigint): void;
  ncclAllGather?(input: bigint, output: bigint, counts: number[], dtype: number, stream: bigint): void;
  ncclGather?(input: bigint, output: bigint, counts: number[], dtype: number, root: number, stream: bigint): void;
}

/** A backend whose buffers have addresses a collective library can use (host memory on CPU, device on CUDA). */
export interface AddressableBackend extends Backend {
  rawAddress(p: Ptr, n: number): bigint;
  /** CUDA only: the engine's stream, so collectives order with its kernels. */
  rawStream?(): bigint;
}

export function isAddressable(be: Backend): be is AddressableBackend {
  return typeof (be as Partial<AddressableBackend>).rawAddress === 'function';
}

// bf16 buffers (activations, weight copies) are never reduced: the native side names code 3 as unsupported.
export const DTYPE_CODE: Record<DType, number> = { f32: 0, f64: 1, i32: 2, bf16: 3 };
const HOST_OP: Record<HostReduceOp, number> = { sum: 0, max: 1, min: 2 };

let native: NativeMpi | null = null;

/** Loads build/Release/lmforge_mpi.node once (only when a launcher started this process). */
export function loadNativeMpi(): NativeMpi {
  if (native) return native;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const path = join(root, 'build', 'Release', 'lmforge_mpi.node');
  try {
    native = createRequire(import.meta.url)(path) as NativeMpi;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(
      `this process was started by an MPI launcher, but the MPI addon could not be loaded from ${path} (${why}). ` +
        'lmforge builds it when `mpicc --showme` works at install time: install Open MPI ' +
        '(apt install openmpi-bin libopenmpi-dev) and rerun `npm install`, or run without mpirun/--nproc for one process',
    );
  }
  return native;
}

export class MpiProcessGroup implements ProcessGroup {
  readonly kind = 'mpi' as const;
  readonly rank: number;
  readonly size: number;
  readonly localRank: number;
  readonly localSize: number;
  readonly host: string;
  readonly library: string;
  private finalized = false;

  constructor(private readonly be: AddressableBackend, private readonly n: NativeMpi = loadNativeMpi()) {
    const info = n.init();
    this.rank = info.rank;
    this.size = info.size;
    this.localRank = info.localRank;
    this.localSize = info.localSize;
    this.host = info.host;
    this.library = info.library;
    installFailureHandlers(this);
  }

  describe(): string {
    return `MPI (${this.library}), rank ${this.rank} of ${this.size}, local rank ${this.localRank} of ${this.localSize} on ${this.host}`;
  }

  private addr(p: Ptr, n: number): bigint {
    return this.be.rawAddress(p, n);
  }
  private code(p: Ptr): number {
    return DTYPE_CODE[p.buf.dtype];
  }

  barrier(): void {
    this.n.barrier();
  }
  broadcast(buf: Ptr, n: number, root: number): void {
    this.n.broadcast(this.addr(buf, n), n, this.code(buf), root);
  }
  allReduce(buf: Ptr, n: number, op: ReduceOp): void {
    this.n.allReduce(this.addr(buf, n), n, this.code(buf), 0);
    if (op === 'avg') {
      if (buf.buf.dtype !== 'f32') throw new Error(`allReduce avg needs an f32 buffer, got ${buf.buf.dtype}`);
      this.be.scale(buf, n, 1 / this.size);
    }
  }
  reduceScatter(input: Ptr, output: Ptr, counts: RankCounts): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    sameDtype('reduceScatter', input, output);
    this.n.reduceScatter(this.addr(input, total), this.addr(output, c[this.rank]!), c, this.code(input));
  }
  allGather(input: Ptr, output: Ptr, counts: RankCounts): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    sameDtype('allGather', input, output);
    this.n.allGather(this.addr(input, c[this.rank]!), this.addr(output, total), c, this.code(input));
  }
  gather(input: Ptr, output: Ptr | null, counts: RankCounts, root: number): void {
    const c = countsList(counts, this.size);
    const total = c.reduce((a, b) => a + b, 0);
    if (this.rank === root && !output) throw new Error('gather: the root needs an output buffer');
    if (output) sameDtype('gather', input, output);
    const out = this.rank === root && output ? this.addr(output, total) : 0n;
    this.n.gather(this.addr(input, c[this.rank]!), out, c, this.code(input), root);
  }
  allReduceHost(values: Float64Array, op: HostReduceOp): void {
    this.n.allReduceHost(values, HOST_OP[op]);
  }
  abort(message: string, code = 1): never {
    return this.n.abort(code, message);
  }
  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    this.n.finalize();
  }
}

function sameDtype(op: string, a: Ptr, b: Ptr): void {
  if (a.buf.dtype !== b.buf.dtype) throw new Error(`${op}: input is ${a.buf.dtype} but output is ${b.buf.dtype}`);
}

/**
 * A rank that fails must take the job down (MPI_Abort) rather than exit on its own: the other ranks would wait
 * in their next collective forever. A clean exit (code 0) finalises MPI instead.
 */
function installFailureHandlers(g: MpiProcessGroup): void {
  const fail = (what: string, e: unknown): never => {
    const msg = e instanceof Error ? e.message : String(e);
    return g.abort(`lmforge: rank ${g.rank} of ${g.size} failed (${what}): ${msg}\nlmforge: stopping all ${g.size} ranks`);
  };
  process.on('uncaughtException', (e) => fail('uncaught exception', e));
  process.on('unhandledRejection', (e) => fail('unhandled rejection', e));
  process.on('exit', (code) => {
    if (code === 0) g.finalize();
    else g.abort(`lmforge: rank ${g.rank} of ${g.size} is exiting with code ${code}; stopping all ${g.size} ranks`, code);
  });
}
