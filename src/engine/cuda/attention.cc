// Causal attention with grouped-query heads (training): the flash-style kernels of attention.cu take the shape the
// shared reader filled (AttentionShape) as it is, and document masking's bounds (cuSeqlens, on the device: their
// validity is the caller's promise; model/decoder.ts checks them on the host before uploading).
// In bf16 mode (the default), head_dim 64 and 128 run the tensor-core kernels of flash_attention.cu instead;
// LMFORGE_CUDA_ATTENTION=classic keeps the fp32 kernels there too (for comparison).
#include <cstdlib>
#include <cstring>

#include "common.h"
#include "flash_attention.cuh"

namespace lmf {

void requireAttentionKernel(const char* op, const AttentionShape& s) {
  if (!cuda::attentionSupported(s.headDim))
    opFail(op, "headDim " + std::to_string(s.headDim) + " is above 128, which the CUDA attention kernel does not support");
  if (s.batch * s.heads > 65535)
    opFail(op, "batch x heads = " + std::to_string(s.batch * s.heads) +
                   " exceeds 65535 (one grid dimension): split the batch");
}

namespace {

// The tensor-core kernel serves bf16 mode for the head dims it has; fp32 mode keeps the fp32 kernel (its results
// are what the fp32 tolerances hold).
bool useFlash(const char* op, const AttentionShape& s) {
  if (precision() != Precision::BF16 || !cuda::flashAttentionSupported(s)) return false;
  const char* choice = std::getenv("LMFORGE_CUDA_ATTENTION");
  if (!choice || !*choice || std::strcmp(choice, "flash") == 0) return true;
  if (std::strcmp(choice, "classic") == 0) return false;
  opFail(op, std::string("LMFORGE_CUDA_ATTENTION='") + choice + "' is not a kernel: use flash (default) or classic");
}

}  // namespace

void op::attentionForward(const AttentionForwardArgs& p) {
  requireAttentionKernel(p.kOp, p);
  sameActDType(p.kOp, {p.out.dtype, p.q.dtype, p.k.dtype, p.v.dtype});
  if (useFlash(p.kOp, p)) {
    if (p.n() == 0) return;
    const cuda::FlashOperands o{dev(p.q), dev(p.k), dev(p.v), {}};
    void* staging = scratch(kScratchAttn, cuda::flashForwardScratch(p, o));
    cuda::flashAttentionForward(dev(p.out), p.lse, o, p, p.cuSeqlens, staging, stream());
    return;
  }
  cuda::attentionForward(dev(p.out), p.lse, dev(p.q), dev(p.k), dev(p.v), p, p.cuSeqlens, stream());
}

void op::attentionBackward(const AttentionBackwardArgs& p) {
  requireAttentionKernel(p.kOp, p);
  sameActDType(p.kOp, {p.dq.dtype, p.dk.dtype, p.dv.dtype, p.dout.dtype, p.q.dtype, p.k.dtype, p.v.dtype, p.out.dtype});
  if (p.n() == 0) return;
  if (useFlash(p.kOp, p)) {
    const cuda::FlashOperands o{dev(p.q), dev(p.k), dev(p.v), dev(p.dout)};
    void* staging = scratch(kScratchAttn, cuda::flashBackwardScratch(p, o));
    cuda::flashAttentionBackward(dev(p.dq), dev(p.dk), dev(p.dv), o, dev(p.out), p.lse, p, p.cuSeqlens, staging, stream());
    return;
  }
  auto* rowDots = static_cast<float*>(scratch(kScratchAttn, size_t(p.batch * p.heads * p.seq) * sizeof(float)));
  cuda::attentionBackward(dev(p.dq), dev(p.dk), dev(p.dv), dev(p.dout), dev(p.q), dev(p.k), dev(p.v), dev(p.out), p.lse, p,
                          p.cuSeqlens, rowDots, stream());
}

}  // namespace lmf
