import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICES, getDevice, deviceFromName, resolvePeak, mfu, achievedGflops } from '../../src/plan/devices.js';

test('dense bf16 peaks and memory as the datasheets give them', () => {
  assert.equal(getDevice('b200').peakFlops, 2.25e15); // 4.5e15 is the 2:4 sparse figure
  assert.equal(getDevice('H100').peakFlops, 989e12);
  assert.equal(getDevice('h200').peakFlops, 989e12);
  assert.equal(getDevice('h100-pcie').peakFlops, 756e12);
  assert.equal(getDevice('a100').peakFlops, 312e12);
  assert.equal(getDevice('l40s').peakFlops, 362e12);
  assert.equal(getDevice('rtx4090').peakFlops, 165e12);
  assert.equal(getDevice('b200').memoryBytes, 180e9);
  assert.equal(getDevice('h200').memoryBytes, 141e9);
  assert.equal(getDevice('h100').memoryBytes, 80e9);
  assert.equal(getDevice('a100').memoryBytes, 80e9);
  for (const [k, d] of Object.entries(DEVICES)) assert.equal(k, d.name);
  assert.throws(() => getDevice('tpu'), /unknown GPU 'tpu'. Known: b200, .*--peak/);
  assert.throws(() => getDevice('toString'), /unknown GPU/);
});

test('driver names map to table entries', () => {
  assert.equal(deviceFromName('NVIDIA H100 80GB HBM3')?.name, 'h100');
  assert.equal(deviceFromName('NVIDIA H100 PCIe')?.name, 'h100-pcie');
  assert.equal(deviceFromName('NVIDIA H200')?.name, 'h200');
  assert.equal(deviceFromName('NVIDIA B200')?.name, 'b200');
  assert.equal(deviceFromName('NVIDIA A100-SXM4-80GB')?.name, 'a100');
  assert.equal(deviceFromName('NVIDIA A100-PCIE-40GB')?.name, 'a100-40gb');
  assert.equal(deviceFromName('NVIDIA GeForce RTX 4090')?.name, 'rtx4090');
  assert.equal(deviceFromName('NVIDIA GeForce RTX 3090'), undefined);
});

test('peak override and MFU arithmetic', () => {
  assert.equal(resolvePeak(undefined, DEVICES.h100), 989e12);
  assert.equal(resolvePeak(undefined, undefined), undefined); // CPU: report GFLOP/s
  assert.equal(resolvePeak(5e14, DEVICES.h100), 5e14);
  assert.equal(resolvePeak('4e14', DEVICES.h100), 4e14);
  assert.equal(resolvePeak('a100', DEVICES.h100), 312e12);
  assert.throws(() => resolvePeak(-1), /positive/);
  // 400,000 tokens/s x 3.6e9 FLOP/token = 1.44e15 FLOP/s over 8 x 2.25e15 = 18e15 -> 8%.
  assert.ok(Math.abs(mfu(400_000, 3.6e9, 8 * 2.25e15) - 0.08) < 1e-15);
  assert.equal(achievedGflops(1000, 2e9), 2000);
});

test('every table entry, every driver name, and names that are not devices', () => {
  const want: Record<string, [number, number]> = {
    b200: [2.25e15, 180e9], h200: [989e12, 141e9], h100: [989e12, 80e9], 'h100-pcie': [756e12, 80e9],
    a100: [312e12, 80e9], 'a100-40gb': [312e12, 40e9], l40s: [362e12, 48e9], rtx4090: [165e12, 24e9],
  };
  assert.deepEqual(Object.fromEntries(Object.entries(DEVICES).map(([k, d]) => [k, [d.peakFlops, d.memoryBytes]])), want);
  for (const d of Object.values(DEVICES)) assert.ok(d.about.startsWith('NVIDIA '), d.name);
  for (const n of ['constructor', '__proto__', 'hasOwnProperty', '']) assert.throws(() => getDevice(n), /unknown GPU/, n);
  assert.equal(deviceFromName('NVIDIA L40S')?.name, 'l40s');
  assert.equal(deviceFromName('nvidia h100 80gb hbm3')?.name, 'h100');
  assert.equal(deviceFromName('NVIDIA GH200 480GB'), undefined);
  assert.equal(deviceFromName('Tesla V100-SXM2-16GB'), undefined);
  assert.equal(resolvePeak('', DEVICES.h200), 989e12);
  assert.equal(resolvePeak('H100'), 989e12);
  assert.throws(() => resolvePeak(0), /peak FLOP\/s override must be a positive number, got 0/);
  assert.throws(() => resolvePeak(Infinity), /got Infinity/);
  assert.throws(() => resolvePeak('-5'), /got -5/);
  assert.throws(() => resolvePeak('tpu'), /unknown GPU 'tpu'/);
});
