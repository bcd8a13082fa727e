/**
 * The interpreted CUDA engine's model of CUDA (src/engine/cuda/interpret): its own checks (barriers, warp
 * shuffles and votes, NaN-poisoned shared memory, faults that become sticky errors, stream and event semantics,
 * the tensor-core instruction models of ptx.cuh, bf16/half conversions), run inside the addon. Only in
 * cuda-interpret mode (harness.ts picks it when there is no GPU).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CudaBackend, cudaAvailability } from '../../src/engine/cuda.js';

const avail = cudaAvailability('cuda-interpret');
const skip = avail.ok ? false : `no interpreted CUDA engine: ${avail.reason}`;
const be = avail.ok ? new CudaBackend({ interpret: true, precision: 'fp32' }) : null;

test('the interpreter names its self-checks', { skip }, () => {
  assert.ok(be!.interpretSelfTests().length >= 10);
});

for (const name of be?.interpretSelfTests() ?? []) {
  test(`interpreter: ${name}`, { skip }, () => {
    assert.equal(be!.interpretSelfTest(name), '');
  });
}
