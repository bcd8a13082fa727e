/**
 * CudaBackend: the `Backend` implemented by the CUDA engine's addons, both built from the same sources
 * (src/engine/cuda: kernels in *.cu, cuBLASLt GEMMs in gemm.cc, Node-API glue in the other *.cc):
 *   - `cuda`: build/Release/lmforge_cuda.node, built by scripts/build-cuda.mjs where a CUDA toolkit with cuBLAS
 *     exists; runs on the GPU.
 *   - `cuda-interpret`: build/Release/lmforge_cuda_interpret.node, built with g++ at every install (no toolkit):
 *     the same kernels and glue run on the CPU against a model of CUDA's semantics (thread blocks as fibers,
 *     barriers, warp shuffles, shared memory poisoned with NaN, streams that run when waited for, sticky errors)
 *     and a reference GEMM behind the cuBLASLt API. Slow; for tests and CI (src/engine/cuda/interpret).
 *
 * Every op is queued on one CUDA stream and returns at once; only `download`, `synchronize` and a `readLater`'s
 * wait block. Buffers are device memory with the interface's f32/f64/i32 semantics. Precision: in 'bf16' mode
 * (the default) the matrix products round their operands to bf16 and accumulate in fp32 (like autocast);
 * everything else, including stored activations, weights, gradients and optimizer state, stays fp32. 'fp32' mode
 * runs the GEMMs in true fp32 (no TF32) for parity checks. See docs/cuda.md.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeBackend, type NativeOps } from './native.js';

export type CudaPrecision = 'bf16' | 'fp32';
/** Which CUDA engine: the GPU, or the same kernels interpreted on the CPU. */
export type CudaEngineKind = 'cuda' | 'cuda-interpret';

export interface CudaMemoryStats {
  /** Bytes in live buffers, and the most ever live at once. */
  allocated: number;
  peakAllocated: number;
  /** Bytes in the engine's scratch areas (GEMM workspace, logits chunk, bf16 operand copies). */
  scratch: number;
  /** High-water mark of the stream-ordered memory pool (buffers + scratch), when known. */
  poolReservedPeak?: number;
  deviceFree?: number;
  deviceTotal?: number;
}

/** The interpreter's counters (cuda-interpret only). */
export interface InterpretStats {
  launches: number;
  blocks: number;
  fiberSwitches: number;
  /** Host calls that waited for queued work, and those after which nothing was left queued (the device idled). */
  hostWaits: number;
  drains: number;
  queuedOps: number;
  maxQueueDepth: number;
  /** Why the last kernel faulted ('' when none did). */
  fault: string;
}

/** The CUDA engine's functions beyond the shared ops (src/engine/cuda/addon.cc). */
interface NativeCuda extends NativeOps {
  probe(): string;
  setPrecision(p: CudaPrecision): void;
  precision(): CudaPrecision;
  memoryStats(): CudaMemoryStats;
  synchronize(): void;
  stream(): bigint;
  device(): number;
  interpretStats?(): InterpretStats;
  interpretOption?(name: string, value: string): void;
  interpretSelfTests?(): string[];
  interpretSelfTest?(name: string): string;
}

const ADDON_FILE: Record<CudaEngineKind, string> = {
  cuda: 'lmforge_cuda.node',
  'cuda-interpret': 'lmforge_cuda_interpret.node',
};

/** The addon's path: the package root is three levels above dist/src/engine/cuda.js. */
export function cudaAddonPath(kind: CudaEngineKind = 'cuda'): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(root, 'build', 'Release', ADDON_FILE[kind]);
}

/** Reads LMFORGE_CUDA_PRECISION; unset means bf16. */
export function precisionFromEnv(env: NodeJS.ProcessEnv = process.env): CudaPrecision {
  const v = (env.LMFORGE_CUDA_PRECISION ?? '').trim().toLowerCase();
  if (v === '' || v === 'bf16' || v === 'bfloat16') return 'bf16';
  if (v === 'fp32' || v === 'f32' || v === 'float32') return 'fp32';
  throw new Error(`LMFORGE_CUDA_PRECISION='${v}' is not a precision: use bf16 (default) or fp32`);
}

const loaded: Record<CudaEngineKind, { native: NativeCuda | null; error: string | null }> = {
  cuda: { native: null, error: null },
  'cuda-interpret': { native: null, error: null },
};

