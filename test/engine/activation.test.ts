import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import {
  actGradRef, actRef, type ActKind, dot, fdCheck, randVec, relErr, rng, swigluBackwardRef, swigluRef,
} from './reference.js';

test('activation references: derivatives match finite differences', () => {
  const r = rng(40);
  for (const kind of ['gelu', 'gelu_tanh', 'silu'] as ActKind[]) {
    const x = randVec(r, 50, 6);
    const R = randVec(r, 50);
    const grad = x.map((v, i) => actGradRef(v, kind) * R[i]);
    const loss = () => dot(x.map((v) => actRef(v, kind)), R);
    assert.ok(fdCheck(x, loss, grad, r) < 1e-7, kind);
  }
});

test('activation forward/backward match the reference (including the parallel path)', () => {
  const r = rng(41);
  for (const kind of ['gelu', 'gelu_tanh', 'silu'] as ActKind[]) {
    for (const n of [37, 140001]) {
      const x = randVec(r, n, 8);
      const g = randVec(r, n);
      const bx = f32(x);
      const bg = f32(g);
      const out = zeros(n);
      be.activationForward(at(out), at(bx), n, kind);
      const got = read(out);
      const want = x.map((v) => actRef(v, kind));
      assert.ok(relErr(got, want) < 1e-6, `${kind} forward`);
      be.activationBackward(at(out), at(bg), at(bx), n, kind);
      assert.ok(relErr(read(out), x.map((v, i) => g[i] * actGradRef(v, kind))) < 1e-5, `${kind} backward`);
      freeAll(bx, bg, out);
    }
  }
});

test('swiglu reference backward matches finite differences; native forward/backward match it', () => {
  const r = rng(42);
  const rows = 7;
  const f = 37;
  const gu = randVec(r, rows * 2 * f, 4);
  const R = randVec(r, rows * f);
  const dgu = swigluBackwardRef(R, gu, rows, f);
  assert.ok(fdCheck(gu, () => dot(swigluRef(gu, rows, f), R), dgu, r) < 1e-7);
  const bgu = f32(gu);
  const bR = f32(R);
  const out = zeros(rows * f);
  be.swigluForward(at(out), at(bgu), rows, f);
  assert.ok(relErr(read(out), swigluRef(gu, rows, f)) < 1e-6);
  const bd = f32(randVec(r, rows * 2 * f)); // garbage: backward must overwrite
  be.swigluBackward(at(bd), at(bR), at(bgu), rows, f);
  assert.ok(relErr(read(bd), dgu) < 1e-6);
  freeAll(bgu, bR, out, bd);
});

test('activation ops check buffer bounds', () => {
  const x = zeros(10);
  assert.throws(() => be.swigluForward(at(x), at(x), 3, 2), /gu needs elements \[0, 12\)/);
  assert.throws(() => be.activationForward(at(x), at(x), 11, 'silu'), /needs elements/);
  freeAll(x);
});
