// Launchers of the tensor-core flash attention (flash_attention.cu): causal GQA/MQA/MHA training attention with
// head_dim 64 or 128, bf16 operands on mma.sync m16n8k16 with fp32 accumulation. Same arguments and results as
// attentionForward/attentionBackward of kernels.cuh (f32 or bf16 in and out, lse in natural-log units, document
// masking through cu), so the glue (attention.cc) can pick either kernel per call. Training only (sh.past == 0).
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

// The bf16 operands of one call (q, k, v; dO in the backward): one dtype, f32 or bf16.
struct FlashOperands {
  DevActIn q, k, v, dout;
};

// Device scratch the calls need (bytes; 0 is possible): head-major bf16 copies of q, k, v (and dO) unless they are
// bf16 with 16-byte aligned rows (then they are read in place), plus the row dots in the backward. The caller passes
// at least this much, 256-byte aligned.
size_t flashForwardScratch(const AttentionShape& sh, const FlashOperands& o);
size_t flashBackwardScratch(const AttentionShape& sh, const FlashOperands& o);

// out (f32 or bf16, the operands' dtype) and lse.
void flashAttentionForward(DevAct out, float* lse, const FlashOperands& o, const AttentionShape& sh, const int32_t* cu,
                           void* scratch, cudaStream_t s);
// Overwrites dq, dk, dv (their head columns of each row; other columns are untouched).
void flashAttentionBackward(DevAct dq, DevAct dk, DevAct dv, const FlashOperands& o, DevActIn out, const float* lse,
                            const AttentionShape& sh, const int32_t* cu, void* scratch, cudaStream_t s);

}  // namespace cuda
}  // namespace lmf
