// RMSNorm and LayerNorm over rows of length d. Row statistics are reduced in double. Backward computes dx
// per row, then the weight/bias gradients in a second pass over column blocks (deterministic, no atomics).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common.h"
#include "mathfn.h"

namespace lmf {

namespace {

constexpr int64_t kColBlock = 64;

// Norms are memory-bound: the streaming threshold applies.
inline bool parallelRows(int64_t rows, int64_t d) { return rows > 1 && rows * d > kStreamParallelMin; }

// rmsnormForward(out, rstd, x, w, rows, d, eps)
void opRmsnormForward(const Args& a) {
  int64_t rows = a.i64(8, "rows"), d = a.i64(9, "d");
  double eps = a.num(10);
  float* out = a.f32(0, rows * d, "out");
  float* rstd = a.f32(2, rows, "rstd");
  const float* x = a.f32(4, rows * d, "x");
  const float* w = a.f32(6, d, "w");
  if (d == 0) a.fail("d must be positive");
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    const double ss = blockSum(d, [xr](int64_t j) { return xr[j] * xr[j]; });
    float s = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
    rstd[r] = s;
    float* o = out + r * d;
#pragma omp simd
    for (int64_t j = 0; j < d; j++) o[j] = xr[j] * s * w[j];
  }
}

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
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    const double mu = blockSum(d, [xr](int64_t j) { return xr[j]; }) / d;
    const float fmu = static_cast<float>(mu);
    // Two-pass variance around the (float-rounded) mean; the rounding of the mean cancels to first order.
    const double var = blockSum(d, [xr, fmu](int64_t j) { return (xr[j] - fmu) * (xr[j] - fmu); });
    float s = static_cast<float>(1.0 / std::sqrt(var / d + eps));
    float m = static_cast<float>(mu);
    mean[r] = m;
    rstd[r] = s;
    float* o = out + r * d;
#pragma omp simd
    for (int64_t j = 0; j < d; j++) o[j] = (xr[j] - m) * s * w[j] + bias[j];
  }
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

}  // namespace

void registerNorm(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "rmsnormForward", opRmsnormForward);
  registerOp(env, exports, "rmsnormBackward", opRmsnormBackward);
  registerOp(env, exports, "layernormForward", opLayernormForward);
  registerOp(env, exports, "layernormBackward", opLayernormBackward);
}

}  // namespace lmf
