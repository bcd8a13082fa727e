/**
 * headLogprob (the head scored per row, for evaluation) against a float64 reference: log-softmax of h W^T at the
 * target, and the first index of the row's maximum; ignored rows, several chunks, ties, bad targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, i32, read, zeros } from './helpers.js';
import { randInts, randVec, rng, type Vec } from './reference.js';

function headLogprobRef(h: Vec, w: Vec, targets: Int32Array, n: number, d: number, vocab: number): { logprob: Vec; argmax: Int32Array } {
  const logprob = new Float64Array(n);
  const argmax = new Int32Array(n).fill(-1);
  const row = new Float64Array(vocab);
  for (let i = 0; i < n; i++) {
    const t = targets[i]!;
    if (t === -100) continue;
    for (let v = 0; v < vocab; v++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += h[i * d + k]! * w[v * d + k]!;
      row[v] = s;
    }
    let best = 0;
    for (let v = 1; v < vocab; v++) if (row[v]! > row[best]!) best = v;
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(row[v]! - row[best]!);
    logprob[i] = row[t]! - row[best]! - Math.log(sum);
    argmax[i] = best;
  }
  return { logprob, argmax };
}

function run(h: Vec, w: Vec, targets: Int32Array, n: number, d: number, vocab: number, chunk?: number): { logprob: Vec; argmax: Int32Array } {
  const [bh, bw, bt] = [f32(h), f32(w), i32(targets)];
  const lp = zeros(n, 'f64');
  const am = i32(new Int32Array(n).fill(12345)); // garbage: every row is written
  const prev = process.env.LMFORGE_CE_CHUNK;
  if (chunk) process.env.LMFORGE_CE_CHUNK = String(chunk);
  try {
    be.headLogprob({ logprobOut: at(lp), argmaxOut: at(am), h: at(bh), w: at(bw), targets: at(bt), n, d, vocab });
  } finally {
    if (prev === undefined) delete process.env.LMFORGE_CE_CHUNK;
    else process.env.LMFORGE_CE_CHUNK = prev;
  }
  const argmax = new Int32Array(n);
  be.download(at(am), argmax);
  const out = { logprob: read(lp), argmax };
  freeAll(bh, bw, bt, lp, am);
  return out;
}

for (const [seed, n, chunk] of [[81, 7, undefined], [82, 23, 5], [83, 1, undefined]] as const) {
  test(`headLogprob equals the float64 reference (n ${n}${chunk ? `, chunks of ${chunk}` : ''})`, () => {
    const r = rng(seed);
    const d = 37;
    const vocab = 1001;
    const h = randVec(r, n * d, 2);
    const w = randVec(r, vocab * d, 0.5);
    const targets = randInts(r, n, vocab);
    for (let i = 1; i < n; i += 3) targets[i] = -100;
    const ref = headLogprobRef(h, w, targets, n, d, vocab);
    // Make one target the row's argmax, so the comparison meets a hit as well as misses.
    targets[0] = ref.argmax[0]!;
    const want = headLogprobRef(h, w, targets, n, d, vocab);
    const got = run(h, w, targets, n, d, vocab, chunk);
    for (let i = 0; i < n; i++) {
      if (targets[i] === -100) {
        assert.equal(got.logprob[i], 0, `row ${i}: ignored rows give 0`);
        assert.equal(got.argmax[i], -1, `row ${i}: ignored rows give -1`);
        continue;
      }
      const rel = Math.abs(got.logprob[i]! - want.logprob[i]!) / Math.abs(want.logprob[i]!);
      assert.ok(rel < 1e-5, `row ${i}: logprob ${got.logprob[i]} vs ${want.logprob[i]} (rel ${rel})`);
      assert.equal(got.argmax[i], want.argmax[i], `row ${i}: argmax`);
    }
    assert.equal(got.argmax[0], targets[0]);
  });
}

test('headLogprob: ties go to the first index; a bad target is refused', () => {
  const d = 4;
  const vocab = 9;
  const w = randVec(rng(84), vocab * d);
  // Row 0: h = 0, every logit 0: argmax 0 and log P = -log(vocab). Row 1: vocabulary rows 3 and 6 equal and largest.
  w.set(w.subarray(3 * d, 4 * d).map((x) => x * 0 + 5), 3 * d);
  w.set(w.subarray(3 * d, 4 * d), 6 * d);
  const h = Float64Array.from([0, 0, 0, 0, 1, 1, 1, 1]);
  const got = run(h, w, Int32Array.from([4, 6]), 2, d, vocab);
  assert.equal(got.argmax[0], 0);
  assert.ok(Math.abs(got.logprob[0]! + Math.log(vocab)) < 1e-12);
  assert.equal(got.argmax[1], 3);
  assert.throws(() => run(h, w, Int32Array.from([4, 9]), 2, d, vocab), /target 9 at row 1 is outside the vocabulary of 9/);
});
