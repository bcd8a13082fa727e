// One row of the RMSNorm / LayerNorm forward, shared by norm.cc and residual_norm.cc so that the fused
// residual-add + norm computes exactly the values of an add followed by the norm. Statistics in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "mathfn.h"

namespace lmf {

// o = x * rstd * w; returns rstd = 1/sqrt(mean(x^2) + eps).
inline float rmsnormRow(float* o, const float* xr, const float* w, int64_t d, double eps) {
  const double ss = blockSum(d, [xr](int64_t j) { return xr[j] * xr[j]; });
  const float s = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
#pragma omp simd
  for (int64_t j = 0; j < d; j++) o[j] = xr[j] * s * w[j];
  return s;
}

// o = (x - mean) * rstd * w + bias.
inline void layernormRow(float* o, float& mean, float& rstd, const float* xr, const float* w, const float* bias,
                         int64_t d, double eps) {
  const double mu = blockSum(d, [xr](int64_t j) { return xr[j]; }) / d;
  const float fmu = static_cast<float>(mu);
  // Two-pass variance around the (float-rounded) mean; the rounding of the mean cancels to first order.
  const double var = blockSum(d, [xr, fmu](int64_t j) { return (xr[j] - fmu) * (xr[j] - fmu); });
  const float s = static_cast<float>(1.0 / std::sqrt(var / d + eps));
  const float m = static_cast<float>(mu);
  mean = m;
  rstd = s;
#pragma omp simd
  for (int64_t j = 0; j < d; j++) o[j] = (xr[j] - m) * s * w[j] + bias[j];
}

}  // namespace lmf
