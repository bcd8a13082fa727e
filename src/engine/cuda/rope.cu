// The attention prologue: per-head RMSNorm of q and k (QK-norm) then half-split RoPE, one warp per
// (token, head), packing q|k into [N, (heads+kvHeads)*headDim]; qkv, out and their gradients f32 or bf16. The backward computes dx per (token, head);
// the norm-weight gradients come from a second kernel that recomputes the un-rotated gradient per column
// and sums fixed token blocks in order (deterministic, no atomics).
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kTokensPerPartial = 64;

template <typename T>
__global__ void prepForwardKernel(T* out, float* rstd, const T* qkv, const float* qw, const float* kw,
                                  const float* cosT, const float* sinT, const int32_t* pos, QkPrepShape sh, float eps) {
  const int64_t nh = sh.heads + sh.kvHeads, hd = sh.headDim;
  const int64_t task = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (task >= sh.n * nh) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = task / nh, h = task % nh, p = pos ? pos[t] : t % sh.seq;
  const T* x = qkv + t * sh.qkvStride + h * hd;
  T* o = out + task * hd;
  const float* w = h < sh.heads ? qw : kw;
  float r = 1.f;
  if (w) {
    float ss = 0;
    for (int64_t i = lane; i < hd; i += kWarp) ss += ldf(x, i) * ldf(x, i);
    ss = warpSum(ss);
    r = rsqrtf(ss / float(hd) + eps);
    if (rstd && lane == 0) rstd[task] = r;
  } else if (rstd && lane == 0) {
    rstd[task] = 1.f;
  }
  if (cosT) {
    const int64_t half = hd / 2;
    const float* cs = cosT + p * half;
    const float* sn = sinT + p * half;
    for (int64_t i = lane; i < half; i += kWarp) {
      float y1 = ldf(x, i), y2 = ldf(x, i + half);
      if (w) {
        y1 *= r * w[i];
        y2 *= r * w[i + half];
      }
      stf(o, i, y1 * cs[i] - y2 * sn[i]);
      stf(o, i + half, y2 * cs[i] + y1 * sn[i]);
    }
  } else {
    for (int64_t i = lane; i < hd; i += kWarp) stf(o, i, w ? ldf(x, i) * r * w[i] : ldf(x, i));
  }
}

// The gradient with respect to the normalised (un-rotated) value at column i of (token t, head h).
template <typename T>
__device__ __forceinline__ float unrotated(const T* go, const float* cs, const float* sn, int64_t i, int64_t half) {
  if (!cs) return ldf(go, i);
  if (i < half) return ldf(go, i) * cs[i] + ldf(go, i + half) * sn[i];
  const int64_t k = i - half;
  return ldf(go, i) * cs[k] - ldf(go, k) * sn[k];
}

template <typename T>
__global__ void prepBackwardKernel(T* dqkv, const T* dout, const T* qkv, const float* rstd, const float* qw,
                                   const float* kw, const float* cosT, const float* sinT, const int32_t* pos,
                                   QkPrepShape sh) {
  const int64_t nh = sh.heads + sh.kvHeads, hd = sh.headDim, half = hd / 2;
  const int64_t task = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (task >= sh.n * nh) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = task / nh, h = task % nh, p = pos ? pos[t] : t % sh.seq;
  const T* go = dout + task * hd;
  const T* x = qkv + t * sh.qkvStride + h * hd;
  T* dx = dqkv + t * sh.qkvStride + h * hd;
  const float* cs = cosT ? cosT + p * half : nullptr;
  const float* sn = sinT ? sinT + p * half : nullptr;
  const float* w = h < sh.heads ? qw : kw;
  if (!w) {
    for (int64_t i = lane; i < hd; i += kWarp) stf(dx, i, unrotated(go, cs, sn, i, half));
    return;
  }
  const float r = rstd[task];
  float dot = 0;
  for (int64_t i = lane; i < hd; i += kWarp) dot += unrotated(go, cs, sn, i, half) * w[i] * ldf(x, i);
  dot = warpSum(dot);
  const float c = dot * r * r * r / float(hd);
  // dx aliases nothing read by other lanes: each lane recomputes its own columns from dout.
  for (int64_t i = lane; i < hd; i += kWarp) stf(dx, i, r * unrotated(go, cs, sn, i, half) * w[i] - ldf(x, i) * c);
}

