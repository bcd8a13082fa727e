// RMSNorm and LayerNorm over rows of length d. Row statistics are reduced in double. Backward computes dx
// per row, then the weight/bias gradients in a second pass over column blocks (deterministic, no atomics).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common.h"
#include "mathfn.h"
#include "norm_rows.h"

namespace lmf {

namespace {

constexpr int64_t kColBlock = 64;

// Norms are memory-bound: the streaming threshold applies.
inline bool parallelRows(int64_t rows, int64_t d) { return rows > 1 && rows * d > kStreamParallelMin; }

}  // namespace

void op::rmsnormForward(const RmsnormForwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const double eps = p.eps;
  float* out = p.out;
  float* rstd = p.rstd;
  const float* x = p.x;
  const float* w = p.w;
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) rstd[r] = rmsnormRow(out + r * d, x + r * d, w, d, eps);
}

void op::rmsnormBackward(const RmsnormBackwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const bool accDx = p.accumulateDx;
  float* dx = p.dx;
  float* dw = p.dw;
  const float *dout = p.dout, *x = p.x, *w = p.w, *rstd = p.rstd;
  const int64_t blocks = (d + kColBlock - 1) / kColBlock;
  // One region for both passes: a region start is the expensive part on a busy machine.
#pragma omp parallel if (parallelRows(rows, d))
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * d;
      const float* g = dout + r * d;
      const double dot = blockSum(d, [g, w, xr](int64_t j) { return g[j] * w[j] * xr[j]; });
      float s = rstd[r];
      float c = static_cast<float>(dot * s * s * s / d);
      float* o = dx + r * d;
      if (accDx) {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) o[j] += s * g[j] * w[j] - xr[j] * c;
      } else {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) o[j] = s * g[j] * w[j] - xr[j] * c;
      }
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
      int64_t c0 = b * kColBlock, c1 = std::min(d, c0 + kColBlock);
      double acc[kColBlock] = {0};
      for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * d;
        const float* g = dout + r * d;
        double s = rstd[r];
        for (int64_t j = c0; j < c1; j++) acc[j - c0] += static_cast<double>(g[j]) * xr[j] * s;
      }
      for (int64_t j = c0; j < c1; j++) dw[j] += static_cast<float>(acc[j - c0]);
    }
  }
}

void op::layernormForward(const LayernormForwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const double eps = p.eps;
  float *out = p.out, *mean = p.mean, *rstd = p.rstd;
  const float *x = p.x, *w = p.w, *bias = p.b;
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) layernormRow(out + r * d, mean[r], rstd[r], x + r * d, w, bias, d, eps);
}

void op::layernormBackward(const LayernormBackwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const bool accDx = p.accumulateDx;
  float *dx = p.dx, *dw = p.dw, *db = p.db;
  const float *dout = p.dout, *x = p.x, *w = p.w, *mean = p.mean, *rstd = p.rstd;
  const int64_t blocks = (d + kColBlock - 1) / kColBlock;
  // One region for both passes: a region start is the expensive part on a busy machine.
#pragma omp parallel if (parallelRows(rows, d))
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * d;
      const float* g = dout + r * d;
      float m = mean[r], s = rstd[r];
      const double sg = blockSum(d, [g, w](int64_t j) { return g[j] * w[j]; });
      const double sgx = blockSum(d, [g, w, xr, m, s](int64_t j) { return g[j] * w[j] * ((xr[j] - m) * s); });
      float mg = static_cast<float>(sg / d), mgx = static_cast<float>(sgx / d);
      float* o = dx + r * d;
      if (accDx) {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) o[j] += s * (g[j] * w[j] - mg - (xr[j] - m) * s * mgx);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) o[j] = s * (g[j] * w[j] - mg - (xr[j] - m) * s * mgx);
      }
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
      int64_t c0 = b * kColBlock, c1 = std::min(d, c0 + kColBlock);
      double accW[kColBlock] = {0}, accB[kColBlock] = {0};
      for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * d;
        const float* g = dout + r * d;
        double m = mean[r], s = rstd[r];
        for (int64_t j = c0; j < c1; j++) {
          accW[j - c0] += g[j] * ((xr[j] - m) * s);
          accB[j - c0] += g[j];
        }
      }
      for (int64_t j = c0; j < c1; j++) {
        dw[j] += static_cast<float>(accW[j - c0]);
        db[j] += static_cast<float>(accB[j - c0]);
      }
    }
  }
}

}  // namespace lmf
