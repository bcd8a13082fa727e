// Launchers of residual_norm.cu (the residual add fused with the norm after it), shared by its glue and kernels
// like kernels.cuh. `OutT` of the kernels is the element type of `out`, the next matrix product's input: float
// today; a bf16 activation arena adds a bf16 instantiation (storeOut in residual_norm.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace lmf {
namespace cuda {

// sum = a + b (sum may be a or b), out = sum * rstd * w with rstd = 1/sqrt(mean(sum^2) + eps): one block per row.
void addRmsnormForward(float* sum, float* out, float* rstd, const float* a, const float* b, const float* w,
                       int64_t rows, int64_t d, float eps, cudaStream_t s);
// sum = a + b, out = (sum - mean) * rstd * w + bias.
void addLayernormForward(float* sum, float* out, float* mean, float* rstd, const float* a, const float* b,
                         const float* w, const float* bias, int64_t rows, int64_t d, float eps, cudaStream_t s);

}  // namespace cuda
}  // namespace lmf
