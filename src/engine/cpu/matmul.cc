// Matrix products through OpenBLAS sgemm, and the bias gradient (column sums).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "common.h"

namespace lmf {

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
#pragma omp parallel for schedule(static) if (m * n > kStreamParallelMin)
    for (int64_t i = 0; i < m; i++) std::copy(bias, bias + n, C + i * ldc);
    beta = 1.0f;
  }
  if (k == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; i++) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n,
              (blasint)k, 1.0f, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

// biasGrad(db, dy, rows, cols, ldy): db += column sums, in double, parallel over column blocks (deterministic).
void opBiasGrad(const Args& a) {
  int64_t rows = a.i64(4, "rows"), cols = a.i64(5, "cols"), ldy = a.i64(6, "ldy");
  if (ldy == 0) ldy = cols;
  if (ldy < cols) a.fail("ldy is smaller than cols");
  float* db = a.f32(0, cols, "db");
  const float* dy = a.f32(2, span2d(rows, cols, ldy), "dy");
  constexpr int64_t kBlock = 64;
  int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols > kStreamParallelMin)
  for (int64_t blk = 0; blk < blocks; blk++) {
    int64_t c0 = blk * kBlock, c1 = std::min(cols, c0 + kBlock);
    double acc[kBlock] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float* row = dy + r * ldy;
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; c++) db[c] += static_cast<float>(acc[c - c0]);
  }
}

}  // namespace

void registerMatmul(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "matmul", opMatmul);
  registerOp(env, exports, "biasGrad", opBiasGrad);
}

}  // namespace lmf
