// The matmul and biasGrad ops: argument checks identical to the CPU engine, then matmulF32 (bf16 or fp32).
// Bias: C's rows are set to the bias first and the GEMM accumulates onto them (beta = 1).
#include <algorithm>

#include "common.h"
#include "gemm.h"
#include "matmul.h"

namespace lmf {

void convertBf16(cuda::bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  cuda::toBf16(dst, src, rows, cols, ld, stream());
}

void matmulF32(const MatmulF32& p) {
  if (p.m == 0 || p.n == 0) return;
  const int64_t aRows = p.transA ? p.k : p.m, aCols = p.transA ? p.m : p.k;
  const int64_t bRows = p.transB ? p.n : p.k, bCols = p.transB ? p.k : p.n;
  if (precision() == Precision::BF16) {
    Gemm g;
    g.transA = p.transA;
    g.transB = p.transB;
    g.m = p.m;
    g.n = p.n;
    g.k = p.k;
    g.lda = std::max<int64_t>(aCols, 1);
    g.ldb = std::max<int64_t>(bCols, 1);
    g.c = p.c;
    g.ldc = p.ldc;
    g.beta = p.beta;
    g.bf16Inputs = true;
    if (gemmSupported(g)) {
      const cuda::bf16raw* a = p.aBf16;
      if (!a) {
        auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchA, size_t(aRows * aCols) * 2));
        convertBf16(t, p.a, aRows, aCols, p.lda);
        a = t;
      }
      const cuda::bf16raw* b = p.bBf16;
      if (!b) {
        auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchB, size_t(bRows * bCols) * 2));
        convertBf16(t, p.b, bRows, bCols, p.ldb);
        b = t;
      }
      g.a = a;
      g.b = b;
      gemm(g, stream());
      return;
    }
  }
  Gemm g;
  g.transA = p.transA;
  g.transB = p.transB;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.a = p.a;
  g.lda = p.lda;
  g.b = p.b;
  g.ldb = p.ldb;
  g.c = p.c;
  g.ldc = p.ldc;
  g.beta = p.beta;
  g.bf16Inputs = false;
  gemm(g, stream());
}

namespace {

// matmul(c, a, b, m, n, k, transA, transB, lda, ldb, ldc, accumulate, bias): ld 0 = packed width.
void opMatmul(const Args& a) {
  int64_t m = a.i64(6, "m"), n = a.i64(7, "n"), k = a.i64(8, "k");
  bool ta = a.flag(9), tb = a.flag(10);
  int64_t aCols = ta ? m : k, aRows = ta ? k : m;
  int64_t bCols = tb ? k : n, bRows = tb ? n : k;
  int64_t lda = a.i64(11, "lda"), ldb = a.i64(12, "ldb"), ldc = a.i64(13, "ldc");
  if (lda == 0) lda = std::max<int64_t>(aCols, 1);
  if (ldb == 0) ldb = std::max<int64_t>(bCols, 1);
  if (ldc == 0) ldc = std::max<int64_t>(n, 1);
  if (lda < aCols) a.fail("lda " + std::to_string(lda) + " is smaller than A's stored width " + std::to_string(aCols));
  if (ldb < bCols) a.fail("ldb " + std::to_string(ldb) + " is smaller than B's stored width " + std::to_string(bCols));
  if (ldc < n) a.fail("ldc " + std::to_string(ldc) + " is smaller than C's width n=" + std::to_string(n));
  bool acc = a.flag(14);
  float* C = a.f32(0, span2d(m, n, ldc), "C");
  const float* A = a.f32(2, span2d(aRows, aCols, lda), "A");
  const float* B = a.f32(4, span2d(bRows, bCols, ldb), "B");
  const float* bias = a.f32OrNull(15, n, "bias");
  if (bias && acc) a.fail("bias can only be used with accumulate false (add it once, not per micro-step)");
  if (m == 0 || n == 0) return;
  float beta = acc ? 1.0f : 0.0f;
  if (bias) {
    cuda::broadcastRows(C, bias, m, n, ldc, stream());
    beta = 1.0f;
  }
  if (k == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; i++) cuda::fillF32(C + i * ldc, n, 0.f, stream());
    return;
  }
  MatmulF32 p;
  p.transA = ta;
  p.transB = tb;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = A;
  p.lda = lda;
  p.b = B;
  p.ldb = ldb;
  p.c = C;
  p.ldc = ldc;
  p.beta = beta;
  matmulF32(p);
}

// biasGrad(db, dy, rows, cols, ldy): db += column sums (double, fixed order).
void opBiasGrad(const Args& a) {
  int64_t rows = a.i64(4, "rows"), cols = a.i64(5, "cols"), ldy = a.i64(6, "ldy");
  if (ldy == 0) ldy = cols;
  if (ldy < cols) a.fail("ldy is smaller than cols");
  float* db = a.f32(0, cols, "db");
  const float* dy = a.f32(2, span2d(rows, cols, ldy), "dy");
  if (rows == 0 || cols == 0) return;
  auto* partials = static_cast<double*>(scratch(kScratchPartials, size_t(cuda::colSumPartials(rows, cols)) * 8));
  cuda::columnSums(db, dy, rows, cols, ldy, partials, stream());
}

}  // namespace

void registerMatmul(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "matmul", opMatmul);
  registerOp(env, exports, "biasGrad", opBiasGrad);
}

}  // namespace lmf
