// Launchers of the tensor-core flash attention (flash_attention.cu): causal GQA/MQA/MHA training attention with
// head_dim 64 or 128, bf16 operands on mma.sync m16n8k16 with fp32 accumulation. Same arguments and results as
// attentionForward/attentionBackward of kernels.cuh (fp32 in and out, lse in natural-log units, document masking
// through cu), so the glue (attention.cc) can pick either kernel per call. Training only (sh.past == 0).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../native/params.h"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

// head_dim 64 or 128, no KV-cache offset.
bool flashAttentionSupported(const AttentionShape& sh);

// Device scratch the calls need (bytes): the bf16 staging copies of q, k, v (and dO, plus the row dots, for the
// backward). The caller passes at least this much, 256-byte aligned.
size_t flashForwardScratch(const AttentionShape& sh);
size_t flashBackwardScratch(const AttentionShape& sh);

// q, k, v, out and the gradients share one dtype (f32 or bf16): staged into head-major bf16 copies in scratch.
void flashAttentionForward(DevAct out, float* lse, DevActIn q, DevActIn k, DevActIn v, const AttentionShape& sh,
                           const int32_t* cu, void* scratch, cudaStream_t s);
// Overwrites dq, dk, dv (their head columns of each row; other columns are untouched).
void flashAttentionBackward(DevAct dq, DevAct dk, DevAct dv, DevActIn dout, DevActIn q, DevActIn k, DevActIn v,
                            DevActIn out, const float* lse, const AttentionShape& sh, const int32_t* cu, void* scratch,
                            cudaStream_t s);

}  // namespace cuda
}  // namespace lmf
