// Optimizer kernels: the squared-norm reduction used for global gradient clipping, and one fused AdamW pass.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../native/bf16.h"
#include "common.h"

namespace lmf {

// out[0] += sum x^2. Fixed-size blocks summed in order keep the result identical for every thread count.
void op::sumSquares(const SumSquaresArgs& p) {
  const int64_t n = p.n;
  double* out = p.out;
  const float* x = p.x;
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
#pragma omp parallel for schedule(static) if (n > kStreamParallelMin)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t e = std::min(n, (b + 1) * kBlock);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b * kBlock; i < e; i++) s += static_cast<double>(x[i]) * x[i];
    partial[b] = s;
  }
  double total = 0;
  for (double p : partial) total += p;
  out[0] += total;
}

// In PyTorch's order: p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
// p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps), with the coefficients the reader derived (AdamwCoefficients).
void op::adamw(const AdamwArgs& args) {
  const int64_t n = args.n;
  float *p = args.param, *m = args.m, *v = args.v;
  const float* g = args.grad;
  const AdamwCoefficients& c = args.coef;
  const float stepSize = c.stepSize, bc2Sqrt = c.bc2Sqrt, decay = c.decay;
  float fgs = c.gradScale;
  if (args.stepStats) {
    const double s = adamwStepScale(args.stepStats[0], args.stepStats[1], args.clip, args.gradScale);
    if (s < 0) return;  // a non-finite step: no update
    fgs = static_cast<float>(s);
  }
  const float fb1 = c.oneMinusBeta1, fb2 = c.beta2, fb2c = c.oneMinusBeta2, feps = c.eps;
#pragma omp parallel for simd schedule(static) if (n > kStreamParallelMin / 4)
  for (int64_t i = 0; i < n; i++) {
    const float gr = g[i] * fgs;
    float pi = p[i] * decay;
    const float mi = m[i] + (gr - m[i]) * fb1;
    const float vi = v[i] * fb2 + fb2c * gr * gr;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - stepSize * mi / (std::sqrt(vi) / bc2Sqrt + feps);
  }
  // The bf16 weight copy (stored here too, so the invariant is testable on the CPU).
  if (args.paramBf16) {
    uint16_t* w = &args.paramBf16->bits;
#pragma omp parallel for simd schedule(static) if (n > kStreamParallelMin)
    for (int64_t i = 0; i < n; i++) w[i] = floatToBf16(p[i]);
  }
}

}  // namespace lmf
