/** Shared helpers of the kernel tests: one backend, and transfers between float64 vectors and f32 buffers. */
import { CpuBackend } from '../../src/engine/cpu.js';
import { at, type DeviceBuffer } from '../../src/engine/backend.js';

export const be = new CpuBackend();

export function f32(data: Float64Array | number[]): DeviceBuffer {
  const b = be.alloc('f32', data.length);
  be.upload(at(b), Float32Array.from(data));
  return b;
}

export function i32(data: Int32Array | number[]): DeviceBuffer {
  const b = be.alloc('i32', data.length);
  be.upload(at(b), Int32Array.from(data));
  return b;
}

export function zeros(n: number, dtype: 'f32' | 'f64' = 'f32'): DeviceBuffer {
  return be.alloc(dtype, n);
}

/** Downloads `n` elements (default: the whole buffer) from `offset` as float64. */
export function read(b: DeviceBuffer, n = b.length, offset = 0): Float64Array {
  if (b.dtype === 'f64') {
    const o = new Float64Array(n);
    be.download(at(b, offset), o);
    return o;
  }
  const o = new Float32Array(n);
  be.download(at(b, offset), o);
  return Float64Array.from(o);
}

export function freeAll(...bufs: (DeviceBuffer | null)[]): void {
  for (const b of bufs) if (b) be.free(b);
}
