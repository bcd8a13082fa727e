import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { dot, fdCheck, qkPrepBackwardRef, qkPrepRef, type QkPrepShape, randVec, relErr, rng, ropeTables } from './reference.js';

// heads 6, kvHeads 2, headDim 10, seq 13, two sequences; q|k|v fused with 3 padding columns.
function shape(n = 26): QkPrepShape {
  const heads = 6;
  const kvHeads = 2;
  const headDim = 10;
  return { n, seq: 13, heads, kvHeads, headDim, qkvStride: (heads + 2 * kvHeads) * headDim + 3, eps: 1e-6 };
}

const variants: { name: string; norm: boolean; rope: boolean }[] = [
  { name: 'norm+rope', norm: true, rope: true },
  { name: 'rope only', norm: false, rope: true },
  { name: 'norm only', norm: true, rope: false },
];

test('qkPrep reference backward matches finite differences', () => {
  const r = rng(50);
  const s = shape();
  for (const v of variants) {
    const qkv = randVec(r, s.n * s.qkvStride, 2);
    const qw = v.norm ? randVec(r, s.headDim) : null;
    const kw = v.norm ? randVec(r, s.headDim) : null;
    const { cos, sin } = ropeTables(s.seq, s.headDim, 10000);
    const c = v.rope ? cos : null;
    const sn = v.rope ? sin : null;
    const R = randVec(r, s.n * (s.heads + s.kvHeads) * s.headDim);
    const back = qkPrepBackwardRef(R, qkv, qw, kw, c, sn, s);
    const loss = () => dot(qkPrepRef(qkv, qw, kw, c, sn, s).out, R);
    assert.ok(fdCheck(qkv, loss, back.dqkv, r) < 1e-6, v.name);
    if (qw && kw) {
      assert.ok(fdCheck(qw, loss, back.dqw, r) < 1e-6, v.name);
      assert.ok(fdCheck(kw, loss, back.dkw, r) < 1e-6, v.name);
    }
  }
});

test('qkPrep native forward and backward match the reference (fused strided qkv, v columns untouched)', () => {
  const r = rng(51);
  for (const n of [26, 1700]) {
    const s = shape(n);
    const nh = s.heads + s.kvHeads;
    for (const v of variants) {
      const qkv = randVec(r, s.n * s.qkvStride, 2);
      const qw = v.norm ? randVec(r, s.headDim) : null;
      const kw = v.norm ? randVec(r, s.headDim) : null;
      const { cos, sin } = ropeTables(s.seq, s.headDim, 1e6);
      const c = v.rope ? cos : null;
      const sn = v.rope ? sin : null;
      const bqkv = f32(qkv);
      const bqw = qw && f32(qw);
      const bkw = kw && f32(kw);
      const bc = c && f32(c);
      const bs = sn && f32(sn);
      const out = zeros(s.n * nh * s.headDim);
      const rstd = zeros(s.n * nh);
      const p = (b: typeof bqw) => (b ? at(b) : null);
      be.qkPrepForward(at(out), at(rstd), at(bqkv), s.qkvStride, p(bqw), p(bkw), p(bc), p(bs), s.n, s.seq, s.heads, s.kvHeads, s.headDim, s.eps);
      const ref = qkPrepRef(qkv, qw, kw, c, sn, s);
      assert.ok(relErr(read(out), ref.out) < 1e-5, `${v.name} forward`);
      if (v.norm) assert.ok(relErr(read(rstd), ref.rstd) < 1e-5, `${v.name} rstd`);

      const R = randVec(r, s.n * nh * s.headDim);
      const bR = f32(R);
      const sentinel = randVec(r, s.n * s.qkvStride);
      const dqkv = f32(sentinel);
      const dqw0 = randVec(r, s.headDim);
      const dqw = f32(dqw0);
      const dkw = f32(dqw0);
      be.qkPrepBackward(at(dqkv), s.qkvStride, v.norm ? at(dqw) : null, v.norm ? at(dkw) : null, at(bR), at(bqkv), at(rstd), p(bqw), p(bkw), p(bc), p(bs), s.n, s.seq, s.heads, s.kvHeads, s.headDim);
      const back = qkPrepBackwardRef(R, qkv, qw, kw, c, sn, s);
      const got = read(dqkv);
      const qkCols = nh * s.headDim;
      const gotQk: number[] = [];
      const wantQk: number[] = [];
      for (let t = 0; t < s.n; t++) {
        for (let j = 0; j < s.qkvStride; j++) {
          const i = t * s.qkvStride + j;
          if (j < qkCols) {
            gotQk.push(got[i]);
            wantQk.push(back.dqkv[i]);
          } else {
            assert.equal(got[i], sentinel[i], 'v and padding columns of dqkv must be left alone');
          }
        }
      }
      assert.ok(relErr(gotQk, wantQk) < 1e-5, `${v.name} dqkv`);
      if (v.norm) {
        assert.ok(relErr(read(dqw), back.dqw.map((x, i) => x + dqw0[i])) < 1e-5, `${v.name} dqNormW`);
        assert.ok(relErr(read(dkw), back.dkw.map((x, i) => x + dqw0[i])) < 1e-5, `${v.name} dkNormW`);
      }
      freeAll(bqkv, bqw, bkw, bc, bs, out, rstd, bR, dqkv, dqw, dkw);
    }
  }
});

