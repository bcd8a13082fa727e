// Optimizer kernels: the squared-norm reduction used for global gradient clipping, and one fused AdamW pass.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../native/op_args.h"
#include "common.h"

namespace lmf {

namespace {

// sumSquares(out f64, x, n): out[0] += sum x^2. Fixed-size blocks summed in order keep the result
// identical for every thread count.
void opSumSquares(const Args& a) {
  const SumSquaresArgs p = decodeSumSquares(a);
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

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale), in PyTorch's order:
// p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2; p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
void opAdamw(const Args& a) {
  const AdamwArgs args = decodeAdamw(a);
  const int64_t n = args.n;
  float *p = args.param, *m = args.m, *v = args.v;
  const float* g = args.grad;
  const float stepSize = args.stepSize, bc2Sqrt = args.bc2Sqrt, decay = args.decay;
  const float fb1 = static_cast<float>(1 - args.beta1), fb2 = static_cast<float>(args.beta2);
  const float fb2c = static_cast<float>(1 - args.beta2), feps = static_cast<float>(args.eps);
  const float fgs = static_cast<float>(args.gradScale);
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
}

}  // namespace

void registerOptim(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "sumSquares", opSumSquares);
  registerOp(env, exports, "adamw", opAdamw);
}

}  // namespace lmf
