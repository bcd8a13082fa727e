/**
 * The train/val split rule of docs/data.md: accepted document i is validation when floor((i+1)·f) > floor(i·f),
 * i.e. every (1/f)-th document, exactly floor(n·f) of n. The expectations here come from integer arithmetic on the
 * fraction's decimal digits and from hand-written lists, never from the implementation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValDoc } from '../../src/data/manifest.js';
import { isValExact } from './helpers.js';

const exactValIndices = (f: string, n: number): number[] =>
  Array.from({ length: n }, (_, i) => i).filter((i) => isValExact(i, Number(f)));

const valIndices = (f: number, n: number): number[] => Array.from({ length: n }, (_, i) => i).filter((i) => isValDoc(i, f));

test('every (1/f)-th document is validation: hand-written cases', () => {
  assert.deepEqual(valIndices(0.2, 16), [4, 9, 14]);
  assert.deepEqual(valIndices(0.05, 100), [19, 39, 59, 79, 99]);
  assert.deepEqual(valIndices(0.5, 6), [1, 3, 5]);
  assert.deepEqual(valIndices(1, 3), [0, 1, 2]);
  assert.deepEqual(valIndices(0, 50), []);
  assert.deepEqual(valIndices(0.3, 10), [3, 6, 9]);
  // The bundled corpus: 233 addresses at 2% gives 4 validation addresses (docs/data.md).
  assert.deepEqual(valIndices(0.02, 233), [49, 99, 149, 199]);
});

test('the rule matches exact integer arithmetic over long streams, with floor(n·f) validation documents', () => {
  for (const f of ['0.001', '0.005', '0.01', '0.02', '0.05', '0.1', '0.123', '0.25', '0.3', '0.5']) {
    for (const n of [1, 7, 199, 200, 201, 4321, 20000]) {
      const want = exactValIndices(f, n);
      assert.deepEqual(valIndices(Number(f), n), want, `f=${f} n=${n}`);
      const [whole, digits = ''] = f.split('.');
      assert.equal(want.length, Math.floor((n * Number(whole! + digits)) / 10 ** digits.length), `f=${f} n=${n}: count`);
    }
  }
});
