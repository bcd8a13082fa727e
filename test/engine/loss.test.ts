import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, i32, read, zeros } from './helpers.js';
import { fdCheck, headCrossEntropyRef, randInts, randVec, relErr, rng } from './reference.js';

test('head cross-entropy reference gradients match finite differences', () => {
  const r = rng(70);
  const n = 5;
  const d = 7;
  const vocab = 11;
  const h = randVec(r, n * d, 2);
  const w = randVec(r, vocab * d, 2);
  const targets = Int32Array.from([3, -100, 0, 10, 3]);
  const gs = 0.37;
  const ref = headCrossEntropyRef(h, w, targets, n, d, vocab, gs);
  const loss = () => gs * headCrossEntropyRef(h, w, targets, n, d, vocab, gs).loss;
  assert.ok(fdCheck(h, loss, ref.dh, r) < 1e-6);
  assert.ok(fdCheck(w, loss, ref.dw, r) < 1e-6);
});

/** Runs the native op, optionally with a tiny chunk so N is not a multiple of it and several chunks run. */
function runCase(seed: number, n: number, opts: { grads: boolean; logits: boolean; chunk?: number }): void {
  const r = rng(seed);
  const d = 37;
  const vocab = 1001;
  const h = randVec(r, n * d, 2);
  const w = randVec(r, vocab * d, 0.5);
  const targets = randInts(r, n, vocab);
  for (let i = 0; i < n; i += 3) targets[i] = -100;
  const gs = 1 / n;
  const ref = headCrossEntropyRef(h, w, targets, n, d, vocab, gs);
  const [bh, bw, bt] = [f32(h), f32(w), i32(targets)];
  const lossOut = be.alloc('f64', 1);
  be.fill(at(lossOut), 1, 0.5); // the loss ADDS to what is there
  const dh = opts.grads ? f32(randVec(r, n * d)) : null; // garbage: dh is written
  const dw0 = randVec(r, vocab * d);
  const dw = opts.grads ? f32(dw0) : null; // dw accumulates
  const logits = opts.logits ? zeros(n * vocab) : null;
  const prev = process.env.LMFORGE_CE_CHUNK;
  if (opts.chunk) process.env.LMFORGE_CE_CHUNK = String(opts.chunk);
  try {
    be.headCrossEntropy({
      lossOut: at(lossOut), h: at(bh), w: at(bw), targets: at(bt), n, d, vocab, gradScale: gs,
      dh: dh && at(dh), dw: dw && at(dw), logitsOut: logits && at(logits),
    });
  } finally {
    if (prev === undefined) delete process.env.LMFORGE_CE_CHUNK;
    else process.env.LMFORGE_CE_CHUNK = prev;
  }
  const tag = JSON.stringify({ n, ...opts });
  assert.ok(Math.abs(read(lossOut)[0] - 0.5 - ref.loss) / ref.loss < 1e-5, `${tag} loss`);
  if (dh) assert.ok(relErr(read(dh), ref.dh) < 1e-5, `${tag} dh`);
  if (dw) assert.ok(relErr(read(dw), ref.dw.map((x, i) => x + dw0[i])) < 1e-5, `${tag} dw`);
  if (logits) assert.ok(relErr(read(logits), ref.logits) < 1e-5, `${tag} logits`);
  freeAll(bh, bw, bt, lossOut, dh, dw, logits);
}

test('head cross-entropy: loss only, with gradients, with logits, ignored targets', () => {
  runCase(71, 7, { grads: false, logits: false });
  runCase(72, 7, { grads: true, logits: false });
  runCase(73, 7, { grads: true, logits: true });
  runCase(74, 7, { grads: false, logits: true });
});

test('head cross-entropy across chunk boundaries (N not a multiple of the chunk)', () => {
  runCase(75, 23, { grads: true, logits: true, chunk: 5 });
  runCase(76, 23, { grads: true, logits: false, chunk: 1 });
  runCase(77, 40, { grads: true, logits: false }); // the default chunk
});

test('head cross-entropy: dw alone (no dh) and every target ignored', () => {
  const r = rng(78);
  const n = 4;
  const d = 5;
  const vocab = 9;
  const h = randVec(r, n * d);
  const w = randVec(r, vocab * d);
  const targets = Int32Array.from([1, 2, 3, 4]);
  const ref = headCrossEntropyRef(h, w, targets, n, d, vocab, 1);
  const [bh, bw, bt] = [f32(h), f32(w), i32(targets)];
  const lossOut = be.alloc('f64', 1);
  const dw = zeros(vocab * d);
  be.headCrossEntropy({ lossOut: at(lossOut), h: at(bh), w: at(bw), targets: at(bt), n, d, vocab, gradScale: 1, dh: null, dw: at(dw), logitsOut: null });
  assert.ok(relErr(read(dw), ref.dw) < 1e-5);
  const ign = i32([-100, -100, -100, -100]);
  const dh = f32(randVec(r, n * d));
  be.fill(at(lossOut), 1, 0);
  be.headCrossEntropy({ lossOut: at(lossOut), h: at(bh), w: at(bw), targets: at(ign), n, d, vocab, gradScale: 1, dh: at(dh), dw: null, logitsOut: null });
  assert.equal(read(lossOut)[0], 0);
  assert.deepEqual([...read(dh)], new Array(n * d).fill(0));
  freeAll(bh, bw, bt, lossOut, dw, ign, dh);
});

test('head cross-entropy rejects out-of-vocabulary targets and a f32 loss buffer', () => {
  const h = zeros(10);
  const w = zeros(15);
  const t = i32([1, 3]);
  const lossOut = be.alloc('f64', 1);
  const args = { lossOut: at(lossOut), h: at(h), w: at(w), targets: at(t), n: 2, d: 5, vocab: 3, gradScale: 1, dh: null, dw: null, logitsOut: null };
  assert.throws(() => be.headCrossEntropy(args), /target 3 at row 1 is outside the vocabulary of 3/);
  assert.throws(() => be.headCrossEntropy({ ...args, lossOut: at(h) }), /lossOut must be a f64 buffer/);
  freeAll(h, w, t, lossOut);
});
