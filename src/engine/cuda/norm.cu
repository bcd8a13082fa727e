// RMSNorm and LayerNorm over rows of length d (input f32, the residual stream; output and its gradient f32 or bf16): one block per row for the forward and for dx; weight/bias
// gradients go through per-row-block column partials (double) summed in order, so no atomics are needed.
#include "device.cuh"
#include "kernels.cuh"
#include "norm_rows.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kRowsPerPartial = 128;

template <typename T>
__global__ void rmsForwardKernel(T* out, float* rstd, const float* x, const float* w, int64_t d, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * d;
  float ss = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) ss += xr[j] * xr[j];
  rmsRow(out + r * d, rstd + r, xr, ss, w, d, eps, sh);
}

template <typename T>
__global__ void rmsBackwardDxKernel(float* dx, const T* dout, const float* x, const float* w, const float* rstd,
                                    int64_t d, bool acc) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * d;
  const T* g = dout + r * d;
  float dot = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dot += ldf(g, j) * w[j] * xr[j];
  dot = blockSum(dot, sh);
  const float s = rstd[r];
  const float c = dot * s * s * s / float(d);
  float* o = dx + r * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float v = s * ldf(g, j) * w[j] - xr[j] * c;
    o[j] = acc ? o[j] + v : v;
  }
}

// grid (column blocks, row blocks): partial dw (and db) per row block.
template <typename T>
__global__ void rmsDwPartialKernel(double* partials, const T* dout, const float* x, const float* rstd, int64_t rows,
                                   int64_t d) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  const int64_t r0 = blockIdx.y * kRowsPerPartial, r1 = min(rows, r0 + kRowsPerPartial);
  double acc = 0;
  for (int64_t r = r0; r < r1; r++) acc += double(ldf(dout, r * d + c)) * x[r * d + c] * rstd[r];
  partials[blockIdx.y * d + c] = acc;
}

template <typename T>
__global__ void lnForwardKernel(T* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                                int64_t d, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * d;
  float sum = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) sum += xr[j];
  lnRow(out + r * d, mean + r, rstd + r, xr, sum, w, b, d, eps, sh);
}

template <typename T>
__global__ void lnBackwardDxKernel(float* dx, const T* dout, const float* x, const float* w, const float* mean,
                                   const float* rstd, int64_t d, bool acc) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * d;
  const T* g = dout + r * d;
  const float m = mean[r], s = rstd[r];
  float sg = 0, sgx = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float gw = ldf(g, j) * w[j];
    sg += gw;
    sgx += gw * (xr[j] - m) * s;
  }
  sg = blockSum(sg, sh) / float(d);
  sgx = blockSum(sgx, sh) / float(d);
  float* o = dx + r * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float v = s * (ldf(g, j) * w[j] - sg - (xr[j] - m) * s * sgx);
    o[j] = acc ? o[j] + v : v;
  }
}

template <typename T>
__global__ void lnDwPartialKernel(double* partials, const T* dout, const float* x, const float* mean,
                                  const float* rstd, int64_t rows, int64_t d, int64_t rowBlocks) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  const int64_t r0 = blockIdx.y * kRowsPerPartial, r1 = min(rows, r0 + kRowsPerPartial);
  double aw = 0, ab = 0;
  for (int64_t r = r0; r < r1; r++) {
    const double g = ldf(dout, r * d + c);
    aw += g * ((x[r * d + c] - mean[r]) * rstd[r]);
    ab += g;
  }
  partials[blockIdx.y * d + c] = aw;
  partials[(rowBlocks + blockIdx.y) * d + c] = ab;
}

// out[c] += sum over row blocks of partials[b * d + c], in block order.
__global__ void partialFinalKernel(float* out, const double* partials, int64_t blocks, int64_t d) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  double acc = 0;
  for (int64_t b = 0; b < blocks; b++) acc += partials[b * d + c];
  out[c] += static_cast<float>(acc);
}

int64_t rowBlocks(int64_t rows) { return (rows + kRowsPerPartial - 1) / kRowsPerPartial; }
unsigned colGrid(int64_t d) { return static_cast<unsigned>((d + kThreads - 1) / kThreads); }

}  // namespace

int64_t normPartials(int64_t rows, int64_t d, int64_t columnsPerSum) { return rowBlocks(rows) * d * columnsPerSum; }

void rmsnormForward(DevAct out, float* rstd, const float* x, const float* w, int64_t rows, int64_t d, float eps,
                    cudaStream_t s) {
  if (rows <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("rmsnormForward", rmsForwardKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, actPtr<T>(out.p), rstd,
           x, w, d, eps);
  });
}

void rmsnormBackward(float* dx, float* dw, DevActIn dout, const float* x, const float* w, const float* rstd,
                     int64_t rows, int64_t d, bool accumulateDx, double* partials, cudaStream_t s) {
  if (rows <= 0) return;
  const int64_t rb = rowBlocks(rows);
  withAct(dout.bf16, [&](auto t) {
    using T = decltype(t);
    const T* g = actPtr<T>(dout.p);
    launch("rmsnormBackward", rmsBackwardDxKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, dx, g, x, w, rstd, d,
           accumulateDx);
    launch("rmsnormBackward", rmsDwPartialKernel<T>, dim3(colGrid(d), static_cast<unsigned>(rb)), kThreads, 0, s,
           partials, g, x, rstd, rows, d);
  });
  launch("rmsnormBackward", partialFinalKernel, colGrid(d), kThreads, 0, s, dw, partials, rb, d);
}

void layernormForward(DevAct out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                      int64_t rows, int64_t d, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("layernormForward", lnForwardKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, actPtr<T>(out.p), mean,
           rstd, x, w, b, d, eps);
  });
}

void layernormBackward(float* dx, float* dw, float* db, DevActIn dout, const float* x, const float* w,
                       const float* mean, const float* rstd, int64_t rows, int64_t d, bool accumulateDx,
                       double* partials, cudaStream_t s) {
  if (rows <= 0) return;
  const int64_t rb = rowBlocks(rows);
  withAct(dout.bf16, [&](auto t) {
    using T = decltype(t);
    const T* g = actPtr<T>(dout.p);
    launch("layernormBackward", lnBackwardDxKernel<T>, static_cast<unsigned>(rows), kThreads, 0, s, dx, g, x, w, mean,
           rstd, d, accumulateDx);
    launch("layernormBackward", lnDwPartialKernel<T>, dim3(colGrid(d), static_cast<unsigned>(rb)), kThreads, 0, s,
           partials, g, x, mean, rstd, rows, d, rb);
  });
  launch("layernormBackward", partialFinalKernel, colGrid(d), kThreads, 0, s, dw, partials, rb, d);
  launch("layernormBackward", partialFinalKernel, colGrid(d), kThreads, 0, s, db, partials + rb * d, rb, d);
}

}  // namespace cuda
}  // namespace lmf
