// The residual add fused with the norm that follows it: sum = a + b, then out = norm(sum). Each row is added,
// stored and normalised while it is still in cache; the values are exactly those of `add` then the norm op (the
// same float sum, then the same row function, norm_rows.h), so fusing changes no result.
#include <omp.h>

#include "common.h"
#include "norm_rows.h"

namespace lmf {

namespace {

// Memory-bound like the norms: the streaming threshold applies.
inline bool parallelRows(int64_t rows, int64_t d) { return rows > 1 && rows * d > kStreamParallelMin; }

// sr = ar + br over one row (sr may be ar or br: each element is read before it is written).
inline void addRow(float* sr, const float* ar, const float* br, int64_t d) {
#pragma omp simd
  for (int64_t j = 0; j < d; j++) sr[j] = ar[j] + br[j];
}

}  // namespace

void op::addRmsnormForward(const AddRmsnormForwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const double eps = p.eps;
  float *sum = p.sum, *out = p.out, *rstd = p.rstd;
  const float *a = p.a, *b = p.b, *w = p.w;
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) {
    addRow(sum + r * d, a + r * d, b + r * d, d);
    rstd[r] = rmsnormRow(out + r * d, sum + r * d, w, d, eps);
  }
}

void op::addLayernormForward(const AddLayernormForwardArgs& p) {
  const int64_t rows = p.rows, d = p.d;
  const double eps = p.eps;
  float *sum = p.sum, *out = p.out, *mean = p.mean, *rstd = p.rstd;
  const float *a = p.a, *b = p.b, *w = p.w, *bias = p.bias;
#pragma omp parallel for schedule(static) if (parallelRows(rows, d))
  for (int64_t r = 0; r < rows; r++) {
    addRow(sum + r * d, a + r * d, b + r * d, d);
    layernormRow(out + r * d, mean[r], rstd[r], sum + r * d, w, bias, d, eps);
  }
}

}  // namespace lmf
