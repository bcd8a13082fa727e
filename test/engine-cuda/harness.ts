/**
 * Side-by-side harness of the CUDA op tests: every input is uploaded to a CpuBackend and a CudaBackend, the op
 * runs on both, and the outputs are compared (relative L2 error). The CUDA side is the GPU where one is usable,
 * else the same kernels interpreted on the CPU (--device cuda-interpret); LMFORGE_CUDA_TEST_DEVICE=cuda or
 * cuda-interpret picks one. When the chosen engine cannot run, `cuda` is null and `skipReason` says why.
 */
import { at, type Backend, type DeviceBuffer, type DType } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu.js';
import { CudaBackend, cudaAvailability, type CudaEngineKind } from '../../src/engine/cuda.js';
import { relErr } from '../helpers.js';

export { relErr };

function pickDevice(): CudaEngineKind {
  const want = process.env.LMFORGE_CUDA_TEST_DEVICE;
  if (want === 'cuda' || want === 'cuda-interpret') return want;
  if (want) throw new Error(`LMFORGE_CUDA_TEST_DEVICE=${want}: use cuda or cuda-interpret`);
  return cudaAvailability('cuda').ok ? 'cuda' : 'cuda-interpret';
}

/** The engine these tests run: 'cuda' (a GPU) or 'cuda-interpret'. */
export const device: CudaEngineKind = pickDevice();
const avail = cudaAvailability(device);
export const cuda: CudaBackend | null = avail.ok
  ? new CudaBackend({ precision: 'fp32', interpret: device === 'cuda-interpret' })
  : null;
/** The CPU reference, created only where the CUDA side exists (so these tests need no CPU build elsewhere). */
export const cpu: CpuBackend = avail.ok ? new CpuBackend() : (null as unknown as CpuBackend);
export const skipReason: string | false = avail.ok ? false : `no ${device} backend here: ${avail.reason}`;

/** Tolerance of an op whose products run in bf16 (relative L2), and of pure fp32 ops. */
export const BF16_TOL = 2e-2;
export const FP32_TOL = 2e-5;

/** One tensor on both backends. */
export interface Pair {
  cpu: DeviceBuffer;
  gpu: DeviceBuffer;
  length: number;
}

export { rng } from '../engine/reference.js';

export function randF32(r: () => number, n: number, scale = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (r() * 2 - 1) * scale;
  return v;
}

export function randInts(r: () => number, n: number, hi: number): Int32Array {
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.floor(r() * hi);
  return v;
}

function gpu(): CudaBackend {
  if (!cuda) throw new Error(skipReason || 'no CUDA backend');
  return cuda;
}

export function pair(data: Float32Array | Float64Array | Int32Array): Pair {
  const dtype: DType = data instanceof Float32Array ? 'f32' : data instanceof Float64Array ? 'f64' : 'i32';
  const c = cpu.alloc(dtype, data.length);
  const g = gpu().alloc(dtype, data.length);
  cpu.upload(at(c), data);
  gpu().upload(at(g), data);
  return { cpu: c, gpu: g, length: data.length };
}

export function zerosPair(n: number, dtype: DType = 'f32'): Pair {
  return { cpu: cpu.alloc(dtype, n), gpu: gpu().alloc(dtype, n), length: n };
}

/** Runs `op` on both backends with the matching buffers of each pair. */
export function both(op: (be: Backend, side: 'cpu' | 'gpu') => void): void {
  op(cpu, 'cpu');
  op(gpu(), 'gpu');
}

export function readBoth(p: Pair): { cpu: Float64Array; gpu: Float64Array } {
  const get = (be: Backend, b: DeviceBuffer): Float64Array => {
    if (b.dtype === 'f64') {
      const o = new Float64Array(b.length);
      be.download(at(b), o);
      return o;
    }
    if (b.dtype === 'i32') {
      const o = new Int32Array(b.length);
      be.download(at(b), o);
      return Float64Array.from(o);
    }
    const o = new Float32Array(b.length);
    be.download(at(b), o);
    return Float64Array.from(o);
  };
  return { cpu: get(cpu, p.cpu), gpu: get(gpu(), p.gpu) };
}

/** Relative L2 error of the GPU result against the CPU result. */
export function errOf(p: Pair): number {
  const r = readBoth(p);
  return relErr(r.gpu, r.cpu);
}

export function freePairs(...ps: Pair[]): void {
  for (const p of ps) {
    cpu.free(p.cpu);
    gpu().free(p.gpu);
  }
}

/** Runs `fn` with the CUDA backend in the given precision, restoring fp32 afterwards. */
export function withPrecision(p: 'bf16' | 'fp32', fn: () => void): void {
  const g = gpu();
  g.setPrecision(p);
  try {
    fn();
  } finally {
    g.setPrecision('fp32');
  }
}
