// The one copy of every op's argument decoding (see op_args.h). The order of the reads is part of the contract:
// the first failing check names the error, so it is kept exactly as the ops had it.
#include "op_args.h"

#include <algorithm>
#include <cmath>

namespace lmf {

EmbeddingForwardArgs decodeEmbeddingForward(const Args& a) {
  EmbeddingForwardArgs r{};
  r.n = a.i64(6, "n");
  r.d = a.i64(7, "d");
  r.accumulate = a.flag(8);
  if (r.d == 0) a.fail("d must be positive");
  r.out = a.f32(0, r.n * r.d, "out");
  r.ids = a.i32(2, r.n, "ids");
  r.vocab = a.avail(4, "table") / r.d;
  r.table = a.f32(4, r.vocab * r.d, "table");
  return r;
}

EmbeddingBackwardArgs decodeEmbeddingBackward(const Args& a) {
  EmbeddingBackwardArgs r{};
  r.n = a.i64(6, "n");
  r.d = a.i64(7, "d");
  if (r.d == 0) a.fail("d must be positive");
  r.ids = a.i32(2, r.n, "ids");
  r.dout = a.f32(4, r.n * r.d, "dout");
  r.vocab = a.avail(0, "dtable") / r.d;
  r.dtable = a.f32(0, r.vocab * r.d, "dtable");
  return r;
}

RmsnormForwardArgs decodeRmsnormForward(const Args& a) {
  RmsnormForwardArgs r{};
  r.rows = a.i64(8, "rows");
  r.d = a.i64(9, "d");
  r.eps = a.num(10);
  r.out = a.f32(0, r.rows * r.d, "out");
  r.rstd = a.f32(2, r.rows, "rstd");
  r.x = a.f32(4, r.rows * r.d, "x");
  r.w = a.f32(6, r.d, "w");
  if (r.d == 0) a.fail("d must be positive");
  return r;
}

// d = 0 is accepted (neither engine rejected it): there is nothing to compute.
RmsnormBackwardArgs decodeRmsnormBackward(const Args& a) {
  RmsnormBackwardArgs r{};
  r.rows = a.i64(12, "rows");
  r.d = a.i64(13, "d");
  r.accumulateDx = a.flag(14);
  r.dx = a.f32(0, r.rows * r.d, "dx");
  r.dw = a.f32(2, r.d, "dw");
  r.dout = a.f32(4, r.rows * r.d, "dout");
  r.x = a.f32(6, r.rows * r.d, "x");
  r.w = a.f32(8, r.d, "w");
  r.rstd = a.f32(10, r.rows, "rstd");
  return r;
}

LayernormForwardArgs decodeLayernormForward(const Args& a) {
  LayernormForwardArgs r{};
  r.rows = a.i64(12, "rows");
  r.d = a.i64(13, "d");
  r.eps = a.num(14);
  if (r.d == 0) a.fail("d must be positive");
  r.out = a.f32(0, r.rows * r.d, "out");
  r.mean = a.f32(2, r.rows, "mean");
  r.rstd = a.f32(4, r.rows, "rstd");
  r.x = a.f32(6, r.rows * r.d, "x");
  r.w = a.f32(8, r.d, "w");
  r.b = a.f32(10, r.d, "b");
  return r;
}

LayernormBackwardArgs decodeLayernormBackward(const Args& a) {
  LayernormBackwardArgs r{};
  r.rows = a.i64(16, "rows");
  r.d = a.i64(17, "d");
  r.accumulateDx = a.flag(18);
  if (r.d == 0) a.fail("d must be positive");
  r.dx = a.f32(0, r.rows * r.d, "dx");
  r.dw = a.f32(2, r.d, "dw");
  r.db = a.f32(4, r.d, "db");
  r.dout = a.f32(6, r.rows * r.d, "dout");
  r.x = a.f32(8, r.rows * r.d, "x");
  r.w = a.f32(10, r.d, "w");
  r.mean = a.f32(12, r.rows, "mean");
  r.rstd = a.f32(14, r.rows, "rstd");
  return r;
}

namespace {

QkPrepShape readQkPrepShape(const Args& a, size_t first, int64_t stride) {
  QkPrepShape s{a.i64(first, "n"), a.i64(first + 1, "seq"), a.i64(first + 2, "heads"), a.i64(first + 3, "kvHeads"),
                a.i64(first + 4, "headDim"), stride};
  if (s.seq == 0) a.fail("seq must be positive");
  if (s.headDim == 0) a.fail("headDim must be positive");
  if (s.stride < s.nh() * s.headDim)
    a.fail("qkvStride " + std::to_string(s.stride) + " is smaller than the q and k columns (" +
           std::to_string(s.nh() * s.headDim) + ")");
  return s;
}

// The RoPE tables (cos, sin), both present or both null.
void readRope(const Args& a, size_t cosIdx, size_t sinIdx, const QkPrepShape& s, const float*& cos,
              const float*& sin) {
  if (a.isNull(cosIdx) != a.isNull(sinIdx)) a.fail("cos and sin must be given together (or both null)");
  cos = sin = nullptr;
  if (a.isNull(cosIdx)) return;
  if (s.headDim % 2 != 0) a.fail("RoPE needs an even headDim, got " + std::to_string(s.headDim));
  int64_t len = s.seq * (s.headDim / 2);
  cos = a.f32(cosIdx, len, "cos");
  sin = a.f32(sinIdx, len, "sin");
}

}  // namespace

QkPrepForwardArgs decodeQkPrepForward(const Args& a) {
  QkPrepForwardArgs r{};
  r.s = readQkPrepShape(a, 15, a.i64(6, "qkvStride"));
  r.eps = a.num(20);
  const int64_t nh = r.s.nh(), hd = r.s.headDim;
  r.out = a.f32(0, r.s.n * nh * hd, "out");
  r.qkv = a.f32(4, span2d(r.s.n, nh * hd, r.s.stride), "qkv");
  r.qNormW = a.f32OrNull(7, hd, "qNormW");
  r.kNormW = a.f32OrNull(9, hd, "kNormW");
  r.rstd = (r.qNormW || r.kNormW) ? a.f32(2, r.s.n * nh, "rstd") : nullptr;
  readRope(a, 11, 13, r.s, r.cos, r.sin);
  r.positions = a.isNull(21) ? nullptr : a.i32(21, r.s.n, "positions");
  return r;
}

QkPrepBackwardArgs decodeQkPrepBackward(const Args& a) {
  QkPrepBackwardArgs r{};
  r.s = readQkPrepShape(a, 21, a.i64(2, "qkvStride"));
  const int64_t nh = r.s.nh(), hd = r.s.headDim;
  r.dqkv = a.f32(0, span2d(r.s.n, nh * hd, r.s.stride), "dqkv");
  r.dout = a.f32(7, r.s.n * nh * hd, "dout");
  r.qkv = a.f32(9, span2d(r.s.n, nh * hd, r.s.stride), "qkv");
  r.qNormW = a.f32OrNull(13, hd, "qNormW");
  r.kNormW = a.f32OrNull(15, hd, "kNormW");
  r.dqNormW = r.qNormW ? a.f32(3, hd, "dqNormW") : nullptr;
  r.dkNormW = r.kNormW ? a.f32(5, hd, "dkNormW") : nullptr;
  r.rstd = (r.qNormW || r.kNormW) ? a.f32(11, r.s.n * nh, "rstd") : nullptr;
  readRope(a, 17, 19, r.s, r.cos, r.sin);
  r.positions = a.isNull(26) ? nullptr : a.i32(26, r.s.n, "positions");
  return r;
}

namespace {

AttentionShape readAttentionShape(const Args& a, size_t first) {
  AttentionShape s{a.i64(first, "q stride"), a.i64(first + 1, "k stride"), a.i64(first + 2, "v stride"),
                   a.i64(first + 3, "batch"), a.i64(first + 4, "seq"), a.i64(first + 5, "heads"),
                   a.i64(first + 6, "kvHeads"), a.i64(first + 7, "headDim"), static_cast<float>(a.num(first + 8))};
  if (s.heads == 0 || s.kvHeads == 0 || s.headDim == 0) a.fail("heads, kvHeads and headDim must be positive");
  if (s.heads % s.kvHeads != 0)
    a.fail("heads (" + std::to_string(s.heads) + ") must be a multiple of kvHeads (" + std::to_string(s.kvHeads) + ")");
  if (s.sq < s.heads * s.headDim) a.fail("the q stride is smaller than heads*headDim");
  if (s.sk < s.kvHeads * s.headDim) a.fail("the k stride is smaller than kvHeads*headDim");
  if (s.sv < s.kvHeads * s.headDim) a.fail("the v stride is smaller than kvHeads*headDim");
  return s;
}

// The optional document boundaries: cuSeqlens (handle at index i) with `segments` (at i + 2) documents.
void readSegments(const Args& a, size_t i, const AttentionShape& s, const int32_t*& cu, int64_t& segments) {
  cu = nullptr;
  segments = 0;
  if (a.isNull(i)) return;
  segments = a.i64(i + 2, "segments");
  if (segments < 1 && s.n() > 0) a.fail("segments must be at least 1 when cuSeqlens is given");
  if (segments > s.n()) a.fail("segments (" + std::to_string(segments) + ") exceeds batch*seq (" + std::to_string(s.n()) + ")");
  cu = a.i32(i, segments + 1, "cuSeqlens");
}

}  // namespace

AttentionForwardArgs decodeAttentionForward(const Args& a) {
  AttentionForwardArgs r{};
  r.s = readAttentionShape(a, 10);
  const AttentionShape& s = r.s;
  const int64_t n = s.n(), hd = s.headDim;
  r.out = a.f32(0, n * s.od(), "out");
  r.lse = a.f32(2, s.batch * s.heads * s.seq, "lse");
  r.q = a.f32(4, span2d(n, s.heads * hd, s.sq), "q");
  r.k = a.f32(6, span2d(n, s.kvHeads * hd, s.sk), "k");
  r.v = a.f32(8, span2d(n, s.kvHeads * hd, s.sv), "v");
  readSegments(a, 19, s, r.cuSeqlens, r.segments);
  return r;
}

AttentionBackwardArgs decodeAttentionBackward(const Args& a) {
  AttentionBackwardArgs r{};
  r.s = readAttentionShape(a, 18);
  const AttentionShape& s = r.s;
  const int64_t n = s.n(), hd = s.headDim, od = s.od();
  r.dq = a.f32(0, span2d(n, s.heads * hd, s.sq), "dq");
  r.dk = a.f32(2, span2d(n, s.kvHeads * hd, s.sk), "dk");
  r.dv = a.f32(4, span2d(n, s.kvHeads * hd, s.sv), "dv");
  r.dout = a.f32(6, n * od, "dout");
  r.q = a.f32(8, span2d(n, s.heads * hd, s.sq), "q");
  r.k = a.f32(10, span2d(n, s.kvHeads * hd, s.sk), "k");
  r.v = a.f32(12, span2d(n, s.kvHeads * hd, s.sv), "v");
  r.out = a.f32(14, n * od, "out");
  r.lse = a.f32(16, s.batch * s.heads * s.seq, "lse");
  readSegments(a, 27, s, r.cuSeqlens, r.segments);
  return r;
}

AttentionDecodeArgs decodeAttentionDecode(const Args& a) {
  AttentionDecodeArgs r{};
  r.sq = a.i64(8, "q stride");
  r.sk = a.i64(9, "k stride");
  r.sv = a.i64(10, "v stride");
  r.n = a.i64(11, "n");
  r.past = a.i64(12, "past");
  r.heads = a.i64(13, "heads");
  r.kvHeads = a.i64(14, "kvHeads");
  r.headDim = a.i64(15, "headDim");
  r.scale = static_cast<float>(a.num(16));
  const int64_t H = r.heads, K = r.kvHeads, hd = r.headDim;
  if (K == 0 || H % K != 0) a.fail("heads must be a multiple of kvHeads");
  if (r.sq < H * hd || r.sk < K * hd || r.sv < K * hd) a.fail("a row stride is smaller than the heads it holds");
  r.out = a.f32(0, r.n * H * hd, "out");
  r.q = a.f32(2, span2d(r.n, H * hd, r.sq), "q");
  r.k = a.f32(4, span2d(r.total(), K * hd, r.sk), "k cache");
  r.v = a.f32(6, span2d(r.total(), K * hd, r.sv), "v cache");
  return r;
}

SwigluForwardArgs decodeSwigluForward(const Args& a) {
  SwigluForwardArgs r{};
  r.rows = a.i64(4, "rows");
  r.f = a.i64(5, "f");
  r.out = a.f32(0, r.rows * r.f, "out");
  r.gu = a.f32(2, r.rows * 2 * r.f, "gu");
  return r;
}

SwigluBackwardArgs decodeSwigluBackward(const Args& a) {
  SwigluBackwardArgs r{};
  r.rows = a.i64(6, "rows");
  r.f = a.i64(7, "f");
  r.dgu = a.f32(0, r.rows * 2 * r.f, "dgu");
  r.dout = a.f32(2, r.rows * r.f, "dout");
  r.gu = a.f32(4, r.rows * 2 * r.f, "gu");
  return r;
}

namespace {

ActivationKind kindArg(const Args& a, size_t i) {
  int64_t k = a.i64(i, "activation kind");
  if (k > 2) a.fail("unknown activation kind " + std::to_string(k));
  return static_cast<ActivationKind>(k);
}

}  // namespace

ActivationForwardArgs decodeActivationForward(const Args& a) {
  ActivationForwardArgs r{};
  r.n = a.i64(4, "n");
  r.kind = kindArg(a, 5);
  r.out = a.f32(0, r.n, "out");
  r.x = a.f32(2, r.n, "x");
  return r;
}

ActivationBackwardArgs decodeActivationBackward(const Args& a) {
  ActivationBackwardArgs r{};
  r.n = a.i64(6, "n");
  r.kind = kindArg(a, 7);
  r.dx = a.f32(0, r.n, "dx");
  r.dout = a.f32(2, r.n, "dout");
  r.x = a.f32(4, r.n, "x");
  return r;
}

HeadCrossEntropyArgs decodeHeadCrossEntropy(const Args& a) {
  HeadCrossEntropyArgs r{};
  r.n = a.i64(8, "n");
  r.d = a.i64(9, "d");
  r.vocab = a.i64(10, "vocab");
  r.gradScale = static_cast<float>(a.num(11));
  if (r.vocab == 0 || r.d == 0) a.fail("vocab and d must be positive");
  r.lossOut = a.f64(0, 1, "lossOut");
  r.h = a.f32(2, r.n * r.d, "h");
  r.w = a.f32(4, r.vocab * r.d, "w");
  r.targets = a.i32(6, r.n, "targets");
  r.dh = a.f32OrNull(12, r.n * r.d, "dh");
  r.dw = a.f32OrNull(14, r.vocab * r.d, "dw");
  r.logitsOut = a.f32OrNull(16, r.n * r.vocab, "logitsOut");
  return r;
}

MatmulArgs decodeMatmul(const Args& a) {
  MatmulArgs r{};
  r.m = a.i64(6, "m");
  r.n = a.i64(7, "n");
  r.k = a.i64(8, "k");
  r.transA = a.flag(9);
  r.transB = a.flag(10);
  const int64_t aCols = r.transA ? r.m : r.k, aRows = r.transA ? r.k : r.m;
  const int64_t bCols = r.transB ? r.k : r.n, bRows = r.transB ? r.n : r.k;
  r.lda = a.i64(11, "lda");
  r.ldb = a.i64(12, "ldb");
  r.ldc = a.i64(13, "ldc");
  if (r.lda == 0) r.lda = std::max<int64_t>(aCols, 1);
  if (r.ldb == 0) r.ldb = std::max<int64_t>(bCols, 1);
  if (r.ldc == 0) r.ldc = std::max<int64_t>(r.n, 1);
  if (r.lda < aCols)
    a.fail("lda " + std::to_string(r.lda) + " is smaller than A's stored width " + std::to_string(aCols));
  if (r.ldb < bCols)
    a.fail("ldb " + std::to_string(r.ldb) + " is smaller than B's stored width " + std::to_string(bCols));
  if (r.ldc < r.n) a.fail("ldc " + std::to_string(r.ldc) + " is smaller than C's width n=" + std::to_string(r.n));
  r.accumulate = a.flag(14);
  r.C = a.f32(0, span2d(r.m, r.n, r.ldc), "C");
  r.A = a.f32(2, span2d(aRows, aCols, r.lda), "A");
  r.B = a.f32(4, span2d(bRows, bCols, r.ldb), "B");
  r.bias = a.f32OrNull(15, r.n, "bias");
  if (r.bias && r.accumulate) a.fail("bias can only be used with accumulate false (add it once, not per micro-step)");
  return r;
}

BiasGradArgs decodeBiasGrad(const Args& a) {
  BiasGradArgs r{};
  r.rows = a.i64(4, "rows");
  r.cols = a.i64(5, "cols");
  r.ldy = a.i64(6, "ldy");
  if (r.ldy == 0) r.ldy = r.cols;
  if (r.ldy < r.cols) a.fail("ldy is smaller than cols");
  r.db = a.f32(0, r.cols, "db");
  r.dy = a.f32(2, span2d(r.rows, r.cols, r.ldy), "dy");
  return r;
}

SumSquaresArgs decodeSumSquares(const Args& a) {
  SumSquaresArgs r{};
  r.n = a.i64(4, "n");
  r.out = a.f64(0, 1, "out");
  r.x = a.f32(2, r.n, "x");
  return r;
}

AdamwArgs decodeAdamw(const Args& a) {
  AdamwArgs r{};
  r.n = a.i64(8, "n");
  r.param = a.f32(0, r.n, "param");
  r.grad = a.f32(2, r.n, "grad");
  r.m = a.f32(4, r.n, "m");
  r.v = a.f32(6, r.n, "v");
  r.lr = a.num(9);
  r.beta1 = a.num(10);
  r.beta2 = a.num(11);
  r.eps = a.num(12);
  r.weightDecay = a.num(13);
  r.step = a.num(14);
  r.gradScale = a.num(15);
  const double step = r.step, b1 = r.beta1, b2 = r.beta2;
  if (!(step >= 1) || step != std::floor(step)) a.fail("step must be a 1-based integer, got " + std::to_string(step));
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) a.fail("beta1 and beta2 must lie in [0, 1)");
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  r.decay = static_cast<float>(1 - r.lr * r.weightDecay);
  r.stepSize = static_cast<float>(r.lr / bc1);
  r.bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  return r;
}

