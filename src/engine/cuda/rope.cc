// The attention prologue (qkPrep): per-head QK-RMSNorm then half-split RoPE, fused. The kernels take the shape
// the shared reader filled (QkPrepShape) as it is; positions (device memory) are the caller's promise to lie in
// [0, seq): model/decoder.ts checks them on the host before uploading.
#include "common.h"

namespace lmf {

void op::qkPrepForward(const QkPrepForwardArgs& p) {
  sameActDType(p.kOp, {p.out.dtype, p.qkv.dtype});
  cuda::qkPrepForward(dev(p.out), p.rstd, dev(p.qkv), p.qNormW, p.kNormW, p.cos, p.sin, p.positions, p, static_cast<float>(p.eps),
                      stream());
}

void op::qkPrepBackward(const QkPrepBackwardArgs& p) {
  if ((p.qNormW || p.kNormW) && !cuda::qkPrepBackwardSupported(p.headDim))
    p.fail("headDim " + std::to_string(p.headDim) + " is above the CUDA QK-norm backward's limit of 3072");
  double* partials = (p.qNormW || p.kNormW) ? scratchPartials(cuda::qkPrepPartials(p)) : nullptr;
  sameActDType(p.kOp, {p.dqkv.dtype, p.dout.dtype, p.qkv.dtype});
  cuda::qkPrepBackward(dev(p.dqkv), p.dqNormW, p.dkNormW, dev(p.dout), dev(p.qkv), p.rstd, p.qNormW, p.kNormW, p.cos, p.sin,
                       p.positions, p, partials, stream());
}

}  // namespace lmf
