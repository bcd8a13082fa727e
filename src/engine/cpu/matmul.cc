// Matrix products through OpenBLAS sgemm, and the bias gradient (column sums).
#include "blas.h"
#include <omp.h>

#include <algorithm>
#include <vector>

#include "common.h"

namespace lmf {

void op::matmul(const MatmulArgs& p) {
  const int64_t m = p.m, n = p.n, k = p.k, lda = p.lda, ldb = p.ldb, ldc = p.ldc;
  const bool ta = p.transA, tb = p.transB, acc = p.accumulate;
  float* C = p.C;
  const float *A = p.A, *B = p.B, *bias = p.bias;
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

// db += column sums, in double, parallel over column blocks (deterministic).
void op::biasGrad(const BiasGradArgs& p) {
  const int64_t rows = p.rows, cols = p.cols, ldy = p.ldy;
  float* db = p.db;
  const float* dy = p.dy;
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

}  // namespace lmf
