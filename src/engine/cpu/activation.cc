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

// swigluForward(out, gu, rows, f)
void opSwigluForward(const Args& a) {
  int64_t rows = a.i64(4, "rows"), f = a.i64(5, "f");
  float* out = a.f32(0, rows * f, "out");
  const float* gu = a.f32(2, rows * 2 * f, "gu");
#pragma omp parallel for schedule(static) if (rows * f > kParallelMin)
  for (int64_t r = 0; r < rows; r++) {
    const float* g = gu + r * 2 * f;
    const float* u = g + f;
    float* o = out + r * f;
#pragma omp simd
    for (int64_t j = 0; j < f; j++) o[j] = g[j] * sigmoid(g[j]) * u[j];
  }
}

// swigluBackward(dgu, dout, gu, rows, f)
void opSwigluBackward(const Args& a) {
  int64_t rows = a.i64(6, "rows"), f = a.i64(7, "f");
  float* dgu = a.f32(0, rows * 2 * f, "dgu");
  const float* dout = a.f32(2, rows * f, "dout");
  const float* gu = a.f32(4, rows * 2 * f, "gu");
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

enum Kind { kGelu = 0, kGeluTanh = 1, kSilu = 2 };

Kind kindArg(const Args& a, size_t i) {
  int64_t k = a.i64(i, "activation kind");
  if (k > 2) a.fail("unknown activation kind " + std::to_string(k));
  return static_cast<Kind>(k);
}

// activationForward(out, x, n, kind)
void opActivationForward(const Args& a) {
  int64_t n = a.i64(4, "n");
  Kind kind = kindArg(a, 5);
  float* out = a.f32(0, n, "out");
  const float* x = a.f32(2, n, "x");
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

// activationBackward(dx, dout, x, n, kind)
void opActivationBackward(const Args& a) {
  int64_t n = a.i64(6, "n");
  Kind kind = kindArg(a, 7);
  float* dx = a.f32(0, n, "dx");
  const float* dout = a.f32(2, n, "dout");
  const float* x = a.f32(4, n, "x");
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

}  // namespace

void registerActivation(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "swigluForward", opSwigluForward);
  registerOp(env, exports, "swigluBackward", opSwigluBackward);
  registerOp(env, exports, "activationForward", opActivationForward);
  registerOp(env, exports, "activationBackward", opActivationBackward);
}

}  // namespace lmf