function tryLoad(kind: CudaEngineKind): NativeCuda | null {
  const slot = loaded[kind];
  if (slot.native || slot.error) return slot.native;
  const path = cudaAddonPath(kind);
  if (!existsSync(path)) {
    slot.error = kind === 'cuda'
      ? `the CUDA engine is not built (${path} is missing): install on a machine with the CUDA toolkit and cuBLAS ` +
        '(nvcc, cublasLt.h), or run `node scripts/build-cuda.mjs`; use --device cpu meanwhile (or --device ' +
        'cuda-interpret to run the CUDA kernels on the CPU)'
      : `the interpreted CUDA engine is not built (${path} is missing): run \`npm install\` (it builds with g++ ` +
        'beside the CPU engine, no CUDA toolkit needed)';
    return null;
  }
  try {
    slot.native = createRequire(import.meta.url)(path) as NativeCuda;
  } catch (e) {
    slot.error = `the ${kind} engine at ${path} could not be loaded (${e instanceof Error ? e.message : String(e)})` +
      (kind === 'cuda' ? ': check that the CUDA driver and the cuBLAS libraries it was built against are installed' : '');
  }
  return slot.native;
}

/** Whether a CUDA backend of this kind can be created here, and if not, why (no build, no driver, no device). */
export function cudaAvailability(kind: CudaEngineKind = 'cuda'): { ok: true } | { ok: false; reason: string } {
  const n = tryLoad(kind);
  if (!n) return { ok: false, reason: loaded[kind].error ?? 'unknown' };
  const why = n.probe();
  return why ? { ok: false, reason: why } : { ok: true };
}

export interface CudaBackendOptions {
  /** Overrides LMFORGE_CUDA_PRECISION. */
  precision?: CudaPrecision;
  /** Run the kernels in the CPU model of CUDA (cuda-interpret) instead of on a GPU. */
  interpret?: boolean;
}

export class CudaBackend extends NativeBackend {
  readonly name = 'cuda' as const;
  /** 'cuda-interpret' when the kernels run on the CPU model of CUDA. */
  readonly kind: CudaEngineKind;
  private readonly cuda: NativeCuda;

  constructor(opts: CudaBackendOptions = {}) {
    const kind: CudaEngineKind = opts.interpret ? 'cuda-interpret' : 'cuda';
    const avail = cudaAvailability(kind);
    if (!avail.ok) throw new Error(`${kind === 'cuda' ? 'CUDA' : 'interpreted CUDA'} backend unavailable: ${avail.reason}`);
    const n = loaded[kind].native as NativeCuda;
    super(n, 'CUDA');
    this.kind = kind;
    this.cuda = n;
    this.cuda.setPrecision(opts.precision ?? precisionFromEnv());
  }

  /** Host threads do not apply: the GPU runs every op. Accepted for interface compatibility. */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: the thread count must be an integer >= 1, got ${n}`);
  }
  threads(): number {
    return 1;
  }
  /** bf16 in bf16 precision, f32 in fp32 precision (read when a model allocates its arena and weight copy). */
  get activationDType(): 'f32' | 'bf16' {
    return this.precision() === 'bf16' ? 'bf16' : 'f32';
  }
  precision(): CudaPrecision {
    return this.cuda.precision();
  }
  setPrecision(p: CudaPrecision): void {
    this.cuda.setPrecision(p);
  }
  memoryStats(): CudaMemoryStats {
    return this.cuda.memoryStats();
  }
  /** The engine's CUDA stream (cudaStream_t), for NCCL: collectives are queued on it, after the kernels. */
  rawStream(): bigint {
    return this.cuda.stream();
  }
  /** The CUDA device index the engine runs on (LMFORGE_CUDA_DEVICE, else the launcher's local rank, else 0). */
  deviceIndex(): number {
    return this.cuda.device();
  }
  /** The interpreter's counters; null on a GPU. */
  interpretStats(): InterpretStats | null {
    return this.cuda.interpretStats?.() ?? null;
  }
  /** The names of the interpreter's self-checks of its CUDA model ([] on a GPU). */
  interpretSelfTests(): string[] {
    return this.cuda.interpretSelfTests?.() ?? [];
  }
  /** Runs one self-check: '' when the model behaved as CUDA specifies, else what went wrong. */
  interpretSelfTest(name: string): string {
    if (!this.cuda.interpretSelfTest) throw new Error('interpretSelfTest: only the cuda-interpret engine has self-checks');
    return this.cuda.interpretSelfTest(name);
  }
  /** Sets an interpreter option (tests: 'skip-sync' = 'file.cu:line' removes that __syncthreads). */
  interpretOption(name: string, value: string): void {
    if (!this.cuda.interpretOption) throw new Error('interpretOption: only the cuda-interpret engine has options');
    this.cuda.interpretOption(name, value);
  }
}
