// Causal attention with grouped-query heads (training): the flash-style kernels of attention.cu take the shape the
// shared reader filled (AttentionShape) as it is, and document masking's bounds (cuSeqlens, on the device: their
// validity is the caller's promise; model/decoder.ts checks them on the host before uploading).
#include "common.h"

namespace lmf {

void requireAttentionKernel(const char* op, const AttentionShape& s) {
  if (!cuda::attentionSupported(s.headDim))
    opFail(op, "headDim " + std::to_string(s.headDim) + " is above 128, which the CUDA attention kernel does not support");
  if (s.batch * s.heads > 65535)
    opFail(op, "batch x heads = " + std::to_string(s.batch * s.heads) +
                   " exceeds 65535 (one grid dimension): split the batch");
}

void op::attentionForward(const AttentionForwardArgs& p) {
  requireAttentionKernel(p.kOp, p);
  cuda::attentionForward(p.out, p.lse, p.q, p.k, p.v, p, p.cuSeqlens, stream());
}

void op::attentionBackward(const AttentionBackwardArgs& p) {
  requireAttentionKernel(p.kOp, p);
  if (p.n() == 0) return;
  auto* rowDots = static_cast<float*>(scratch(kScratchAttn, size_t(p.batch * p.heads * p.seq) * sizeof(float)));
  cuda::attentionBackward(p.dq, p.dk, p.dv, p.dout, p.q, p.k, p.v, p.out, p.lse, p, p.cuSeqlens, rowDots, stream());
}

}  // namespace lmf
