// Feed-forward activations: SwiGLU on the fused [rows, 2f] gate|up buffer, and elementwise GELU (erf),
// GELU (tanh form, GPT-2's gelu_new) and SiLU, each with its backward. Grid-stride loops; fp32 math with
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

__global__ void swigluForwardKernel(float* out, const float* gu, int64_t rows, int64_t f) {
  const int64_t n = rows * f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / f, j = i - r * f;
    const float g = gu[r * 2 * f + j], u = gu[r * 2 * f + f + j];
    out[i] = g * sigmoidf(g) * u;
  }
}

__global__ void swigluBackwardKernel(float* dgu, const float* dout, const float* gu, int64_t rows, int64_t f) {
  const int64_t n = rows * f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / f, j = i - r * f;
    const float g = gu[r * 2 * f + j], u = gu[r * 2 * f + f + j], d = dout[i];
    const float s = sigmoidf(g), silu = g * s;
    dgu[r * 2 * f + j] = d * u * (s + silu * (1.f - s));
    dgu[r * 2 * f + f + j] = d * silu;
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

__global__ void actForwardKernel(float* out, const float* x, int64_t n, int kind) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = actForward(x[i], kind);
}

__global__ void actBackwardKernel(float* dx, const float* dout, const float* x, int64_t n, int kind) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dout[i] * actGrad(x[i], kind);
}

}  // namespace

void swigluForward(float* out, const float* gu, int64_t rows, int64_t f, cudaStream_t s) {
  if (rows * f <= 0) return;
  launch("swigluForward", swigluForwardKernel, gridFor(rows * f, kThreads), kThreads, 0, s, out, gu, rows, f);
}

void swigluBackward(float* dgu, const float* dout, const float* gu, int64_t rows, int64_t f, cudaStream_t s) {
  if (rows * f <= 0) return;
  launch("swigluBackward", swigluBackwardKernel, gridFor(rows * f, kThreads), kThreads, 0, s, dgu, dout, gu, rows, f);
}

void activationForward(float* out, const float* x, int64_t n, int kind, cudaStream_t s) {
  if (n <= 0) return;
  launch("activationForward", actForwardKernel, gridFor(n, kThreads), kThreads, 0, s, out, x, n, kind);
}

void activationBackward(float* dx, const float* dout, const float* x, int64_t n, int kind, cudaStream_t s) {
  if (n <= 0) return;
  launch("activationBackward", actBackwardKernel, gridFor(n, kThreads), kThreads, 0, s, dx, dout, x, n, kind);
}

}  // namespace cuda
}  // namespace lmf
