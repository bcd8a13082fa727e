/** Backend selection: the one place that knows which engines exist. */
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu.js';

export type { Backend } from './backend.js';
export { CpuBackend } from './cpu.js';

/** 'auto' picks the CPU engine until the CUDA engine is built. */
export function createBackend(device: 'cpu' | 'cuda' | 'auto' = 'auto'): Backend {
  switch (device) {
    case 'cpu':
    case 'auto':
      return new CpuBackend();
    case 'cuda':
      throw new Error('CUDA backend not built: this build has only the CPU engine; use --device cpu (or auto)');
    default:
      throw new Error(`unknown device '${String(device)}': use cpu, cuda or auto`);
  }
}
