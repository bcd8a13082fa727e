#!/usr/bin/env node
// Times the CPU engine's heavy kernels (best of 3 after a warm-up) and prints one line per kernel.
// Usage: npm run build && node scripts/bench-kernels.mjs [--threads N] [--only name,name]
// Kernels: sgemm, head (lm_head + cross-entropy fwd+bwd, V=151936), attention, adamw, embedding, sumsq.
import { CpuBackend } from '../dist/src/engine/cpu.js';
import { at } from '../dist/src/engine/backend.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const be = new CpuBackend();
if (opt('--threads')) be.setThreads(Number(opt('--threads')));
const only = opt('--only', '').split(',').filter(Boolean);
const want = (n) => only.length === 0 || only.includes(n);
console.log(be.describe());

function randBuf(n, scale = 1) {
  const b = be.alloc('f32', n);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  be.upload(at(b), a);
  return b;
}
// Best of `reps` runs after one warm-up: the minimum is the least disturbed by other load on the machine.
function time(fn, reps = 3) {
  fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}
const report = (name, ms, extra = '') => console.log(`${name.padEnd(44)} ${ms.toFixed(2).padStart(9)} ms  ${extra}`);

if (want('sgemm')) {
  const n = 1024;
  const [a, b, c] = [randBuf(n * n), randBuf(n * n), be.alloc('f32', n * n)];
  const ms = time(() => be.matmul(at(c), at(a), at(b), n, n, n), 5);
  report('sgemm 1024x1024x1024', ms, `${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s`);
  [a, b, c].forEach((x) => be.free(x));
}

if (want('head')) {
  const [N, d, V] = [1024, 256, 151936];
  const h = randBuf(N * d);
  const w = randBuf(V * d, 0.05);
  const t = be.alloc('i32', N);
  be.upload(at(t), Int32Array.from({ length: N }, () => Math.floor(Math.random() * V)));
  const [dh, dw, loss] = [be.alloc('f32', N * d), be.alloc('f32', V * d), be.alloc('f64', 1)];
  const run = (grads) => () =>
    be.headCrossEntropy({
      lossOut: at(loss), h: at(h), w: at(w), targets: at(t), n: N, d, vocab: V, gradScale: 1 / N,
      dh: grads ? at(dh) : null, dw: grads ? at(dw) : null, logitsOut: null,
    });
  const flops = 2 * N * d * V;
  const fwd = time(run(false));
  report(`headCE fwd N=${N} d=${d} V=${V}`, fwd, `${(flops / fwd / 1e6).toFixed(1)} GFLOP/s`);
  const fb = time(run(true));
  report(`headCE fwd+bwd N=${N} d=${d} V=${V}`, fb, `${((3 * flops) / fb / 1e6).toFixed(1)} GFLOP/s`);
  if (want('adamw')) {
    const [m, v] = [be.alloc('f32', V * d), be.alloc('f32', V * d)];
    const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, gradScale: 1 };
    const ms = time(() => be.adamw(at(w), at(dw), at(m), at(v), V * d, hp), 2);
    report(`adamw ${V}x${d} params`, ms, `${((V * d * 4 * 7) / ms / 1e6).toFixed(1)} GB/s`);
    const sq = time(() => be.sumSquares(at(loss), at(dw), V * d), 2);
    report(`sumSquares ${V}x${d}`, sq, `${((V * d * 4) / sq / 1e6).toFixed(1)} GB/s`);
    const ids = be.alloc('i32', N);
    be.upload(at(ids), Int32Array.from({ length: N }, () => Math.floor(Math.random() * 5000)));
    const eb = time(() => be.embeddingBackward(at(dw), at(ids), at(dh), N, d), 3);
    report(`embeddingBackward N=${N} d=${d}`, eb);
    [m, v, ids].forEach((x) => be.free(x));
  }
  [h, w, t, dh, dw, loss].forEach((x) => be.free(x));
}

if (want('attention')) {
  const [B, T, H, KV, hd] = [4, 256, 8, 2, 64];
  const stride = (H + 2 * KV) * hd;
  const qkv = randBuf(B * T * stride);
  const dqkv = be.alloc('f32', B * T * stride);
  const [out, dout, lse] = [be.alloc('f32', B * T * H * hd), randBuf(B * T * H * hd), be.alloc('f32', B * H * T)];
  const s = { batch: B, seq: T, heads: H, kvHeads: KV, headDim: hd, scale: 1 / Math.sqrt(hd) };
  const st = { q: stride, k: stride, v: stride };
  const [q, k, v] = [at(qkv, 0), at(qkv, H * hd), at(qkv, (H + KV) * hd)];
  const f = time(() => be.attentionForward(at(out), at(lse), q, k, v, st, s), 3);
  const b = time(() => be.attentionBackward(at(dqkv, 0), at(dqkv, H * hd), at(dqkv, (H + KV) * hd), at(dout), q, k, v, at(out), at(lse), st, s), 3);
  const flops = 4 * B * H * T * T * hd * 0.5; // causal half of QK^T and PV
  report(`attention fwd B=${B} T=${T} H=${H} KV=${KV} hd=${hd}`, f, `${(flops / f / 1e6).toFixed(1)} GFLOP/s (causal)`);
  report(`attention bwd`, b, `${((2.5 * flops) / b / 1e6).toFixed(1)} GFLOP/s (causal)`);
  [qkv, dqkv, out, dout, lse].forEach((x) => be.free(x));
}
