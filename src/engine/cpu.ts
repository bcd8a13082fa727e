/**
 * CpuBackend: the `Backend` implemented by the native addon `build/Release/lmforge_cpu.node`
 * (C++ kernels with OpenMP threads and OpenBLAS GEMMs, sources in src/engine/cpu/).
 *
 * Every op runs synchronously on the calling thread's OpenMP team. Buffers travel to the addon as
 * (handle, offset) number pairs; the addon checks dtypes and bounds and throws a JavaScript Error on misuse.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeBackend, type NativeOps, type Num } from './native.js';

/** The CPU engine's functions beyond the shared ops (src/engine/cpu/addon.cc, memory.cc). */
interface NativeCpu extends NativeOps {
  setThreads(n: Num): void;
  threads(): Num;
}

let native: NativeCpu | null = null;

// OpenBLAS picks its kernels from the CPU (or OPENBLAS_CORETYPE). We never override that choice: some OpenBLAS
// builds compute wrong results with kernels their detection did not pick. docs/benchmarks.md shows the effect.
/** Loads the addon once; the package root is three levels above dist/src/engine/cpu.js. */
function loadNative(): NativeCpu {
  if (native) return native;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const path = join(root, 'build', 'Release', 'lmforge_cpu.node');
  const require = createRequire(import.meta.url);
  try {
    native = require(path) as NativeCpu;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(
      `the native CPU engine could not be loaded from ${path} (${why}): run \`npm install\` in ${root} ` +
        '(needs g++ and libopenblas-dev) to build it',
    );
  }
  return native;
}

export class CpuBackend extends NativeBackend {
  readonly name = 'cpu' as const;
  /** The CPU engine computes in f32; it stores bf16 buffers (transfers, fill, copy/cast) but its ops refuse them. */
  readonly activationDType = 'f32' as const;
  private readonly cpu: NativeCpu;

  constructor() {
    const n = loadNative();
    super(n, 'CPU');
    this.cpu = n;
  }

  setThreads(n: number): void {
    this.cpu.setThreads(n);
  }
  threads(): number {
    return this.cpu.threads();
  }
}
