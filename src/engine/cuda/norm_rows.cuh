// The second half of a norm's forward, for one row in one block: reduce the statistics from each thread's partial
// sum, store them, write the normalised row. Shared by the plain norms (norm.cu) and the residual add fused with
// them (residual_norm.cu), so both compute the same values in the same order: a fused add + norm gives the bits
// of `add` then the norm. Each thread reads only the elements j = threadIdx.x + k * blockDim.x of the row, the
// ones whose partial it summed (and, fused, stored), so no barrier is needed before the row is read again.
#pragma once
#include "device.cuh"

namespace lmf {
namespace cuda {

// RMSNorm: `squares` is this thread's share of sum(x^2).
template <typename OutT>
__device__ __forceinline__ void rmsRow(OutT* o, float* rstd, const float* xr, float squares, const float* w, int64_t d,
                                       float eps, float* sh) {
  const float s = rsqrtf(blockSum(squares, sh) / float(d) + eps);
  if (threadIdx.x == 0) *rstd = s;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) stf(o, j, xr[j] * s * w[j]);
}

// LayerNorm: `sum` is this thread's share of sum(x).
template <typename OutT>
__device__ __forceinline__ void lnRow(OutT* o, float* mean, float* rstd, const float* xr, float sum, const float* w,
                                      const float* b, int64_t d, float eps, float* sh) {
  const float mu = blockSum(sum, sh) / float(d);
  float var = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float c = xr[j] - mu;
    var += c * c;
  }
  var = blockSum(var, sh) / float(d);
  const float s = rsqrtf(var + eps);
  if (threadIdx.x == 0) {
    *mean = mu;
    *rstd = s;
  }
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) stf(o, j, (xr[j] - mu) * s * w[j] + b[j]);
}

}  // namespace cuda
}  // namespace lmf
