// One fused AdamW pass (PyTorch's order of operations, decoupled weight decay, bias correction folded into
// the step size and the denominator) reading the gradient once with the clipping scale applied on the fly.
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;

// With `stats`, every thread derives the same scale from the step's statistics (or skips a non-finite step).
__global__ void adamwKernel(float* p, const float* g, float* m, float* v, int64_t n, AdamwCoefficients a,
                            const double* stats, double clip, double gradScale, __nv_bfloat16* pBf16) {
  float gs = a.gradScale;
  if (stats) {
    const double s = adamwStepScale(stats[0], stats[1], clip, gradScale);
    if (s < 0) return;
    gs = static_cast<float>(s);
  }
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gr = g[i] * gs;
    const float mi = m[i] + (gr - m[i]) * a.oneMinusBeta1;
    const float vi = v[i] * a.beta2 + a.oneMinusBeta2 * gr * gr;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] * a.decay - a.stepSize * mi / (sqrtf(vi) / a.bc2Sqrt + a.eps);
    p[i] = pi;
    if (pBf16) pBf16[i] = __float2bfloat16_rn(pi);  // the bf16 weight copy, in the same pass
  }
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoefficients& a, const double* stats,
           double clip, double gradScale, bf16raw* pBf16, cudaStream_t s) {
  if (n <= 0) return;
  launch("adamw", adamwKernel, gridFor(n, kThreads), kThreads, 0, s, p, g, m, v, n, a, stats, clip, gradScale,
         reinterpret_cast<__nv_bfloat16*>(pBf16));
}

}  // namespace cuda
}  // namespace lmf
