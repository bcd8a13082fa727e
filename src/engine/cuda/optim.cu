// One fused AdamW pass (PyTorch's order of operations, decoupled weight decay, bias correction folded into
// the step size and the denominator) reading the gradient once with the clipping scale applied on the fly.
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__global__ void adamwKernel(float* p, const float* g, float* m, float* v, int64_t n, AdamwCoefficients a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gr = g[i] * a.gradScale;
    const float mi = m[i] + (gr - m[i]) * a.oneMinusBeta1;
    const float vi = v[i] * a.beta2 + a.oneMinusBeta2 * gr * gr;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * a.decay - a.stepSize * mi / (sqrtf(vi) / a.bc2Sqrt + a.eps);
  }
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoefficients& a, cudaStream_t s) {
  if (n <= 0) return;
  launch("adamw", adamwKernel, gridFor(n, kThreads), kThreads, 0, s, p, g, m, v, n, a);
}

}  // namespace cuda
}  // namespace lmf