// grid (token blocks), threads = columns (2 * hd: q weight columns then k weight columns).
template <typename T>
__global__ void prepDwPartialKernel(double* partials, const T* dout, const T* qkv, const float* rstd,
                                    const float* cosT, const float* sinT, const int32_t* pos, QkPrepShape sh) {
  const int64_t nh = sh.heads + sh.kvHeads, hd = sh.headDim, half = hd / 2;
  const int64_t col = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (col >= 2 * hd) return;
  const bool isK = col >= hd;
  const int64_t i = isK ? col - hd : col;
  const int64_t h0 = isK ? sh.heads : 0, h1 = isK ? nh : sh.heads;
  const int64_t t0 = blockIdx.x * kTokensPerPartial, t1 = min(sh.n, t0 + kTokensPerPartial);
  double acc = 0;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t p = pos ? pos[t] : t % sh.seq;
    const float* cs = cosT ? cosT + p * half : nullptr;
    const float* sn = sinT ? sinT + p * half : nullptr;
    for (int64_t h = h0; h < h1; h++) {
      const int64_t task = t * nh + h;
      const float g = unrotated(dout + task * hd, cs, sn, i, half);
      acc += double(g) * ldf(qkv, t * sh.qkvStride + h * hd + i) * rstd[task];
    }
  }
  partials[blockIdx.x * 2 * hd + col] = acc;
}

__global__ void prepDwFinalKernel(float* dqw, float* dkw, const double* partials, int64_t blocks, int64_t hd) {
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (col >= 2 * hd) return;
  double acc = 0;
  for (int64_t b = 0; b < blocks; b++) acc += partials[b * 2 * hd + col];
  if (col < hd) {
    if (dqw) dqw[col] += static_cast<float>(acc);
  } else if (dkw) {
    dkw[col - hd] += static_cast<float>(acc);
  }
}

unsigned warpGrid(int64_t tasks) { return static_cast<unsigned>((tasks + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

void qkPrepForward(DevAct out, float* rstd, DevActIn qkv, const float* qw, const float* kw, const float* cosT,
                   const float* sinT, const int32_t* positions, const QkPrepShape& sh, float eps, cudaStream_t s) {
  const int64_t tasks = sh.n * (sh.heads + sh.kvHeads);
  if (tasks <= 0) return;
  withAct(out.bf16, [&](auto t) {
    using T = decltype(t);
    launch("qkPrepForward", prepForwardKernel<T>, warpGrid(tasks), kWarpsPerBlock * kWarp, 0, s, actPtr<T>(out.p), rstd,
           actPtr<T>(qkv.p), qw, kw, cosT, sinT, positions, sh, eps);
  });
}

int64_t qkPrepPartials(const QkPrepShape& sh) {
  return ((sh.n + kTokensPerPartial - 1) / kTokensPerPartial) * 2 * sh.headDim;
}

void qkPrepBackward(DevAct dqkv, float* dqw, float* dkw, DevActIn dout, DevActIn qkv, const float* rstd,
                    const float* qw, const float* kw, const float* cosT, const float* sinT, const int32_t* positions,
                    const QkPrepShape& sh, double* partials, cudaStream_t s) {
  const int64_t tasks = sh.n * (sh.heads + sh.kvHeads);
  if (tasks <= 0) return;
  withAct(dqkv.bf16, [&](auto t) {
    using T = decltype(t);
    launch("qkPrepBackward", prepBackwardKernel<T>, warpGrid(tasks), kWarpsPerBlock * kWarp, 0, s, actPtr<T>(dqkv.p),
           actPtr<T>(dout.p), actPtr<T>(qkv.p), rstd, qw, kw, cosT, sinT, positions, sh);
    if (!qw && !kw) return;
    const int64_t blocks = (sh.n + kTokensPerPartial - 1) / kTokensPerPartial;
    const int threads = 128;
    const unsigned colBlocks = static_cast<unsigned>((2 * sh.headDim + threads - 1) / threads);
    launch("qkPrepBackward", prepDwPartialKernel<T>, dim3(static_cast<unsigned>(blocks), colBlocks), threads, 0, s,
           partials, actPtr<T>(dout.p), actPtr<T>(qkv.p), rstd, cosT, sinT, positions, sh);
    launch("qkPrepBackward", prepDwFinalKernel, colBlocks, threads, 0, s, dqw, dkw, partials, blocks, sh.headDim);
  });
}

}  // namespace cuda
}  // namespace lmf
