import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { attentionBackwardRef, attentionRef, type AttnShape, dot, fdCheck, randVec, relErr, rng } from './reference.js';

/** A fused qkv layout: q | k | v columns of one [N, stride] buffer with 2 padding columns. */
function fused(batch: number, seq: number, heads: number, kvHeads: number, headDim: number): AttnShape {
  const stride = (heads + 2 * kvHeads) * headDim + 2;
  return { batch, seq, heads, kvHeads, headDim, scale: 1 / Math.sqrt(headDim), sq: stride, sk: stride, sv: stride };
}

test('attention reference backward matches finite differences (GQA 6:2)', () => {
  const r = rng(60);
  const s = fused(2, 5, 6, 2, 4);
  const n = s.batch * s.seq;
  const qkv = randVec(r, n * s.sq, 1.5);
  const kOff = s.heads * s.headDim;
  const vOff = kOff + s.kvHeads * s.headDim;
  const view = () => ({ q: qkv, k: qkv.subarray(kOff), v: qkv.subarray(vOff) });
  const R = randVec(r, n * s.heads * s.headDim);
  const { q, k, v } = view();
  const back = attentionBackwardRef(R, q, k.slice(), v.slice(), s);
  // one combined gradient in the fused layout
  const grad = new Float64Array(qkv.length);
  for (let i = 0; i < qkv.length; i++) {
    grad[i] += back.dq[i] ?? 0;
    if (i >= kOff) grad[i] += back.dk[i - kOff] ?? 0;
    if (i >= vOff) grad[i] += back.dv[i - vOff] ?? 0;
  }
  const loss = () => {
    const w = view();
    return dot(attentionRef(w.q, w.k, w.v, s).out, R);
  };
  assert.ok(fdCheck(qkv, loss, grad, r, 60) < 1e-6);
});

test('attention native forward/backward match the reference: seq 1 and 13, groups 1/2/3/6, fused strides', () => {
  const r = rng(61);
  for (const [seq, kvHeads] of [[13, 6], [13, 3], [13, 2], [13, 1], [1, 2], [70, 2]] as const) {
    const s = fused(2, seq, 6, kvHeads, 10);
    const n = s.batch * s.seq;
    const od = s.heads * s.headDim;
    const kOff = s.heads * s.headDim;
    const vOff = kOff + s.kvHeads * s.headDim;
    const qkv = randVec(r, n * s.sq, 2);
    const bqkv = f32(qkv);
    const out = zeros(n * od);
    const lse = zeros(s.batch * s.heads * s.seq);
    const strides = { q: s.sq, k: s.sk, v: s.sv };
    be.attentionForward(at(out), at(lse), at(bqkv, 0), at(bqkv, kOff), at(bqkv, vOff), strides, s);
    const ref = attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s);
    const tag = `seq ${seq} kvHeads ${kvHeads}`;
    assert.ok(relErr(read(out), ref.out) < 1e-5, `${tag} out`);
    assert.ok(relErr(read(lse), ref.lse) < 1e-5, `${tag} lse`);

    const R = randVec(r, n * od);
    const bR = f32(R);
    const sentinel = randVec(r, n * s.sq);
    const dqkv = f32(sentinel);
    be.attentionBackward(at(dqkv, 0), at(dqkv, kOff), at(dqkv, vOff), at(bR), at(bqkv, 0), at(bqkv, kOff), at(bqkv, vOff), at(out), at(lse), strides, s);
    const back = attentionBackwardRef(R, qkv, qkv.subarray(kOff), qkv.subarray(vOff), s);
    const got = read(dqkv);
    const g: Record<'q' | 'k' | 'v', number[][]> = { q: [[], []], k: [[], []], v: [[], []] };
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < s.sq; j++) {
        const i = t * s.sq + j;
        if (j < kOff) g.q[0].push(got[i]), g.q[1].push(back.dq[i]);
        else if (j < vOff) g.k[0].push(got[i]), g.k[1].push(back.dk[i - kOff]);
        else if (j < vOff + s.kvHeads * s.headDim) g.v[0].push(got[i]), g.v[1].push(back.dv[i - vOff]);
        else assert.equal(got[i], sentinel[i], 'padding columns untouched');
      }
    }
    // With one key dq and dk are exactly zero in exact arithmetic (P = 1, so dS = dP - D = 0): compare them on
    // the scale of dv instead of their own (rounding) scale.
    const dqFloor = seq === 1 ? Math.max(...g.v[1].map(Math.abs)) : 1e-30;
    assert.ok(relErr(g.q[0], g.q[1], dqFloor) < 1e-5, `${tag} dq`);
    assert.ok(relErr(g.k[0], g.k[1], dqFloor) < 1e-5, `${tag} dk`);
    assert.ok(relErr(g.v[0], g.v[1]) < 1e-5, `${tag} dv`);
    freeAll(bqkv, out, lse, bR, dqkv);
  }
});

