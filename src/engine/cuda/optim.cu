// One fused AdamW pass (PyTorch's order of operations, decoupled weight decay, bias correction folded into
// the step size and the denominator) reading the gradient once with the clipping scale applied on the fly; and
// the same over a table of ranges in one launch (multi-tensor). Both update each element with adamwElement
// (params.h), the CPU engine's function too, and write the optional bf16 weight copy in the same pass.
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;

// The gradient scale of the step: with `stats`, every thread derives the same scale from the step's statistics;
// false for a non-finite step (skipped).
__device__ __forceinline__ bool stepGradScale(float& gs, const double* stats, double clip, double gradScale) {
  if (!stats) return true;
  const double s = adamwStepScale(stats[0], stats[1], clip, gradScale);
  gs = static_cast<float>(s);
  return s >= 0;
}

// One element's update, and its bf16 weight copy (if any) in the same pass.
__device__ __forceinline__ void updateElement(float* p, const float* g, float* m, float* v, int64_t i, float decay,
                                              const AdamwCoefficients& a, float gs, __nv_bfloat16* pBf16) {
  const float pi = adamwElement(p[i], g[i], m[i], v[i], decay, a, gs);
  if (pBf16) pBf16[i] = __float2bfloat16_rn(pi);
}

__global__ void adamwKernel(float* p, const float* g, float* m, float* v, int64_t n, AdamwCoefficients a,
                            const double* stats, double clip, double gradScale, __nv_bfloat16* pBf16) {
  float gs = a.gradScale;
  if (!stepGradScale(gs, stats, clip, gradScale)) return;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    updateElement(p, g, m, v, i, a.decay, a, gs, pBf16);
}

// adamwRanges: block b updates chunk b of the ranges' chunks (each range is cut into kRangeChunk-element chunks,
// numbered on from its firstChunk), so one launch covers every range with no block straddling two.
constexpr int64_t kRangeChunk = 4096;

__global__ void adamwRangesKernel(float* p, const float* g, float* m, float* v, const AdamwRange* table, int count,
                                  AdamwCoefficients a, float decayOff, const double* stats, double clip,
                                  double gradScale, __nv_bfloat16* pBf16) {
  float gs = a.gradScale;
  if (!stepGradScale(gs, stats, clip, gradScale)) return;
  const int64_t chunk = blockIdx.x;
  int lo = 0, hi = count - 1;  // the last range whose first chunk is <= this one
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].firstChunk <= chunk) lo = mid;
    else hi = mid - 1;
  }
  const AdamwRange r = table[lo];
  const int64_t start = r.offset + (chunk - r.firstChunk) * kRangeChunk;
  const int64_t end = min(r.offset + r.size, start + kRangeChunk);
  const float decay = r.decay ? a.decay : decayOff;
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) updateElement(p, g, m, v, i, decay, a, gs, pBf16);
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoefficients& a, const double* stats,
           double clip, double gradScale, bf16raw* pBf16, cudaStream_t s) {
  if (n <= 0) return;
  launch("adamw", adamwKernel, gridFor(n, kThreads), kThreads, 0, s, p, g, m, v, n, a, stats, clip, gradScale,
         reinterpret_cast<__nv_bfloat16*>(pBf16));
}

int64_t adamwRangeChunks(AdamwRangeTable& table) {
  int64_t chunks = 0;
  for (AdamwRange& r : table) {
    r.firstChunk = chunks;
    chunks += (r.size + kRangeChunk - 1) / kRangeChunk;
  }
  return chunks;
}

void adamwRanges(float* p, const float* g, float* m, float* v, const AdamwRange* table, int64_t count, int64_t chunks,
                 const AdamwCoefficients& a, float decayOff, const double* stats, double clip, double gradScale,
                 bf16raw* pBf16, cudaStream_t s) {
  if (chunks <= 0) return;
  launch("adamwRanges", adamwRangesKernel, static_cast<unsigned>(chunks), kThreads, 0, s, p, g, m, v, table,
         static_cast<int>(count), a, decayOff, stats, clip, gradScale, reinterpret_cast<__nv_bfloat16*>(pBf16));
}

}  // namespace cuda
}  // namespace lmf
