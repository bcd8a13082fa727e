// Feed-forward activations: SwiGLU on a fused [rows, 2f] gate|up buffer, and GELU (erf), GELU (tanh), SiLU.
#include "common.h"

namespace lmf {

void op::swigluForward(const SwigluForwardArgs& p) { cuda::swigluForward(p.out, p.gu, p.rows, p.f, stream()); }

void op::swigluBackward(const SwigluBackwardArgs& p) {
  cuda::swigluBackward(p.dgu, p.dout, p.gu, p.rows, p.f, stream());
}

void op::activationForward(const ActivationForwardArgs& p) {
  cuda::activationForward(p.out, p.x, p.n, static_cast<int>(p.kind), stream());
}

void op::activationBackward(const ActivationBackwardArgs& p) {
  cuda::activationBackward(p.dx, p.dout, p.x, p.n, static_cast<int>(p.kind), stream());
}

}  // namespace lmf