test('attention on separate packed q, k, v buffers (MQA), with fewer kv groups than threads and more', () => {
  for (const threads of [1, 2, 5]) checkMqa(threads);
});

function checkMqa(threads: number): void {
  const saved = be.threads();
  be.setThreads(threads);
  const r = rng(62);
  const s: AttnShape = { batch: 3, seq: 9, heads: 4, kvHeads: 1, headDim: 6, scale: 0.3, sq: 24, sk: 6, sv: 6 };
  const n = s.batch * s.seq;
  const q = randVec(r, n * s.sq);
  const k = randVec(r, n * s.sk);
  const v = randVec(r, n * s.sv);
  const [bq, bk, bv] = [f32(q), f32(k), f32(v)];
  const out = zeros(n * 24);
  const lse = zeros(s.batch * s.heads * s.seq);
  const strides = { q: 24, k: 6, v: 6 };
  be.attentionForward(at(out), at(lse), at(bq), at(bk), at(bv), strides, s);
  assert.ok(relErr(read(out), attentionRef(q, k, v, s).out) < 1e-5);
  const R = randVec(r, n * 24);
  const bR = f32(R);
  const [dq, dk, dv] = [zeros(n * 24), zeros(n * 6), zeros(n * 6)];
  be.attentionBackward(at(dq), at(dk), at(dv), at(bR), at(bq), at(bk), at(bv), at(out), at(lse), strides, s);
  const back = attentionBackwardRef(R, q, k, v, s);
  assert.ok(relErr(read(dq), back.dq) < 1e-5);
  assert.ok(relErr(read(dk), back.dk) < 1e-5);
  assert.ok(relErr(read(dv), back.dv) < 1e-5);
  freeAll(bq, bk, bv, out, lse, bR, dq, dk, dv);
  be.setThreads(saved);
}

test('attention rejects heads not divisible by kvHeads and short buffers', () => {
  const b = zeros(100);
  const s = { batch: 1, seq: 2, heads: 3, kvHeads: 2, headDim: 2, scale: 1 };
  assert.throws(() => be.attentionForward(at(b), at(b), at(b), at(b), at(b), { q: 6, k: 4, v: 4 }, s), /multiple of kvHeads/);
  const s2 = { batch: 2, seq: 20, heads: 2, kvHeads: 2, headDim: 2, scale: 1 };
  assert.throws(() => be.attentionForward(at(b), at(b), at(b), at(b), at(b), { q: 4, k: 4, v: 4 }, s2), /needs elements/);
  freeAll(b);
});

/** Random documents in each row of seq tokens: cumulative sequence lengths over the flattened tokens. */
function randomDocuments(r: () => number, batch: number, seq: number): number[] {
  const cu = [0];
  for (let b = 0; b < batch; b++) {
    let t = 0;
    while (t < seq) {
      t = Math.min(seq, t + 1 + Math.floor(r() * seq * 0.4));
      cu.push(b * seq + t);
    }
  }
  return cu;
}

test('document-masked attention reference backward matches finite differences (float64)', () => {
  const r = rng(63);
  const base = fused(2, 9, 4, 2, 4);
  const s: AttnShape = { ...base, cuSeqlens: [0, 3, 4, 9, 11, 18] };
  const n = s.batch * s.seq;
  const qkv = randVec(r, n * s.sq, 1.5);
  const kOff = s.heads * s.headDim;
  const vOff = kOff + s.kvHeads * s.headDim;
  const R = randVec(r, n * s.heads * s.headDim);
  const back = attentionBackwardRef(R, qkv, qkv.subarray(kOff), qkv.subarray(vOff), s);
  const grad = new Float64Array(qkv.length);
  for (let i = 0; i < qkv.length; i++) {
    grad[i] += back.dq[i] ?? 0;
    if (i >= kOff) grad[i] += back.dk[i - kOff] ?? 0;
    if (i >= vOff) grad[i] += back.dv[i - vOff] ?? 0;
  }
  const loss = () => dot(attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s).out, R);
  assert.ok(fdCheck(qkv, loss, grad, r, 80) < 1e-6);
  // The mask is real: a query's output does not move when a key of another document changes.
  const before = attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s).out;
  qkv[2 * s.sq + kOff] += 1; // a key of token 2 (document 0)
  const after = attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s).out;
  const od = s.heads * s.headDim;
  for (let t = 3; t < n; t++) for (let c = 0; c < od; c++) assert.equal(after[t * od + c], before[t * od + c]);
});

