/** Backend selection: the one place that knows which engines exist. */
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu.js';
import { CudaBackend, cudaAvailability } from './cuda.js';

export type { Backend } from './backend.js';
export { CpuBackend } from './cpu.js';
export { CudaBackend, cudaAvailability } from './cuda.js';

export type DeviceName = 'cpu' | 'cuda' | 'auto';

/**
 * Which engine a device name means: 'auto' is CUDA when the CUDA engine is built and a device is present,
 * else the CPU. `cudaOk` is injectable for tests.
 */
export function resolveDevice(device: DeviceName, cudaOk: () => boolean = () => cudaAvailability().ok): 'cpu' | 'cuda' {
  switch (device) {
    case 'cpu':
      return 'cpu';
    case 'cuda':
      return 'cuda';
    case 'auto':
      return cudaOk() ? 'cuda' : 'cpu';
    default:
      throw new Error(`unknown device '${String(device)}': use cpu, cuda or auto`);
  }
}

export function createBackend(device: DeviceName = 'auto'): Backend {
  // 'cuda' asked explicitly: the constructor explains why it cannot run (not built, no driver, no GPU).
  return resolveDevice(device) === 'cuda' ? new CudaBackend() : new CpuBackend();
}
