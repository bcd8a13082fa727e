// Argument decoding and checks for the non-GEMM ops (the same positions, checks and messages as the CPU
// engine's files), each followed by the kernel launch on the engine's stream. Token ids and targets live on
// the device, so their range is checked by the kernels, which raise the device error flag; the error is
// reported at the next download/synchronize (the decoder also checks them on the host before upload).
#include <algorithm>
#include <cmath>

#include "common.h"

namespace lmf {

namespace {

// ---- embeddings ----

// embeddingForward(out, ids, table, n, d, accumulate)
void opEmbeddingForward(const Args& a) {
  int64_t n = a.i64(6, "n"), d = a.i64(7, "d");
  bool acc = a.flag(8);
  if (d == 0) a.fail("d must be positive");
  float* out = a.f32(0, n * d, "out");
  const int32_t* ids = a.i32(2, n, "ids");
  int64_t vocab = a.avail(4, "table") / d;
  const float* table = a.f32(4, vocab * d, "table");
  cuda::embeddingForward(out, ids, table, n, d, vocab, acc, deviceErrorFlag(), stream());
}

// embeddingBackward(dtable, ids, dout, n, d)
void opEmbeddingBackward(const Args& a) {
  int64_t n = a.i64(6, "n"), d = a.i64(7, "d");
  if (d == 0) a.fail("d must be positive");
  const int32_t* ids = a.i32(2, n, "ids");
  const float* dout = a.f32(4, n * d, "dout");
  int64_t vocab = a.avail(0, "dtable") / d;
  float* dt = a.f32(0, vocab * d, "dtable");
  if (n == 0) return;
  size_t bytes = cuda::embeddingBackwardScratch(n);
  void* s = scratch(kScratchSort, bytes);
  cuda::embeddingBackward(dt, ids, dout, n, d, vocab, s, bytes, deviceErrorFlag(), stream());
}

// ---- normalisation ----

// rmsnormForward(out, rstd, x, w, rows, d, eps)
void opRmsnormForward(const Args& a) {
  int64_t rows = a.i64(8, "rows"), d = a.i64(9, "d");
  double eps = a.num(10);
  float* out = a.f32(0, rows * d, "out");
  float* rstd = a.f32(2, rows, "rstd");
  const float* x = a.f32(4, rows * d, "x");
  const float* w = a.f32(6, d, "w");
  if (d == 0) a.fail("d must be positive");
  cuda::rmsnormForward(out, rstd, x, w, rows, d, static_cast<float>(eps), stream());
}

double* partials(int64_t count) { return static_cast<double*>(scratch(kScratchPartials, size_t(std::max<int64_t>(count, 1)) * 8)); }

// rmsnormBackward(dx, dw, dout, x, w, rstd, rows, d, accumulateDx)
void opRmsnormBackward(const Args& a) {
  int64_t rows = a.i64(12, "rows"), d = a.i64(13, "d");
  bool accDx = a.flag(14);
  float* dx = a.f32(0, rows * d, "dx");
  float* dw = a.f32(2, d, "dw");
  const float* dout = a.f32(4, rows * d, "dout");
  const float* x = a.f32(6, rows * d, "x");
  const float* w = a.f32(8, d, "w");
  const float* rstd = a.f32(10, rows, "rstd");
  if (rows == 0 || d == 0) return;
  cuda::rmsnormBackward(dx, dw, dout, x, w, rstd, rows, d, accDx, partials(cuda::normPartials(rows, d, 1)), stream());
}

// layernormForward(out, mean, rstd, x, w, b, rows, d, eps)
void opLayernormForward(const Args& a) {
  int64_t rows = a.i64(12, "rows"), d = a.i64(13, "d");
  double eps = a.num(14);
  if (d == 0) a.fail("d must be positive");
  float* out = a.f32(0, rows * d, "out");
  float* mean = a.f32(2, rows, "mean");
  float* rstd = a.f32(4, rows, "rstd");
  const float* x = a.f32(6, rows * d, "x");
  const float* w = a.f32(8, d, "w");
  const float* bias = a.f32(10, d, "b");
  cuda::layernormForward(out, mean, rstd, x, w, bias, rows, d, static_cast<float>(eps), stream());
}

// layernormBackward(dx, dw, db, dout, x, w, mean, rstd, rows, d, accumulateDx)
void opLayernormBackward(const Args& a) {
  int64_t rows = a.i64(16, "rows"), d = a.i64(17, "d");
  bool accDx = a.flag(18);
  if (d == 0) a.fail("d must be positive");
  float* dx = a.f32(0, rows * d, "dx");
  float* dw = a.f32(2, d, "dw");
  float* db = a.f32(4, d, "db");
  const float* dout = a.f32(6, rows * d, "dout");
  const float* x = a.f32(8, rows * d, "x");
  const float* w = a.f32(10, d, "w");
  const float* mean = a.f32(12, rows, "mean");
  const float* rstd = a.f32(14, rows, "rstd");
  if (rows == 0) return;
  cuda::layernormBackward(dx, dw, db, dout, x, w, mean, rstd, rows, d, accDx, partials(cuda::normPartials(rows, d, 2)),
                          stream());
}

// ---- QK-norm + RoPE ----

cuda::QkPrepShape readPrepShape(const Args& a, size_t first, int64_t stride) {
  cuda::QkPrepShape s{a.i64(first, "n"), a.i64(first + 1, "seq"), a.i64(first + 2, "heads"),
                      a.i64(first + 3, "kvHeads"), a.i64(first + 4, "headDim"), stride};
  if (s.seq == 0) a.fail("seq must be positive");
  if (s.headDim == 0) a.fail("headDim must be positive");
  const int64_t cols = (s.heads + s.kvHeads) * s.headDim;
  if (s.stride < cols)
    a.fail("qkvStride " + std::to_string(s.stride) + " is smaller than the q and k columns (" + std::to_string(cols) + ")");
  return s;
}

struct Rope {
  const float* cos = nullptr;
  const float* sin = nullptr;
};

Rope readRope(const Args& a, size_t cosIdx, size_t sinIdx, const cuda::QkPrepShape& s) {
  if (a.isNull(cosIdx) != a.isNull(sinIdx)) a.fail("cos and sin must be given together (or both null)");
  if (a.isNull(cosIdx)) return {};
  if (s.headDim % 2 != 0) a.fail("RoPE needs an even headDim, got " + std::to_string(s.headDim));
  int64_t len = s.seq * (s.headDim / 2);
  return {a.f32(cosIdx, len, "cos"), a.f32(sinIdx, len, "sin")};
}

// qkPrepForward(out, rstd, qkv, qkvStride, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, eps)
void opQkPrepForward(const Args& a) {
  cuda::QkPrepShape s = readPrepShape(a, 15, a.i64(6, "qkvStride"));
  double eps = a.num(20);
  const int64_t nh = s.heads + s.kvHeads, hd = s.headDim;
  float* out = a.f32(0, s.n * nh * hd, "out");
  const float* qkv = a.f32(4, span2d(s.n, nh * hd, s.stride), "qkv");
  const float* qw = a.f32OrNull(7, hd, "qNormW");
  const float* kw = a.f32OrNull(9, hd, "kNormW");
  float* rstd = (qw || kw) ? a.f32(2, s.n * nh, "rstd") : nullptr;
  Rope rope = readRope(a, 11, 13, s);
  cuda::qkPrepForward(out, rstd, qkv, qw, kw, rope.cos, rope.sin, s, static_cast<float>(eps), stream());
}

// qkPrepBackward(dqkv, qkvStride, dqNormW, dkNormW, dout, qkv, rstd, qNormW, kNormW, cos, sin,
//                n, seq, heads, kvHeads, headDim)
void opQkPrepBackward(const Args& a) {
  cuda::QkPrepShape s = readPrepShape(a, 21, a.i64(2, "qkvStride"));
  const int64_t nh = s.heads + s.kvHeads, hd = s.headDim;
  float* dqkv = a.f32(0, span2d(s.n, nh * hd, s.stride), "dqkv");
  const float* dout = a.f32(7, s.n * nh * hd, "dout");
  const float* qkv = a.f32(9, span2d(s.n, nh * hd, s.stride), "qkv");
  const float* qw = a.f32OrNull(13, hd, "qNormW");
  const float* kw = a.f32OrNull(15, hd, "kNormW");
  float* dqw = qw ? a.f32(3, hd, "dqNormW") : nullptr;
  float* dkw = kw ? a.f32(5, hd, "dkNormW") : nullptr;
  const float* rstd = (qw || kw) ? a.f32(11, s.n * nh, "rstd") : nullptr;
  Rope rope = readRope(a, 17, 19, s);
  double* part = (qw || kw) ? partials(cuda::qkPrepPartials(s)) : nullptr;
  cuda::qkPrepBackward(dqkv, dqw, dkw, dout, qkv, rstd, qw, kw, rope.cos, rope.sin, s, part, stream());
}

// ---- attention ----

cuda::AttnShape readAttnShape(const Args& a, size_t first) {
  cuda::AttnShape s{};
  s.sq = a.i64(first, "q stride");
  s.sk = a.i64(first + 1, "k stride");
  s.sv = a.i64(first + 2, "v stride");
  s.batch = a.i64(first + 3, "batch");
  s.tq = s.tk = a.i64(first + 4, "seq");
  s.qOffset = 0;
  s.heads = a.i64(first + 5, "heads");
  s.kvHeads = a.i64(first + 6, "kvHeads");
  s.headDim = a.i64(first + 7, "headDim");
  s.scale = static_cast<float>(a.num(first + 8));
  if (s.heads == 0 || s.kvHeads == 0 || s.headDim == 0) a.fail("heads, kvHeads and headDim must be positive");
  if (s.heads % s.kvHeads != 0)
    a.fail("heads (" + std::to_string(s.heads) + ") must be a multiple of kvHeads (" + std::to_string(s.kvHeads) + ")");
  if (s.sq < s.heads * s.headDim) a.fail("the q stride is smaller than heads*headDim");
  if (s.sk < s.kvHeads * s.headDim) a.fail("the k stride is smaller than kvHeads*headDim");
  if (s.sv < s.kvHeads * s.headDim) a.fail("the v stride is smaller than kvHeads*headDim");
  if (!cuda::attentionSupported(s.headDim))
    a.fail("headDim " + std::to_string(s.headDim) + " is above 128, which the CUDA attention kernel does not support");
  if (s.batch * s.heads > 65535)
    a.fail("batch x heads = " + std::to_string(s.batch * s.heads) + " exceeds 65535 (one grid dimension): split the batch");
  return s;
}

// attentionForward(out, lse, q, k, v, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale)
void opAttentionForward(const Args& a) {
  cuda::AttnShape s = readAttnShape(a, 10);
  const int64_t n = s.batch * s.tq, hd = s.headDim;
  float* out = a.f32(0, n * s.heads * hd, "out");
  float* lse = a.f32(2, s.batch * s.heads * s.tq, "lse");
  const float* q = a.f32(4, span2d(n, s.heads * hd, s.sq), "q");
  const float* k = a.f32(6, span2d(n, s.kvHeads * hd, s.sk), "k");
  const float* v = a.f32(8, span2d(n, s.kvHeads * hd, s.sv), "v");
  cuda::attentionForward(out, lse, q, k, v, s, stream());
}

// attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale)
void opAttentionBackward(const Args& a) {
  cuda::AttnShape s = readAttnShape(a, 18);
  const int64_t n = s.batch * s.tq, hd = s.headDim, od = s.heads * hd;
  float* dq = a.f32(0, span2d(n, s.heads * hd, s.sq), "dq");
  float* dk = a.f32(2, span2d(n, s.kvHeads * hd, s.sk), "dk");
  float* dv = a.f32(4, span2d(n, s.kvHeads * hd, s.sv), "dv");
  const float* dout = a.f32(6, n * od, "dout");
  const float* q = a.f32(8, span2d(n, s.heads * hd, s.sq), "q");
  const float* k = a.f32(10, span2d(n, s.kvHeads * hd, s.sk), "k");
  const float* v = a.f32(12, span2d(n, s.kvHeads * hd, s.sv), "v");
  const float* out = a.f32(14, n * od, "out");
  const float* lse = a.f32(16, s.batch * s.heads * s.tq, "lse");
  if (n == 0) return;
  auto* rowDots = static_cast<float*>(scratch(kScratchAttn, size_t(s.batch * s.heads * s.tq) * 4));
  cuda::attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, s, rowDots, stream());
}

// attentionDecode(out, q, k, v, sq, sk, sv, n, past, heads, kvHeads, headDim, scale): the forward kernel with
// queries at positions past.. over past+n cached keys, batch 1, no log-sum-exp.
void opAttentionDecode(const Args& a) {
  cuda::AttnShape s{};
  s.sq = a.i64(8, "q stride");
  s.sk = a.i64(9, "k stride");
  s.sv = a.i64(10, "v stride");
  const int64_t n = a.i64(11, "n"), past = a.i64(12, "past");
  s.heads = a.i64(13, "heads");
  s.kvHeads = a.i64(14, "kvHeads");
  s.headDim = a.i64(15, "headDim");
  s.scale = static_cast<float>(a.num(16));
  if (s.kvHeads == 0 || s.heads % s.kvHeads != 0) a.fail("heads must be a multiple of kvHeads");
  if (s.sq < s.heads * s.headDim || s.sk < s.kvHeads * s.headDim || s.sv < s.kvHeads * s.headDim)
    a.fail("a row stride is smaller than the heads it holds");
  if (!cuda::attentionSupported(s.headDim))
    a.fail("headDim " + std::to_string(s.headDim) + " is above 128, which the CUDA attention kernel does not support");
  s.batch = 1;
  s.tq = n;
  s.tk = past + n;
  s.qOffset = past;
  float* out = a.f32(0, n * s.heads * s.headDim, "out");
  const float* q = a.f32(2, span2d(n, s.heads * s.headDim, s.sq), "q");
  const float* k = a.f32(4, span2d(s.tk, s.kvHeads * s.headDim, s.sk), "k cache");
  const float* v = a.f32(6, span2d(s.tk, s.kvHeads * s.headDim, s.sv), "v cache");
  if (n == 0) return;
  cuda::attentionForward(out, nullptr, q, k, v, s, stream());
}

// ---- activations ----

// swigluForward(out, gu, rows, f)
void opSwigluForward(const Args& a) {
  int64_t rows = a.i64(4, "rows"), f = a.i64(5, "f");
  float* out = a.f32(0, rows * f, "out");
  const float* gu = a.f32(2, rows * 2 * f, "gu");
  cuda::swigluForward(out, gu, rows, f, stream());
}

// swigluBackward(dgu, dout, gu, rows, f)
void opSwigluBackward(const Args& a) {
  int64_t rows = a.i64(6, "rows"), f = a.i64(7, "f");
  float* dgu = a.f32(0, rows * 2 * f, "dgu");
  const float* dout = a.f32(2, rows * f, "dout");
  const float* gu = a.f32(4, rows * 2 * f, "gu");
  cuda::swigluBackward(dgu, dout, gu, rows, f, stream());
}

int kindArg(const Args& a, size_t i) {
  int64_t k = a.i64(i, "activation kind");
  if (k > 2) a.fail("unknown activation kind " + std::to_string(k));
  return static_cast<int>(k);
}

// activationForward(out, x, n, kind)
void opActivationForward(const Args& a) {
  int64_t n = a.i64(4, "n");
  int kind = kindArg(a, 5);
  float* out = a.f32(0, n, "out");
  const float* x = a.f32(2, n, "x");
  cuda::activationForward(out, x, n, kind, stream());
}

// activationBackward(dx, dout, x, n, kind)
void opActivationBackward(const Args& a) {
  int64_t n = a.i64(6, "n");
  int kind = kindArg(a, 7);
  float* dx = a.f32(0, n, "dx");
  const float* dout = a.f32(2, n, "dout");
  const float* x = a.f32(4, n, "x");
  cuda::activationBackward(dx, dout, x, n, kind, stream());
}

// ---- optimizer ----

// sumSquares(out f64, x, n): out[0] += sum x^2 (fixed order).
void opSumSquares(const Args& a) {
  const int64_t n = a.i64(4, "n");
  double* out = a.f64(0, 1, "out");
  const float* x = a.f32(2, n, "x");
  if (n == 0) return;
  cuda::sumSquares(out, x, n, partials(cuda::reducePartials(n)), stream());
}

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale)
void opAdamw(const Args& a) {
  const int64_t n = a.i64(8, "n");
  float* p = a.f32(0, n, "param");
  const float* g = a.f32(2, n, "grad");
  float* m = a.f32(4, n, "m");
  float* v = a.f32(6, n, "v");
  const double lr = a.num(9), b1 = a.num(10), b2 = a.num(11), eps = a.num(12), wd = a.num(13);
  const double step = a.num(14), gs = a.num(15);
  if (!(step >= 1) || step != std::floor(step)) a.fail("step must be a 1-based integer, got " + std::to_string(step));
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) a.fail("beta1 and beta2 must lie in [0, 1)");
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  cuda::AdamWArgs h{};
  h.decay = static_cast<float>(1 - lr * wd);
  h.beta2 = static_cast<float>(b2);
  h.oneMinusBeta1 = static_cast<float>(1 - b1);
  h.oneMinusBeta2 = static_cast<float>(1 - b2);
  h.eps = static_cast<float>(eps);
  h.gradScale = static_cast<float>(gs);
  h.stepSize = static_cast<float>(lr / bc1);
  h.bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  cuda::adamw(p, g, m, v, n, h, stream());
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "embeddingForward", opEmbeddingForward);
  registerOp(env, exports, "embeddingBackward", opEmbeddingBackward);
  registerOp(env, exports, "rmsnormForward", opRmsnormForward);
  registerOp(env, exports, "rmsnormBackward", opRmsnormBackward);
  registerOp(env, exports, "layernormForward", opLayernormForward);
  registerOp(env, exports, "layernormBackward", opLayernormBackward);
  registerOp(env, exports, "qkPrepForward", opQkPrepForward);
  registerOp(env, exports, "qkPrepBackward", opQkPrepBackward);
  registerOp(env, exports, "attentionForward", opAttentionForward);
  registerOp(env, exports, "attentionBackward", opAttentionBackward);
  registerOp(env, exports, "attentionDecode", opAttentionDecode);
  registerOp(env, exports, "swigluForward", opSwigluForward);
  registerOp(env, exports, "swigluBackward", opSwigluBackward);
  registerOp(env, exports, "activationForward", opActivationForward);
  registerOp(env, exports, "activationBackward", opActivationBackward);
  registerOp(env, exports, "sumSquares", opSumSquares);
  registerOp(env, exports, "adamw", opAdamw);
}

}  // namespace lmf
