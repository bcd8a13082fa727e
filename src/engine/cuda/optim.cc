// Optimizer ops: the squared-norm reduction for global gradient clipping (fixed order), and one fused AdamW pass
// with the coefficients the shared reader derived.
#include "common.h"

namespace lmf {

void op::sumSquares(const SumSquaresArgs& p) {
  if (p.n == 0) return;
  cuda::sumSquares(p.out, p.x, p.n, scratchPartials(cuda::reducePartials(p.n)), stream());
}

void op::adamw(const AdamwArgs& p) {
  cuda::adamw(p.param, p.grad, p.m, p.v, p.n, p.coef, p.stepStats, p.clip, p.gradScale,
              reinterpret_cast<cuda::bf16raw*>(p.paramBf16), stream());
}

}  // namespace lmf
