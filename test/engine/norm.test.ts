import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import {
  dot, fdCheck, layernormBackwardRef, layernormRef, randVec, relErr, rmsnormBackwardRef, rmsnormRef, rng,
} from './reference.js';

const rows = 7;
const d = 37;
const eps = 1e-6;

test('rmsnorm reference backward matches finite differences', () => {
  const r = rng(30);
  const x = randVec(r, rows * d);
  const w = randVec(r, d);
  const R = randVec(r, rows * d);
  const { dx, dw } = rmsnormBackwardRef(R, x, w, rows, d, eps);
  const loss = () => dot(rmsnormRef(x, w, rows, d, eps).out, R);
  assert.ok(fdCheck(x, loss, dx, r) < 1e-6);
  assert.ok(fdCheck(w, loss, dw, r) < 1e-6);
});

test('rmsnorm forward and backward (dx overwrite and accumulate, dw accumulates) match the reference', () => {
  const r = rng(31);
  for (const rowsN of [rows, 30000]) {
    const x = randVec(r, rowsN * d, 2);
    const w = randVec(r, d);
    const g = randVec(r, rowsN * d);
    const dw0 = randVec(r, d);
    const dx0 = randVec(r, rowsN * d);
    const bx = f32(x);
    const bw = f32(w);
    const bg = f32(g);
    const out = zeros(rowsN * d);
    const rstd = zeros(rowsN);
    be.rmsnormForward(at(out), at(rstd), at(bx), at(bw), rowsN, d, eps);
    const ref = rmsnormRef(x, w, rowsN, d, eps);
    assert.ok(relErr(read(out), ref.out) < 1e-5);
    assert.ok(relErr(read(rstd), ref.rstd) < 1e-6);
    const back = rmsnormBackwardRef(g, x, w, rowsN, d, eps);
    const bdx = f32(dx0);
    const bdw = f32(dw0);
    be.rmsnormBackward(at(bdx), at(bdw), at(bg), at(bx), at(bw), at(rstd), rowsN, d, false);
    assert.ok(relErr(read(bdx), back.dx) < 1e-5);
    assert.ok(relErr(read(bdw), back.dw.map((v, i) => v + dw0[i])) < 1e-5);
    be.upload(at(bdx), Float32Array.from(dx0));
    be.rmsnormBackward(at(bdx), at(bdw), at(bg), at(bx), at(bw), at(rstd), rowsN, d, true);
    assert.ok(relErr(read(bdx), back.dx.map((v, i) => v + dx0[i])) < 1e-5);
    assert.ok(relErr(read(bdw), back.dw.map((v, i) => 2 * v + dw0[i])) < 1e-5);
    freeAll(bx, bw, bg, out, rstd, bdx, bdw);
  }
});

test('layernorm reference backward matches finite differences', () => {
  const r = rng(32);
  const x = randVec(r, rows * d);
  const w = randVec(r, d);
  const b = randVec(r, d);
  const R = randVec(r, rows * d);
  const { dx, dw, db } = layernormBackwardRef(R, x, w, rows, d, eps);
  const loss = () => dot(layernormRef(x, w, b, rows, d, eps).out, R);
  assert.ok(fdCheck(x, loss, dx, r) < 1e-6);
  assert.ok(fdCheck(w, loss, dw, r) < 1e-6);
  assert.ok(fdCheck(b, loss, db, r) < 1e-6);
});

test('layernorm forward and backward match the reference', () => {
  const r = rng(33);
  for (const rowsN of [rows, 30000]) {
    const x = randVec(r, rowsN * d, 3).map((v) => v + 0.5);
    const w = randVec(r, d);
    const b = randVec(r, d);
    const g = randVec(r, rowsN * d);
    const dx0 = randVec(r, rowsN * d);
    const dw0 = randVec(r, d);
    const db0 = randVec(r, d);
    const bx = f32(x);
    const bw = f32(w);
    const bb = f32(b);
    const bg = f32(g);
    const out = zeros(rowsN * d);
    const mean = zeros(rowsN);
    const rstd = zeros(rowsN);
    be.layernormForward(at(out), at(mean), at(rstd), at(bx), at(bw), at(bb), rowsN, d, eps);
    const ref = layernormRef(x, w, b, rowsN, d, eps);
    assert.ok(relErr(read(out), ref.out) < 1e-5);
    assert.ok(relErr(read(mean), ref.mean) < 1e-6);
    assert.ok(relErr(read(rstd), ref.rstd) < 1e-5);
    const back = layernormBackwardRef(g, x, w, rowsN, d, eps);
    const bdx = f32(dx0);
    const bdw = f32(dw0);
    const bdb = f32(db0);
    be.layernormBackward(at(bdx), at(bdw), at(bdb), at(bg), at(bx), at(bw), at(mean), at(rstd), rowsN, d, false);
    assert.ok(relErr(read(bdx), back.dx) < 1e-5);
    assert.ok(relErr(read(bdw), back.dw.map((v, i) => v + dw0[i])) < 1e-5);
    assert.ok(relErr(read(bdb), back.db.map((v, i) => v + db0[i])) < 1e-5);
    be.upload(at(bdx), Float32Array.from(dx0));
    be.layernormBackward(at(bdx), at(bdw), at(bdb), at(bg), at(bx), at(bw), at(mean), at(rstd), rowsN, d, true);
    assert.ok(relErr(read(bdx), back.dx.map((v, i) => v + dx0[i])) < 1e-5);
    freeAll(bx, bw, bb, bg, out, mean, rstd, bdx, bdw, bdb);
  }
});
