// Optimizer kernels: the squared-norm reduction used for global gradient clipping, and one fused AdamW pass.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace lmf {

namespace {

// sumSquares(out f64, x, n): out[0] += sum x^2. Fixed-size blocks summed in order keep the result
// identical for every thread count.
void opSumSquares(const Args& a) {
  const int64_t n = a.i64(4, "n");
  double* out = a.f64(0, 1, "out");
  const float* x = a.f32(2, n, "x");
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
  const int64_t n = a.i64(8, "n");
  float* p = a.f32(0, n, "param");
  const float* g = a.f32(2, n, "grad");
  float* m = a.f32(4, n, "m");
  float* v = a.f32(6, n, "v");
  const double lr = a.num(9), b1 = a.num(10), b2 = a.num(11), eps = a.num(12), wd = a.num(13);
  const double step = a.num(14), gs = a.num(15);
  if (!(step >= 1) || step != std::floor(step)) a.fail("step must be a 1-based integer, got " + std::to_string(step));
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) a.fail("beta1 and beta2 must lie in [0, 1)");
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  const float stepSize = static_cast<float>(lr / bc1), bc2Sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = static_cast<float>(1 - lr * wd), fb1 = static_cast<float>(1 - b1), fb2 = static_cast<float>(b2);
  const float fb2c = static_cast<float>(1 - b2), feps = static_cast<float>(eps), fgs = static_cast<float>(gs);
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
