// Fills, elementwise add/scale, the f32 -> bf16 operand conversion of the GEMMs, and the deterministic
// reductions (sum of squares, column sums) that replace atomics: per-block partials in double, then one
// ordered pass, so results do not depend on scheduling.
#include <cuda_bf16.h>

#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kReduceChunk = 1 << 16;  // elements per sumSquares partial
constexpr int64_t kColRows = 256;          // rows per columnSums partial

template <typename T>
__global__ void fillKernel(T* x, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] = v;
}

__global__ void addKernel(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void scaleKernel(float* x, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] *= v;
}

__global__ void toBf16Kernel(__nv_bfloat16* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[i] = __float2bfloat16_rn(src[r * ld + c]);
  }
}

// Packed fast path: 4 floats in, 4 bf16 out per thread.
__global__ void toBf16PackedKernel(__nv_bfloat162* dst, const float4* src, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = src[i];
    dst[2 * i] = __floats2bfloat162_rn(v.x, v.y);
    dst[2 * i + 1] = __floats2bfloat162_rn(v.z, v.w);
  }
}

template <typename T>
__global__ void broadcastRowsKernel(T* c, const float* bias, int64_t rows, int64_t cols, int64_t ldc) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, col = i - r * cols;
    stf(c, r * ldc + col, bias[col]);
  }
}

// dst[r * ldd + c] = src[r * lds + c], converted between f32 and bf16 (either way, or neither).
template <typename TD, typename TS>
__global__ void convertRowsKernel(TD* dst, int64_t ldd, const TS* src, int64_t lds, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    stf(dst, r * ldd + c, ldf(src, r * lds + c));
  }
}

// One block per chunk of kReduceChunk elements.
__global__ void sumSquaresPartialKernel(double* partials, const float* x, int64_t n) {
  __shared__ double sh[32];
  const int64_t b0 = blockIdx.x * kReduceChunk, b1 = min(n, b0 + kReduceChunk);
  double acc = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) acc += double(x[i]) * x[i];
  acc = blockSum(acc, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One block adds the partials in a fixed order into out[0].
__global__ void sumF64Kernel(double* out, const double* x, int64_t n) {
  __shared__ double sh[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  acc = blockSum(acc, sh);
  if (threadIdx.x == 0) out[0] += acc;
}

// grid (column blocks, row blocks): partials[rb * cols + c] = sum of rows [rb*kColRows, ...) of column c.
template <typename T>
__global__ void colSumPartialKernel(double* partials, const T* dy, int64_t rows, int64_t cols, int64_t ldy) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = blockIdx.y * kColRows, r1 = min(rows, r0 + kColRows);
  double acc = 0;
  for (int64_t r = r0; r < r1; r++) acc += ldf(dy, r * ldy + c);
  partials[blockIdx.y * cols + c] = acc;
}

__global__ void colSumFinalKernel(float* db, const double* partials, int64_t blocks, int64_t cols) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  double acc = 0;
  for (int64_t b = 0; b < blocks; b++) acc += partials[b * cols + c];
  db[c] += static_cast<float>(acc);
}

template <typename T>
void fillT(T* x, int64_t n, T v, cudaStream_t s) {
  if (n > 0) launch("fill", fillKernel<T>, gridFor(n, kThreads), kThreads, 0, s, x, n, v);
}

}  // namespace

void fillF32(float* x, int64_t n, float v, cudaStream_t s) { fillT(x, n, v, s); }
void fillF64(double* x, int64_t n, double v, cudaStream_t s) { fillT(x, n, v, s); }
void fillI32(int32_t* x, int64_t n, int32_t v, cudaStream_t s) { fillT(x, n, v, s); }
void fillBf16(bf16raw* x, int64_t n, bf16raw v, cudaStream_t s) { fillT(x, n, v, s); }
void addF32(float* out, const float* a, const float* b, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  launch("add", addKernel, gridFor(n, kThreads), kThreads, 0, s, out, a, b, n);
}
void scaleF32(float* x, int64_t n, float v, cudaStream_t s) {
  if (n <= 0) return;
  launch("scale", scaleKernel, gridFor(n, kThreads), kThreads, 0, s, x, n, v);
}

void toBf16(bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  auto* out = reinterpret_cast<__nv_bfloat16*>(dst);
  const bool packed = ld == cols && n % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(dst) % 8 == 0;
  if (packed) {
    launch("toBf16", toBf16PackedKernel, gridFor(n / 4, kThreads), kThreads, 0, s,
           reinterpret_cast<__nv_bfloat162*>(out), reinterpret_cast<const float4*>(src), n / 4);
  } else {
    launch("toBf16", toBf16Kernel, gridFor(n, kThreads), kThreads, 0, s, out, src, rows, cols, ld);
  }
}

void broadcastRows(DevAct c, const float* bias, int64_t rows, int64_t cols, int64_t ldc, cudaStream_t s) {
  if (rows * cols <= 0) return;
  withAct(c.bf16, [&](auto t) {
    using T = decltype(t);
    launch("matmul bias", broadcastRowsKernel<T>, gridFor(rows * cols, kThreads), kThreads, 0, s, actPtr<T>(c.p), bias,
           rows, cols, ldc);
  });
}

void convertRows(DevAct dst, int64_t ldd, DevActIn src, int64_t lds, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols <= 0) return;
  withAct(dst.bf16, [&](auto td) {
    using TD = decltype(td);
    withAct(src.bf16, [&](auto ts) {
      using TS = decltype(ts);
      launch("convert", convertRowsKernel<TD, TS>, gridFor(rows * cols, kThreads), kThreads, 0, s, actPtr<TD>(dst.p), ldd,
             actPtr<TS>(src.p), lds, rows, cols);
    });
  });
}

int64_t reducePartials(int64_t n) { return (n + kReduceChunk - 1) / kReduceChunk; }

void sumSquares(double* out, const float* x, int64_t n, double* partials, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t blocks = reducePartials(n);
  launch("sumSquares", sumSquaresPartialKernel, static_cast<unsigned>(blocks), kThreads, 0, s, partials, x, n);
  launch("sumSquares", sumF64Kernel, 1, 1024, 0, s, out, partials, blocks);
}

void sumF64(double* out, const double* x, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  launch("sum", sumF64Kernel, 1, 1024, 0, s, out, x, n);
}

int64_t colSumPartials(int64_t rows, int64_t cols) { return ((rows + kColRows - 1) / kColRows) * cols; }

void columnSums(float* db, DevActIn dy, int64_t rows, int64_t cols, int64_t ldy, double* partials, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t rb = (rows + kColRows - 1) / kColRows;
  dim3 grid(static_cast<unsigned>((cols + kThreads - 1) / kThreads), static_cast<unsigned>(rb));
  withAct(dy.bf16, [&](auto t) {
    using T = decltype(t);
    launch("biasGrad", colSumPartialKernel<T>, grid, kThreads, 0, s, partials, actPtr<T>(dy.p), rows, cols, ldy);
  });
  launch("biasGrad", colSumFinalKernel, static_cast<unsigned>((cols + kThreads - 1) / kThreads), kThreads, 0, s, db,
         partials, rb, cols);
}

}  // namespace cuda
}  // namespace lmf
