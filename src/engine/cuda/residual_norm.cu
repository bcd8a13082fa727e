// The residual add fused with the norm after it: one block per row adds a + b, stores the sum (the residual
// stream, f32), reduces its statistics and writes the normalised row. Against `add` then the norm kernel it saves
// one launch and the norm's read of the sum from memory (here each thread re-reads only the elements it wrote
// itself, still in cache). The statistics and the output come from norm_rows.cuh, as in norm.cu, so the values
// are those of `add` then the norm.
#include "device.cuh"
#include "norm_rows.cuh"
#include "residual_norm.h"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;

// Adds the row and returns this thread's share of sum (LayerNorm's mean) or of sum^2 (RMSNorm).
__device__ __forceinline__ float addRow(float* sr, const float* ar, const float* br, int64_t d, bool squares) {
  float acc = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float v = ar[j] + br[j];
    sr[j] = v;
    acc += squares ? v * v : v;
  }
  return acc;
}

template <typename OutT>
__global__ void addRmsForwardKernel(float* sum, OutT* out, float* rstd, const float* a, const float* b, const float* w,
                                    int64_t d, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  float* sr = sum + r * d;
  rmsRow(out + r * d, rstd + r, sr, addRow(sr, a + r * d, b + r * d, d, true), w, d, eps, sh);
}

template <typename OutT>
__global__ void addLnForwardKernel(float* sum, OutT* out, float* mean, float* rstd, const float* a, const float* b,
                                   const float* w, const float* bias, int64_t d, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  float* sr = sum + r * d;
  lnRow(out + r * d, mean + r, rstd + r, sr, addRow(sr, a + r * d, b + r * d, d, false), w, bias, d, eps, sh);
}

}  // namespace

void addRmsnormForward(float* sum, DevAct out, float* rstd, const float* a, const float* b, const float* w,
                       int64_t rows, int64_t d, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("addRmsnormForward", addRmsForwardKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, sum,
           actPtr<T>(out.p), rstd, a, b, w, d, eps);
  });
}

void addLayernormForward(float* sum, DevAct out, float* mean, float* rstd, const float* a, const float* b,
                         const float* w, const float* bias, int64_t rows, int64_t d, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("addLayernormForward", addLnForwardKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, sum,
           actPtr<T>(out.p), mean, rstd, a, b, w, bias, d, eps);
  });
}

}  // namespace cuda
}  // namespace lmf
