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
// p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps), with the coefficients the reader derived (AdamwCoefficients);
// the element update is adamwElement (params.h), shared with adamwRanges and the CUDA kernels.
void op::adamw(const AdamwArgs& args) {
  const int64_t n = args.n;
  float *p = args.param, *m = args.m, *v = args.v;
  const float* g = args.grad;
  const AdamwCoefficients c = args.coef;
  float gs = c.gradScale;
  if (args.stepStats) {
    const double s = adamwStepScale(args.stepStats[0], args.stepStats[1], args.clip, args.gradScale);
    if (s < 0) return;  // a non-finite step: no update
    gs = static_cast<float>(s);
  }
#pragma omp parallel for simd schedule(static) if (n > kStreamParallelMin / 4)
  for (int64_t i = 0; i < n; i++) adamwElement(p[i], g[i], m[i], v[i], c.decay, c, gs);
  // The bf16 weight copy (stored here too, so the invariant is testable on the CPU).
  if (args.paramBf16) {
    uint16_t* w = &args.paramBf16->bits;
#pragma omp parallel for simd schedule(static) if (n > kStreamParallelMin)
    for (int64_t i = 0; i < n; i++) w[i] = floatToBf16(p[i]);
  }
}

// One update over every range of the table in one parallel region (the CPU's "one launch"): each element gets
// exactly adamw's arithmetic, so the result equals one adamw call per range bit for bit.
void op::adamwRanges(const AdamwRangesArgs& args) {
  float *p = args.param, *m = args.m, *v = args.v;
  const float* g = args.grad;
  const AdamwCoefficients c = args.coef;
  const float decayOn = args.coef.decay, decayOff = args.coefNoDecay.decay;
  float gs = c.gradScale;
  if (args.stepStats) {
    const double s = adamwStepScale(args.stepStats[0], args.stepStats[1], args.clip, args.gradScale);
    if (s < 0) return;  // a non-finite step: no update
    gs = static_cast<float>(s);
  }
  int64_t total = 0;
  for (const AdamwRange& r : args.table) total += r.size;
  const AdamwRange* table = args.table.data();
  const int64_t count = static_cast<int64_t>(args.table.size());
#pragma omp parallel if (total > kStreamParallelMin / 4)
  for (int64_t k = 0; k < count; k++) {
    const int64_t o = table[k].offset, size = table[k].size;
    const float decay = table[k].decay ? decayOn : decayOff;
#pragma omp for simd schedule(static) nowait
    for (int64_t i = o; i < o + size; i++) adamwElement(p[i], g[i], m[i], v[i], decay, c, gs);
  }
  // The bf16 weight copy of the updated ranges (as adamw writes it over each range).
  if (args.paramBf16) {
    uint16_t* w = &args.paramBf16->bits;
    for (int64_t k = 0; k < count; k++) {
      const int64_t o = table[k].offset, size = table[k].size;
#pragma omp parallel for simd schedule(static) if (size > kStreamParallelMin)
      for (int64_t i = o; i < o + size; i++) w[i] = floatToBf16(p[i]);
    }
  }
}

}  // namespace lmf