test('qkPrep rejects an odd headDim with RoPE, one of cos/sin, and a too-small stride', () => {
  const buf = zeros(1000);
  assert.throws(() => be.qkPrepForward(at(buf), at(buf), at(buf), 20, null, null, at(buf), at(buf), 2, 2, 1, 1, 9, 1e-6), /even headDim/);
  assert.throws(() => be.qkPrepForward(at(buf), at(buf), at(buf), 20, null, null, at(buf), null, 2, 2, 1, 1, 10, 1e-6), /cos and sin/);
  assert.throws(() => be.qkPrepForward(at(buf), at(buf), at(buf), 19, null, null, null, null, 2, 2, 1, 1, 10, 1e-6), /qkvStride 19/);
  freeAll(buf);
});

test('qkPrep with per-token positions (restarting per document) matches the reference; bad positions are refused', () => {
  const r = rng(52);
  const s0 = shape(26);
  // Documents of 5, 8 and 13 tokens: positions restart at 0 at each.
  const positions = [...Array(26).keys()].map((t) => (t < 5 ? t : t < 13 ? t - 5 : t - 13));
  const s: QkPrepShape = { ...s0, positions };
  const nh = s.heads + s.kvHeads;
  const qkv = randVec(r, s.n * s.qkvStride, 2);
  const qw = randVec(r, s.headDim);
  const kw = randVec(r, s.headDim);
  const { cos, sin } = ropeTables(s.seq, s.headDim, 1e4);
  const [bqkv, bqw, bkw, bc, bs] = [f32(qkv), f32(qw), f32(kw), f32(cos), f32(sin)];
  const bpos = be.alloc('i32', s.n);
  be.upload(at(bpos), Int32Array.from(positions));
  const out = zeros(s.n * nh * s.headDim);
  const rstd = zeros(s.n * nh);
  be.qkPrepForward(at(out), at(rstd), at(bqkv), s.qkvStride, at(bqw), at(bkw), at(bc), at(bs), s.n, s.seq, s.heads, s.kvHeads, s.headDim, s.eps, at(bpos));
  const ref = qkPrepRef(qkv, qw, kw, cos, sin, s);
  assert.ok(relErr(read(out), ref.out) < 1e-5, 'forward');
  // Not the row positions: the result differs from t % seq.
  assert.ok(relErr(read(out), qkPrepRef(qkv, qw, kw, cos, sin, s0).out) > 1e-2);
  const R = randVec(r, s.n * nh * s.headDim);
  const bR = f32(R);
  const dqkv = zeros(s.n * s.qkvStride);
  const [dqw, dkw] = [zeros(s.headDim), zeros(s.headDim)];
  be.qkPrepBackward(at(dqkv), s.qkvStride, at(dqw), at(dkw), at(bR), at(bqkv), at(rstd), at(bqw), at(bkw), at(bc), at(bs), s.n, s.seq, s.heads, s.kvHeads, s.headDim, at(bpos));
  const back = qkPrepBackwardRef(R, qkv, qw, kw, cos, sin, s);
  const got = read(dqkv);
  const cols = nh * s.headDim;
  const pick = (v: ArrayLike<number>) => Array.from(v).filter((_, i) => i % s.qkvStride < cols);
  assert.ok(relErr(pick(got), pick(back.dqkv)) < 1e-5, 'dqkv');
  assert.ok(relErr(read(dqw), back.dqw) < 1e-5, 'dqNormW');
  // The reference backward with positions is right: finite differences.
  const loss = () => dot(qkPrepRef(qkv, qw, kw, cos, sin, s).out, R);
  assert.ok(fdCheck(qkv, loss, back.dqkv, r) < 1e-6);
  be.upload(at(bpos, 7), Int32Array.of(13));
  assert.throws(
    () => be.qkPrepForward(at(out), at(rstd), at(bqkv), s.qkvStride, at(bqw), at(bkw), at(bc), at(bs), s.n, s.seq, s.heads, s.kvHeads, s.headDim, s.eps, at(bpos)),
    /positions\[7\] = 13 is outside the RoPE table \[0, 13\)/,
  );
  freeAll(bqkv, bqw, bkw, bc, bs, bpos, out, rstd, bR, dqkv, dqw, dkw);
});
