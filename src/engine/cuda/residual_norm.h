// Launchers of residual_norm.cu (the residual add fused with the norm after it), shared by its glue and kernels
// like kernels.cuh. `out` is the next matrix product's input, an activation (f32 or bf16); the sum, the residual
// stream, stays f32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.cuh"

namespace lmf {
namespace cuda {

// sum = a + b (sum may be a or b), out = sum * rstd * w with rstd = 1/sqrt(mean(sum^2) + eps): one block per row.
void addRmsnormForward(float* sum, DevAct out, float* rstd, const float* a, const float* b, const float* w,
                       int64_t rows, int64_t d, float eps, cudaStream_t s);
// sum = a + b, out = (sum - mean) * rstd * w + bias.
void addLayernormForward(float* sum, DevAct out, float* mean, float* rstd, const float* a, const float* b,
                         const float* w, const float* bias, int64_t rows, int64_t d, float eps, cudaStream_t s);

}  // namespace cuda
}  // namespace lmf
