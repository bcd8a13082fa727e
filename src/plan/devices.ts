/**
 * Accelerator facts for MFU and planning: dense (no 2:4 sparsity) bf16 tensor-core peak with fp32 accumulation,
 * and memory per device, from the vendors' datasheets. Sparse figures are twice these and are never used:
 * the planning document's "4.5 PFLOP/s per B200" is the sparse number; dense is 2.25 PFLOP/s.
 */

export interface DeviceSpec {
  /** Short name used on the command line. */
  name: string;
  /** What it is, for printing. */
  about: string;
  /** Dense bf16 peak, FLOP/s, fp32 accumulation. */
  peakFlops: number;
  /** Memory per device in bytes (the datasheet's GB, 1e9 bytes). */
  memoryBytes: number;
}

const GB = 1e9;

export const DEVICES: Readonly<Record<string, DeviceSpec>> = Object.freeze({
  b200: { name: 'b200', about: 'NVIDIA B200 (HGX/DGX, 1000 W)', peakFlops: 2.25e15, memoryBytes: 180 * GB },
  h200: { name: 'h200', about: 'NVIDIA H200 SXM', peakFlops: 989e12, memoryBytes: 141 * GB },
  h100: { name: 'h100', about: 'NVIDIA H100 SXM', peakFlops: 989e12, memoryBytes: 80 * GB },
  'h100-pcie': { name: 'h100-pcie', about: 'NVIDIA H100 PCIe', peakFlops: 756e12, memoryBytes: 80 * GB },
  a100: { name: 'a100', about: 'NVIDIA A100 80GB (SXM)', peakFlops: 312e12, memoryBytes: 80 * GB },
  'a100-40gb': { name: 'a100-40gb', about: 'NVIDIA A100 40GB', peakFlops: 312e12, memoryBytes: 40 * GB },
  l40s: { name: 'l40s', about: 'NVIDIA L40S', peakFlops: 362e12, memoryBytes: 48 * GB },
  // GeForce Ada runs bf16 with fp32 accumulation at half the fp16-accumulate rate: 165 dense, not 330.
  rtx4090: { name: 'rtx4090', about: 'NVIDIA GeForce RTX 4090', peakFlops: 165e12, memoryBytes: 24 * GB },
});

export class DeviceError extends Error {}

/** A table entry by short name, with the known names in the error. */
export function getDevice(name: string): DeviceSpec {
  const d = DEVICES[name.toLowerCase()];
  if (!d || !Object.hasOwn(DEVICES, name.toLowerCase()))
    throw new DeviceError(
      `unknown GPU '${name}'. Known: ${Object.keys(DEVICES).join(', ')}. ` +
        `For another device pass its dense bf16 peak in FLOP/s (e.g. --peak 400e12) and its memory in GB.`,
    );
  return d;
}

/**
 * Maps a driver's device name (CUDA's cudaDeviceProp.name, nvidia-smi) to a table entry, or undefined when the
 * device is not in the table (the trainer then reports achieved GFLOP/s rather than a made-up MFU).
 */
export function deviceFromName(driverName: string): DeviceSpec | undefined {
  const n = driverName.toUpperCase();
  if (/\bB200\b/.test(n)) return DEVICES.b200;
  if (/\bH200\b/.test(n)) return DEVICES.h200;
  if (/\bH100\b/.test(n)) return /PCIE/.test(n) ? DEVICES['h100-pcie'] : DEVICES.h100;
  if (/\bA100\b/.test(n)) return /40GB/.test(n) ? DEVICES['a100-40gb'] : DEVICES.a100;
  if (/\bL40S\b/.test(n)) return DEVICES.l40s;
  if (/RTX 4090\b/.test(n)) return DEVICES.rtx4090;
  return undefined;
}

/**
 * The peak to divide by: a user override (a number of FLOP/s, or a table name) wins, then the detected device.
 * Undefined means "no known peak" (the CPU, an unknown GPU): report achieved GFLOP/s instead of MFU.
 */
export function resolvePeak(override: number | string | undefined, detected?: DeviceSpec): number | undefined {
  if (typeof override === 'number') {
    if (!(Number.isFinite(override) && override > 0))
      throw new DeviceError(`peak FLOP/s override must be a positive number, got ${override}`);
    return override;
  }
  if (typeof override === 'string' && override !== '') {
    const x = Number(override);
    if (Number.isFinite(x)) return resolvePeak(x);
    return getDevice(override).peakFlops;
  }
  return detected?.peakFlops;
}

/** Model FLOPs utilisation: achieved model FLOP/s over peak FLOP/s (pass the peak of all devices together). */
export function mfu(tokensPerS: number, flopsPerToken: number, peakFlops: number): number {
  return (tokensPerS * flopsPerToken) / peakFlops;
}

/** Achieved model GFLOP/s, for devices without a peak. */
export function achievedGflops(tokensPerS: number, flopsPerToken: number): number {
  return (tokensPerS * flopsPerToken) / 1e9;
}
