// The residual add fused with the norm after it (RMSNorm and LayerNorm): launches only.
#include "common.h"
#include "residual_norm.h"

namespace lmf {

void op::addRmsnormForward(const AddRmsnormForwardArgs& p) {
  cuda::addRmsnormForward(p.sum, dev(p.out), p.rstd, p.a, p.b, p.w, p.rows, p.d, static_cast<float>(p.eps), stream());
}

void op::addLayernormForward(const AddLayernormForwardArgs& p) {
  cuda::addLayernormForward(p.sum, dev(p.out), p.mean, p.rstd, p.a, p.b, p.w, p.bias, p.rows, p.d,
                            static_cast<float>(p.eps), stream());
}

}  // namespace lmf
