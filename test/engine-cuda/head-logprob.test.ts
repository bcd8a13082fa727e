/**
 * The CUDA headLogprob against the CPU one: log-probabilities to float32 rounding, identical argmax (first index
 * on ties), ignored rows, several chunks. Runs only where a CUDA device and the built engine exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { both, freePairs, pair, randF32, randInts, readBoth, rng, skipReason, zerosPair } from './harness.js';

test('headLogprob: CUDA equals CPU (several chunks, ignored rows, a tied row)', { skip: skipReason }, () => {
  const r = rng(31);
  const n = 150, d = 64, V = 1000;
  const prev = process.env.LMFORGE_CE_CHUNK;
  process.env.LMFORGE_CE_CHUNK = '64'; // three chunks, the last one partial
  try {
    const hv = randF32(r, n * d, 2);
    hv.fill(0, 5 * d, 6 * d); // row 5: every logit 0, argmax 0
    const h = pair(hv);
    const w = pair(randF32(r, V * d, 0.5));
    const t = randInts(r, n, V);
    for (let i = 0; i < n; i += 7) t[i] = -100;
    const targets = pair(t);
    const lp = zerosPair(n, 'f64');
    const am = zerosPair(n, 'i32');
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.headLogprob({ logprobOut: at(lp[g]), argmaxOut: at(am[g]), h: at(h[g]), w: at(w[g]), targets: at(targets[g]), n, d, vocab: V });
    });
    const a = readBoth(am);
    assert.deepEqual(Array.from(a.gpu), Array.from(a.cpu));
    assert.equal(a.gpu[5], 0);
    assert.equal(a.gpu[0], -1);
    const l = readBoth(lp);
    for (let i = 0; i < n; i++) {
      const rel = Math.abs(l.gpu[i]! - l.cpu[i]!) / Math.max(Math.abs(l.cpu[i]!), 1e-30);
      assert.ok(t[i] === -100 ? l.gpu[i] === 0 : rel < 1e-5, `row ${i}: ${l.gpu[i]} vs ${l.cpu[i]}`);
    }
    freePairs(h, w, targets, lp, am);
  } finally {
    if (prev === undefined) delete process.env.LMFORGE_CE_CHUNK;
    else process.env.LMFORGE_CE_CHUNK = prev;
  }
});
