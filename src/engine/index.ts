/** Backend selection: the one place that knows which engines exist. */
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu.js';
import { CudaBackend, cudaAvailability } from './cuda.js';

export type { Backend } from './backend.js';
export { CpuBackend } from './cpu.js';
export { CudaBackend, cudaAvailability } from './cuda.js';

/** The --device values: cuda-interpret runs the CUDA engine's kernels on the CPU (tests, CI; slow). */
export const DEVICE_NAMES = ['cpu', 'cuda', 'cuda-interpret', 'auto'] as const;
export type DeviceName = (typeof DEVICE_NAMES)[number];

/**
 * Which engine a device name means: 'auto' is CUDA when the CUDA engine is built and a device is present, else the
 * CPU (never the interpreter). `cudaOk` is injectable for tests.
 */
export function resolveDevice(
  device: DeviceName, cudaOk: () => boolean = () => cudaAvailability().ok,
): 'cpu' | 'cuda' | 'cuda-interpret' {
  switch (device) {
    case 'cpu':
    case 'cuda':
    case 'cuda-interpret':
      return device;
    case 'auto':
      return cudaOk() ? 'cuda' : 'cpu';
    default:
      throw new Error(`unknown device '${String(device)}': use ${DEVICE_NAMES.join(', ')}`);
  }
}

/** A device name from the command line or a config, checked. */
export function parseDevice(value: string): DeviceName {
  if ((DEVICE_NAMES as readonly string[]).includes(value)) return value as DeviceName;
  throw new Error(`--device ${value}: not a device; use ${DEVICE_NAMES.join(', ')}`);
}

export function createBackend(device: DeviceName = 'auto'): Backend {
  // A CUDA device asked explicitly: the constructor explains why it cannot run (not built, no driver, no GPU).
  const d = resolveDevice(device);
  if (d === 'cuda') return new CudaBackend();
  if (d === 'cuda-interpret') return new CudaBackend({ interpret: true });
  return new CpuBackend();
}
