// Feed-forward activations: SwiGLU on a fused [rows, 2f] gate|up buffer, and GELU (erf), GELU (tanh), SiLU; every
// activation argument of one call has one dtype (f32 or bf16).
#include "common.h"

namespace lmf {

void op::swigluForward(const SwigluForwardArgs& p) {
  sameActDType(p.kOp, {p.out.dtype, p.gu.dtype});
  cuda::swigluForward(dev(p.out), dev(p.gu), p.rows, p.f, stream());
}

void op::swigluBackward(const SwigluBackwardArgs& p) {
  sameActDType(p.kOp, {p.dgu.dtype, p.dout.dtype, p.gu.dtype});
  cuda::swigluBackward(dev(p.dgu), dev(p.dout), dev(p.gu), p.rows, p.f, stream());
}

void op::activationForward(const ActivationForwardArgs& p) {
  sameActDType(p.kOp, {p.out.dtype, p.x.dtype});
  cuda::activationForward(dev(p.out), dev(p.x), p.n, static_cast<int>(p.kind), stream());
}

void op::activationBackward(const ActivationBackwardArgs& p) {
  sameActDType(p.kOp, {p.dx.dtype, p.dout.dtype, p.x.dtype});
  cuda::activationBackward(dev(p.dx), dev(p.dout), dev(p.x), p.n, static_cast<int>(p.kind), stream());
}

}  // namespace lmf
