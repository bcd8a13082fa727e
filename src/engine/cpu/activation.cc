// Feed-forward activations: SwiGLU (silu(gate) * up on a fused [rows, 2f] buffer) and the elementwise
// GELU (erf), GELU (tanh, GPT-2's gelu_new) and SiLU, each with its backward.
#include <omp.h>

#include <cmath>

#include "common.h"
#include "mathfn.h"

namespace lmf {

namespace {

constexpr int64_t kParallelMin = kComputeParallelMin;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kTanhK = 0.79788456080286536f;  // sqrt(2/pi)
constexpr float kTanhC = 0.044715f;

inline float sigmoid(float x) { return 1.0f / (1.0f + fastExp(-x)); }

}  // namespace

void op::swigluForward(const SwigluForwardArgs& p) {
  const int64_t rows = p.rows, f = p.f;
  float* out = p.out;
  const float* gu = p.gu;
#pragma omp parallel for schedule(static) if (rows * f > kParallelMin)
  for (int64_t r = 0; r < rows; r++) {
    const float* g = gu + r * 2 * f;
    const float* u = g + f;
    float* o = out + r * f;
#pragma omp simd
    for (int64_t j = 0; j < f; j++) o[j] = g[j] * sigmoid(g[j]) * u[j];
  }
}

void op::swigluBackward(const SwigluBackwardArgs& p) {
  const int64_t rows = p.rows, f = p.f;
  float* dgu = p.dgu;
  const float *dout = p.dout, *gu = p.gu;
#pragma omp parallel for schedule(static) if (rows * f > kParallelMin)
  for (int64_t r = 0; r < rows; r++) {
    const float* g = gu + r * 2 * f;
    const float* u = g + f;
    const float* d = dout + r * f;
    float* dg = dgu + r * 2 * f;
    float* du = dg + f;
#pragma omp simd
    for (int64_t j = 0; j < f; j++) {
      float s = sigmoid(g[j]);
      float silu = g[j] * s;
      dg[j] = d[j] * u[j] * (s + silu * (1.0f - s));
      du[j] = d[j] * silu;
    }
  }
}

void op::activationForward(const ActivationForwardArgs& p) {
  const int64_t n = p.n;
  const int64_t kind = p.kind;
  float* out = p.out;
  const float* x = p.x;
  if (kind == kSilu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * sigmoid(x[i]);
  } else if (kind == kGelu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + fastErf(x[i] * kInvSqrt2));
  } else {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      out[i] = 0.5f * v * (1.0f + fastTanh(kTanhK * (v + kTanhC * v * v * v)));
    }
  }
}

void op::activationBackward(const ActivationBackwardArgs& p) {
  const int64_t n = p.n;
  const int64_t kind = p.kind;
  float* dx = p.dx;
  const float *dout = p.dout, *x = p.x;
  if (kind == kSilu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      float s = sigmoid(x[i]);
      dx[i] = dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
  } else if (kind == kGelu) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      float cdf = 0.5f * (1.0f + fastErf(v * kInvSqrt2));
      dx[i] = dout[i] * (cdf + v * kInvSqrt2Pi * fastExp(-0.5f * v * v));
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      float t = fastTanh(kTanhK * (v + kTanhC * v * v * v));
      dx[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kTanhK * (1.0f + 3.0f * kTanhC * v * v));
    }
  }
}

}  // namespace lmf
