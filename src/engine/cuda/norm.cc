// RMSNorm and LayerNorm over rows of length d; the weight/bias gradients are summed from per-row-block partials.
#include "common.h"

namespace lmf {

void op::rmsnormForward(const RmsnormForwardArgs& p) {
  cuda::rmsnormForward(dev(p.out), p.rstd, p.x, p.w, p.rows, p.d, static_cast<float>(p.eps), stream());
}

void op::rmsnormBackward(const RmsnormBackwardArgs& p) {
  if (p.rows == 0 || p.d == 0) return;
  cuda::rmsnormBackward(p.dx, p.dw, dev(p.dout), p.x, p.w, p.rstd, p.rows, p.d, p.accumulateDx,
                        scratchPartials(cuda::normPartials(p.rows, p.d, 1)), stream());
}

void op::layernormForward(const LayernormForwardArgs& p) {
  cuda::layernormForward(dev(p.out), p.mean, p.rstd, p.x, p.w, p.b, p.rows, p.d, static_cast<float>(p.eps), stream());
}

void op::layernormBackward(const LayernormBackwardArgs& p) {
  if (p.rows == 0) return;
  cuda::layernormBackward(p.dx, p.dw, p.db, dev(p.dout), p.x, p.w, p.mean, p.rstd, p.rows, p.d, p.accumulateDx,
                          scratchPartials(cuda::normPartials(p.rows, p.d, 2)), stream());
}

}  // namespace lmf