TransferArgs decodeTransfer(const Args& a) {
  double h = a.num(0);
  if (h < 0) a.fail("the buffer is required");
  const DType dtype = registryGet(static_cast<int64_t>(h), a.op(), "the buffer").dtype;
  TypedView tv = typedArg(a, 2, dtype);
  TransferArgs r{};
  r.buffer = a.raw(0, dtype, tv.length, "the buffer");
  r.host = tv.data;
  r.bytes = static_cast<size_t>(tv.length) * dtypeSize(dtype);
  return r;
}

FillArgs decodeFill(const Args& a) {
  FillArgs r{};
  double h = a.num(0);
  if (h < 0) a.fail("dst is required");
  r.dtype = registryGet(static_cast<int64_t>(h), a.op(), "dst").dtype;
  r.n = a.i64(2, "n");
  r.value = a.num(3);
  r.dst = a.raw(0, r.dtype, r.n, "dst");
  const double v = r.value;
  if (r.dtype == DType::I32 && (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0))
    a.fail("an i32 buffer can only hold 32-bit integers");
  return r;
}

CopyArgs decodeCopy(const Args& a) {
  CopyArgs r{};
  double h = a.num(0);
  if (h < 0) a.fail("dst is required");
  r.dtype = registryGet(static_cast<int64_t>(h), a.op(), "dst").dtype;
  r.n = a.i64(4, "n");
  r.dst = a.raw(0, r.dtype, r.n, "dst");
  r.src = a.raw(2, r.dtype, r.n, "src");
  return r;
}

AddArgs decodeAdd(const Args& a) {
  AddArgs r{};
  r.n = a.i64(6, "n");
  r.out = a.f32(0, r.n, "out");
  r.a = a.f32(2, r.n, "a");
  r.b = a.f32(4, r.n, "b");
  return r;
}

ScaleArgs decodeScale(const Args& a) {
  ScaleArgs r{};
  r.n = a.i64(2, "n");
  r.x = a.f32(0, r.n, "x");
  r.s = static_cast<float>(a.num(3));
  return r;
}

}  // namespace lmf
