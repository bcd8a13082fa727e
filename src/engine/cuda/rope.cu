// The attention prologue: per-head RMSNorm of q and k (QK-norm) then half-split RoPE, one warp per
// (token, head), packing q|k into [N, (heads+kvHeads)*headDim]; qkv, out and their gradients f32 or bf16. The
// backward computes dx per (token, head) in blocks of kTokensPerPartial tokens, and in the same pass each warp adds
// the norm-weight gradient terms of its tasks into its own shared-memory row; the block sums its warps' rows in
// order into one partial per token block, and a last kernel sums the partials in block order (deterministic, no
// atomics, as norm.cu's weight gradients).
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kTokensPerPartial = 16;
constexpr size_t kDwSharedMax = 48 * 1024;  // the warps' weight-gradient rows stay within the default shared memory

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

// grid: blocks of kTokensPerPartial tokens; each warp takes the block's (token, head) tasks warp, warp + warps, ...
// With `partials` (a norm weight is given), dynamic shared memory holds one row of 2 * hd doubles per warp (q weight
// columns, then k weight columns), and the block writes their in-order sum as its partial.
template <typename T>
__global__ void prepBackwardKernel(T* dqkv, double* partials, const T* dout, const T* qkv, const float* rstd,
                                   const float* qw, const float* kw, const float* cosT, const float* sinT,
                                   const int32_t* pos, QkPrepShape sh) {
  LMF_DYNAMIC_SHARED(double, rows);
  const int64_t nh = sh.heads + sh.kvHeads, hd = sh.headDim, half = hd / 2;
  const int warps = blockDim.x / kWarp, warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  double* dwRow = partials ? rows + warp * 2 * hd : nullptr;
  if (dwRow)
    for (int64_t c = lane; c < 2 * hd; c += kWarp) dwRow[c] = 0;  // this warp's row: no other warp touches it
  const int64_t t0 = blockIdx.x * kTokensPerPartial, t1 = min(sh.n, t0 + kTokensPerPartial);
  for (int64_t task = t0 * nh + warp; task < t1 * nh; task += warps) {
    const int64_t t = task / nh, h = task % nh, p = pos ? pos[t] : t % sh.seq;
    const T* go = dout + task * hd;
    const T* x = qkv + t * sh.qkvStride + h * hd;
    T* dx = dqkv + t * sh.qkvStride + h * hd;
    const float* cs = cosT ? cosT + p * half : nullptr;
    const float* sn = sinT ? sinT + p * half : nullptr;
    const float* w = h < sh.heads ? qw : kw;
    if (!w) {
      for (int64_t i = lane; i < hd; i += kWarp) stf(dx, i, unrotated(go, cs, sn, i, half));
      continue;
    }
    const float r = rstd[task];
    float dot = 0;
    for (int64_t i = lane; i < hd; i += kWarp) dot += unrotated(go, cs, sn, i, half) * w[i] * ldf(x, i);
    dot = warpSum(dot);
    const float c = dot * r * r * r / float(hd);
    double* acc = dwRow ? dwRow + (h < sh.heads ? 0 : hd) : nullptr;
    // dx aliases nothing read by other lanes: each lane recomputes its own columns from dout.
    for (int64_t i = lane; i < hd; i += kWarp) {
      const float u = unrotated(go, cs, sn, i, half), xi = ldf(x, i);
      stf(dx, i, r * u * w[i] - xi * c);
      if (acc) acc[i] += double(u) * xi * r;
    }
  }
  if (!partials) return;
  __syncthreads();  // every warp's row is complete
  for (int64_t c = threadIdx.x; c < 2 * hd; c += blockDim.x) {
    double sum = 0;
    for (int wi = 0; wi < warps; wi++) sum += rows[wi * 2 * hd + c];
    partials[blockIdx.x * 2 * hd + c] = sum;
  }
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

// Warps per backward block: kWarpsPerBlock, or fewer when their weight-gradient rows would not fit kDwSharedMax.
int backwardWarps(int64_t hd, bool dw) {
  if (!dw) return kWarpsPerBlock;
  const int64_t fit = static_cast<int64_t>(kDwSharedMax / (2 * hd * sizeof(double)));
  return static_cast<int>(fit < kWarpsPerBlock ? (fit < 1 ? 1 : fit) : kWarpsPerBlock);
}

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

bool qkPrepBackwardSupported(int64_t headDim) { return 2 * headDim * int64_t(sizeof(double)) <= int64_t(kDwSharedMax); }

void qkPrepBackward(DevAct dqkv, float* dqw, float* dkw, DevActIn dout, DevActIn qkv, const float* rstd,
                    const float* qw, const float* kw, const float* cosT, const float* sinT, const int32_t* positions,
                    const QkPrepShape& sh, double* partials, cudaStream_t s) {
  if (sh.n * (sh.heads + sh.kvHeads) <= 0) return;
  const bool dw = qw || kw;
  const int64_t blocks = (sh.n + kTokensPerPartial - 1) / kTokensPerPartial;
  const int warps = backwardWarps(sh.headDim, dw);
  const size_t smem = dw ? size_t(warps) * 2 * sh.headDim * sizeof(double) : 0;
  withAct(dqkv.bf16, [&](auto t) {
    using T = decltype(t);
    launch("qkPrepBackward", prepBackwardKernel<T>, static_cast<unsigned>(blocks), warps * kWarp, smem, s,
           actPtr<T>(dqkv.p), dw ? partials : nullptr, actPtr<T>(dout.p), actPtr<T>(qkv.p), rstd, qw, kw, cosT, sinT,
           positions, sh);
  });
  if (!dw) return;
  const int threads = 128;
  const unsigned colBlocks = static_cast<unsigned>((2 * sh.headDim + threads - 1) / threads);
  launch("qkPrepBackward", prepDwFinalKernel, colBlocks, threads, 0, s, dqw, dkw, partials, blocks, sh.headDim);
}

}  // namespace cuda
}  // namespace lmf