test('document-masked attention: native forward/backward match the reference (GQA, MQA, split heads, long docs)', () => {
  const r = rng(64);
  const saved = be.threads();
  for (const [batch, seq, kvHeads, threads] of [[2, 13, 2, 2], [3, 70, 1, 2], [1, 150, 3, 4], [2, 9, 6, 1]] as const) {
    be.setThreads(threads);
    const cu = randomDocuments(r, batch, seq);
    const s: AttnShape = { ...fused(batch, seq, 6, kvHeads, 8), cuSeqlens: cu };
    const n = s.batch * s.seq;
    const od = s.heads * s.headDim;
    const kOff = s.heads * s.headDim;
    const vOff = kOff + s.kvHeads * s.headDim;
    const qkv = randVec(r, n * s.sq, 2);
    const bqkv = f32(qkv);
    const bcu = be.alloc('i32', cu.length);
    be.upload(at(bcu), Int32Array.from(cu));
    const docs = { cuSeqlens: at(bcu), segments: cu.length - 1 };
    const out = zeros(n * od);
    const lse = zeros(s.batch * s.heads * s.seq);
    const strides = { q: s.sq, k: s.sk, v: s.sv };
    be.attentionForward(at(out), at(lse), at(bqkv, 0), at(bqkv, kOff), at(bqkv, vOff), strides, s, docs);
    const ref = attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s);
    const tag = `batch ${batch} seq ${seq} kvHeads ${kvHeads} threads ${threads}, ${cu.length - 1} documents`;
    assert.ok(relErr(read(out), ref.out) < 1e-5, `${tag} out`);
    assert.ok(relErr(read(lse), ref.lse) < 1e-5, `${tag} lse`);
    // Without the bounds the result is plain causal attention, which differs.
    assert.ok(relErr(read(out), attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), { ...s, cuSeqlens: undefined }).out) > 1e-3, `${tag}: masking changes the output`);
    const R = randVec(r, n * od);
    const bR = f32(R);
    const dqkv = f32(randVec(r, n * s.sq));
    be.attentionBackward(at(dqkv, 0), at(dqkv, kOff), at(dqkv, vOff), at(bR), at(bqkv, 0), at(bqkv, kOff), at(bqkv, vOff), at(out), at(lse), strides, s, docs);
    const back = attentionBackwardRef(R, qkv, qkv.subarray(kOff), qkv.subarray(vOff), s);
    const got = read(dqkv);
    const cols = (lo: number, hi: number, ref: ArrayLike<number>, shift: number) => {
      const a: number[] = [], b: number[] = [];
      for (let t = 0; t < n; t++) for (let j = lo; j < hi; j++) a.push(got[t * s.sq + j]!), b.push(ref[t * s.sq + j - shift]!);
      return [a, b] as const;
    };
    // A one-token document has exactly zero dq/dk (one key: P = 1): compare on dv's scale.
    const floor = Math.max(...Array.from(back.dv).map(Math.abs)) * 1e-3;
    const [gq, rq] = cols(0, kOff, back.dq, 0);
    const [gk, rk] = cols(kOff, vOff, back.dk, kOff);
    const [gv, rv] = cols(vOff, vOff + s.kvHeads * s.headDim, back.dv, vOff);
    assert.ok(relErr(gq, rq, floor) < 1e-5, `${tag} dq`);
    assert.ok(relErr(gk, rk, floor) < 1e-5, `${tag} dk`);
    assert.ok(relErr(gv, rv) < 1e-5, `${tag} dv`);
    freeAll(bqkv, bcu, out, lse, bR, dqkv);
  }
  be.setThreads(saved);
});

test('document bounds must cover the batch, increase, and start every row', () => {
  const s = { batch: 2, seq: 4, heads: 2, kvHeads: 2, headDim: 2, scale: 1 };
  const b = zeros(200);
  const cu = be.alloc('i32', 8);
  const run = (bounds: number[]) => {
    be.upload(at(cu), Int32Array.from(bounds));
    be.attentionForward(at(b), at(b), at(b), at(b), at(b), { q: 4, k: 4, v: 4 }, s, { cuSeqlens: at(cu), segments: bounds.length - 1 });
  };
  assert.throws(() => run([0, 3, 6, 8]), /document 1 crosses the start of row 1/);
  assert.throws(() => run([0, 2, 2, 4, 8]), /strictly increasing/);
  assert.throws(() => run([0, 4, 7]), /end at batch\*seq = 8/);
  run([0, 1, 4, 8]);
  freeAll(b, cu);
});
