/**
 * CudaBackend: the `Backend` implemented by the native addon `build/Release/lmforge_cuda.node` (CUDA kernels in
 * src/engine/cuda/*.cu, cuBLASLt GEMMs, Node-API glue in *.cc), built by scripts/build-cuda.mjs at install
 * where a CUDA toolkit with cuBLAS exists.
 *
 * Every op is queued on one CUDA stream and returns at once; only `download` and `synchronize` wait. Buffers
 * are device memory with the interface's f32/f64/i32 semantics. Precision: in 'bf16' mode (the default) the
 * matrix products round their operands to bf16 and accumulate in fp32 (like autocast); everything else,
 * including stored activations, weights, gradients and optimizer state, stays fp32. 'fp32' mode runs the
 * GEMMs in true fp32 (no TF32) for parity checks. See docs/cuda.md.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeBackend, type NativeOps } from './native.js';

export type CudaPrecision = 'bf16' | 'fp32';

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

/** The CUDA engine's functions beyond the shared ops (src/engine/cuda/addon.cc). */
interface NativeCuda extends NativeOps {
  probe(): string;
  setPrecision(p: CudaPrecision): void;
  precision(): CudaPrecision;
  memoryStats(): CudaMemoryStats;
  synchronize(): void;
}


/** The addon's path: the package root is three levels above dist/src/engine/cuda.js. */
export function cudaAddonPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(root, 'build', 'Release', 'lmforge_cuda.node');
}

/** Reads LMFORGE_CUDA_PRECISION; unset means bf16. */
export function precisionFromEnv(env: NodeJS.ProcessEnv = process.env): CudaPrecision {
  const v = (env.LMFORGE_CUDA_PRECISION ?? '').trim().toLowerCase();
  if (v === '' || v === 'bf16' || v === 'bfloat16') return 'bf16';
  if (v === 'fp32' || v === 'f32' || v === 'float32') return 'fp32';
  throw new Error(`LMFORGE_CUDA_PRECISION='${v}' is not a precision: use bf16 (default) or fp32`);
}

let native: NativeCuda | null = null;
let loadError: string | null = null;

function tryLoad(): NativeCuda | null {
  if (native || loadError) return native;
  const path = cudaAddonPath();
  if (!existsSync(path)) {
    loadError =
      `the CUDA engine is not built (${path} is missing): install on a machine with the CUDA toolkit and cuBLAS ` +
      '(nvcc, cublasLt.h), or run `node scripts/build-cuda.mjs`; use --device cpu meanwhile';
    return null;
  }
  try {
    native = createRequire(import.meta.url)(path) as NativeCuda;
  } catch (e) {
    loadError = `the CUDA engine at ${path} could not be loaded (${e instanceof Error ? e.message : String(e)}): ` +
      'check that the CUDA driver and the cuBLAS libraries it was built against are installed';
  }
  return native;
}

/** Whether a CUDA backend can be created here, and if not, why (no build, no driver, no device). */
export function cudaAvailability(): { ok: true } | { ok: false; reason: string } {
  const n = tryLoad();
  if (!n) return { ok: false, reason: loadError ?? 'unknown' };
  const why = n.probe();
  return why ? { ok: false, reason: why } : { ok: true };
}

export interface CudaBackendOptions {
  /** Overrides LMFORGE_CUDA_PRECISION. */
  precision?: CudaPrecision;
}

export class CudaBackend extends NativeBackend {
  readonly name = 'cuda' as const;
  private readonly cuda: NativeCuda;

  constructor(opts: CudaBackendOptions = {}) {
    const avail = cudaAvailability();
    if (!avail.ok) throw new Error(`CUDA backend unavailable: ${avail.reason}`);
    const n = native as NativeCuda;
    super(n, 'CUDA');
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
  precision(): CudaPrecision {
    return this.cuda.precision();
  }
  setPrecision(p: CudaPrecision): void {
    this.cuda.setPrecision(p);
  }
  memoryStats(): CudaMemoryStats {
    return this.cuda.memoryStats();
  }
}
