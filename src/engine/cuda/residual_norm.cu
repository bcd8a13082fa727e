// The residual add fused with the norm after it: one block per row adds a + b, stores the sum (the residual
// stream, f32), reduces its statistics and writes the normalised row. Against `add` then the norm kernel it saves
// one launch and the norm's read of the sum from memory (here each thread re-reads only the elements it wrote
// itself, still in cache). Statistics are reduced as norm.cu reduces them.
#include "device.cuh"
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
  const float ss = blockSum(addRow(sr, a + r * d, b + r * d, d, true), sh);
  const float s = rsqrtf(ss / float(d) + eps);
  if (threadIdx.x == 0) rstd[r] = s;
  OutT* o = out + r * d;
  // Each thread reads back only the sums it stored itself: no barrier needed between the passes.
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) stf(o, j, sr[j] * s * w[j]);
}

template <typename OutT>
__global__ void addLnForwardKernel(float* sum, OutT* out, float* mean, float* rstd, const float* a, const float* b,
                                   const float* w, const float* bias, int64_t d, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  float* sr = sum + r * d;
  const float mu = blockSum(addRow(sr, a + r * d, b + r * d, d, false), sh) / float(d);
  float var = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float c = sr[j] - mu;
    var += c * c;
  }
  var = blockSum(var, sh) / float(d);
  const float s = rsqrtf(var + eps);
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = s;
  }
  OutT* o = out + r * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) stf(o, j, (sr[j] - mu) * s * w[j] + bias[j]);
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
