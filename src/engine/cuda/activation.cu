// Feed-forward activations: SwiGLU on the fused [rows, 2f] gate|up buffer, and elementwise GELU (erf),
// GELU (tanh form, GPT-2's gelu_new) and SiLU, each with its backward, on f32 or bf16 activations (fp32 math,
// converted on load and store). Grid-stride loops; fp32 math with
// the accurate expf/erff/tanhf so the fp32 mode matches the CPU engine closely.
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kTanhK = 0.79788456080286536f;  // sqrt(2/pi)
constexpr float kTanhC = 0.044715f;

__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

template <typename T>
__global__ void swigluForwardKernel(T* out, const T* gu, int64_t rows, int64_t f) {
  const int64_t n = rows * f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / f, j = i - r * f;
    const float g = ldf(gu, r * 2 * f + j), u = ldf(gu, r * 2 * f + f + j);
    stf(out, i, g * sigmoidf(g) * u);
  }
}

template <typename T>
__global__ void swigluBackwardKernel(T* dgu, const T* dout, const T* gu, int64_t rows, int64_t f) {
  const int64_t n = rows * f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / f, j = i - r * f;
    const float g = ldf(gu, r * 2 * f + j), u = ldf(gu, r * 2 * f + f + j), d = ldf(dout, i);
    const float s = sigmoidf(g), silu = g * s;
    stf(dgu, r * 2 * f + j, d * u * (s + silu * (1.f - s)));
    stf(dgu, r * 2 * f + f + j, d * silu);
  }
}

__device__ __forceinline__ float actForward(float x, int kind) {
  if (kind == 2) return x * sigmoidf(x);
  if (kind == 0) return 0.5f * x * (1.f + erff(x * kInvSqrt2));
  return 0.5f * x * (1.f + tanhf(kTanhK * (x + kTanhC * x * x * x)));
}

__device__ __forceinline__ float actGrad(float x, int kind) {
  if (kind == 2) {
    const float s = sigmoidf(x);
    return s * (1.f + x * (1.f - s));
  }
  if (kind == 0) return 0.5f * (1.f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
  const float t = tanhf(kTanhK * (x + kTanhC * x * x * x));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * kTanhK * (1.f + 3.f * kTanhC * x * x);
}

template <typename T>
__global__ void actForwardKernel(T* out, const T* x, int64_t n, int kind) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    stf(out, i, actForward(ldf(x, i), kind));
}

template <typename T>
__global__ void actBackwardKernel(T* dx, const T* dout, const T* x, int64_t n, int kind) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    stf(dx, i, ldf(dout, i) * actGrad(ldf(x, i), kind));
}

}  // namespace

void swigluForward(DevAct out, DevActIn gu, int64_t rows, int64_t f, cudaStream_t s) {
  if (rows * f <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("swigluForward", swigluForwardKernel<T>, gridFor(rows * f, kThreads), kThreads, 0, s, actPtr<T>(out.p),
           actPtr<T>(gu.p), rows, f);
  });
}

void swigluBackward(DevAct dgu, DevActIn dout, DevActIn gu, int64_t rows, int64_t f, cudaStream_t s) {
  if (rows * f <= 0) return;
  withAct(dgu.bf16, [&](auto t) {
    using T = decltype(t);
    launch("swigluBackward", swigluBackwardKernel<T>, gridFor(rows * f, kThreads), kThreads, 0, s, actPtr<T>(dgu.p),
           actPtr<T>(dout.p), actPtr<T>(gu.p), rows, f);
  });
}

void activationForward(DevAct out, DevActIn x, int64_t n, int kind, cudaStream_t s) {
  if (n <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("activationForward", actForwardKernel<T>, gridFor(n, kThreads), kThreads, 0, s, actPtr<T>(out.p),
           actPtr<T>(x.p), n, kind);
  });
}

void activationBackward(DevAct dx, DevActIn dout, DevActIn x, int64_t n, int kind, cudaStream_t s) {
  if (n <= 0) return;
  withAct(dx.bf16, [&](auto t) {
    using T = decltype(t);
    launch("activationBackward", actBackwardKernel<T>, gridFor(n, kThreads), kThreads, 0, s, actPtr<T>(dx.p),
           actPtr<T>(dout.p), actPtr<T>(x.p), n, kind);
  });
}

}  // namespace cuda
}  // namespace lmf
