// Causal attention with grouped-query heads, flash-attention style: scores live only in registers for one
// 32x32 tile at a time, with an online softmax, so nothing of size T x T is ever stored. Forward saves the
// log-sum-exp per row; backward recomputes the probabilities from it (FlashAttention-2's scheme):
//   1. D[i] = dot(dO[i], O[i]) per row and head,
//   2. dK, dV: one block per (key tile, batch, kv head) loops over every query head of its group and every
//      query tile at or after it, accumulating in registers: no atomics, fixed order,
//   3. dQ: one block per (query tile, batch, head) loops over the key tiles up to the diagonal.
// Layout: 4 warps per block, each warp owns 8 rows of the tile; a lane owns one key (or query) of the other
// tile while scoring, and columns lane, lane+32, ... of head_dim while accumulating. All math is fp32.
// The same forward kernel serves decoding: queries at absolute positions past.. over past + seq cached keys.
// Document masking (varlen): with cumulative sequence lengths `cu` (sh.segments documents), query i also skips
// keys before its document's start, and the tile loops start (forward, dQ) or stop (dK/dV) at document bounds.
#include "device.cuh"
#include "documents.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kRows = 32;  // query rows (or keys) per tile; = warp size, one lane per row of the other tile
constexpr int kWarps = 4;
constexpr int kRowsPerWarp = kRows / kWarps;
constexpr int kThreads = kWarps * kWarp;

// Shared-memory row stride: odd, so lane-strided column reads of a tile hit 32 different banks.
__device__ __host__ __forceinline__ int smemLd(int hd) { return hd | 1; }

// Loads rows [r0, r0 + kRows) (row stride `stride`) of one head into a tile; rows past `limit` become zeros.
template <typename T>
__device__ __forceinline__ void loadTile(float* dst, const T* src, int64_t r0, int64_t limit, int64_t stride,
                                         int hd, int ld, float mul) {
  for (int idx = threadIdx.x; idx < kRows * hd; idx += kThreads) {
    const int r = idx / hd, c = idx - r * hd;
    dst[r * ld + c] = (r0 + r < limit) ? ldf(src, (r0 + r) * stride + c) * mul : 0.f;
  }
}


__device__ __forceinline__ float dotRow(const float* a, const float* b, int hd) {
  float s = 0.f;
#pragma unroll 4
  for (int c = 0; c < hd; c++) s += a[c] * b[c];
  return s;
}

template <int HC, typename T>
__global__ void __launch_bounds__(kThreads) forwardKernel(T* out, float* lse, const T* q, const T* k,
                                                          const T* v, AttentionShape sh, const int32_t* cu) {
  LMF_DYNAMIC_SHARED(float, smem);
  const int hd = static_cast<int>(sh.headDim), ld = smemLd(hd);
  float* Qs = smem;
  float* Ks = Qs + kRows * ld;
  float* Vs = Ks + kRows * ld;
  const int64_t b = blockIdx.y / sh.heads, h = blockIdx.y % sh.heads, kh = h / (sh.heads / sh.kvHeads);
  const int64_t q0 = int64_t(blockIdx.x) * kRows;
  const T* Q = q + b * sh.seq * sh.sq + h * hd;
  const T* K = k + b * sh.keys() * sh.sk + kh * hd;
  const T* V = v + b * sh.keys() * sh.sv + kh * hd;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  loadTile(Qs, Q, q0, sh.seq, sh.sq, hd, ld, sh.scale);  // pre-scaled queries

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][HC];
  int64_t first[kRowsPerWarp];  // each row's first visible key (its document's start)
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; rr++) {
    m[rr] = -INFINITY;
    l[rr] = 0.f;
    const int64_t qi = q0 + warp * kRowsPerWarp + rr;
    first[rr] = qi < sh.seq ? docOf(sh, cu, b, qi).start : 0;
#pragma unroll
    for (int t = 0; t < HC; t++) acc[rr][t] = 0.f;
  }
  const int64_t lastRow = min(sh.seq, q0 + kRows) - 1;
  const int64_t kEnd = min(sh.keys(), sh.past + lastRow + 1);  // keys [0, kEnd) are visible to some row
  // Documents only move forward with the row: the tile's first row has the earliest first key.
  const int64_t kBegin = (docOf(sh, cu, b, q0).start / kRows) * kRows;
  for (int64_t k0 = kBegin; k0 < kEnd; k0 += kRows) {
    __syncthreads();  // the previous tiles are consumed (and Qs is loaded on the first pass)
    loadTile(Ks, K, k0, sh.keys(), sh.sk, hd, ld, 1.f);
    loadTile(Vs, V, k0, sh.keys(), sh.sv, hd, ld, 1.f);
    __syncthreads();
    const int64_t j = k0 + lane;
    // Scores and probabilities of this warp's rows first, then one pass over V that reuses each V value for
    // all rows (keeps the register arrays statically indexed).
    float p[kRowsPerWarp];
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t qi = q0 + r, pos = sh.past + qi;
      p[rr] = 0.f;
      // Uniform across the warp: the row sees no key of this tile (past the diagonal, or before its document).
      if (qi >= sh.seq || k0 > pos || k0 + kRows <= first[rr]) continue;
      const bool valid = j <= pos && j < sh.keys() && j >= first[rr];
      const float s = valid ? dotRow(Qs + r * ld, Ks + lane * ld, hd) : -INFINITY;
      // The tile holds key max(k0, first) <= pos, which is valid, so mNew is finite.
      const float mNew = fmaxf(m[rr], warpMax(s));
      p[rr] = valid ? expf(s - mNew) : 0.f;
      const float corr = expf(m[rr] - mNew);
      l[rr] = l[rr] * corr + warpSum(p[rr]);
      m[rr] = mNew;
#pragma unroll
      for (int t = 0; t < HC; t++) acc[rr][t] *= corr;
    }
    for (int jj = 0; jj < kWarp; jj++) {
#pragma unroll
      for (int t = 0; t < HC; t++) {
        const int c = lane + t * kWarp;
        const float vv = c < hd ? Vs[jj * ld + c] : 0.f;
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; rr++) acc[rr][t] += __shfl_sync(0xffffffffu, p[rr], jj) * vv;
      }
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; rr++) {
    const int64_t qi = q0 + warp * kRowsPerWarp + rr;
    if (qi >= sh.seq) continue;
    T* O = out + (b * sh.seq + qi) * (sh.heads * hd) + h * hd;
    const float inv = 1.f / l[rr];
#pragma unroll
    for (int t = 0; t < HC; t++) {
      const int c = lane + t * kWarp;
      if (c < hd) stf(O, c, acc[rr][t] * inv);
    }
    if (lse && lane == 0) lse[(b * sh.heads + h) * sh.seq + qi] = m[rr] + logf(l[rr]);
  }
}

// D[(b*heads + h)*seq + i] = dot(dO, O) of row i, head h: one warp per (row, head).
template <typename T>
__global__ void rowDotKernel(float* D, const T* dout, const T* out, AttentionShape sh) {
  const int64_t task = blockIdx.x * int64_t(kWarps) + threadIdx.x / kWarp;
  const int64_t rows = sh.batch * sh.seq;
  if (task >= rows * sh.heads) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t row = task / sh.heads, h = task % sh.heads, hd = sh.headDim;
  const T* o = out + row * sh.heads * hd + h * hd;
  const T* g = dout + row * sh.heads * hd + h * hd;
  float s = 0;
  for (int64_t c = lane; c < hd; c += kWarp) s += ldf(o, c) * ldf(g, c);
  s = warpSum(s);
  const int64_t b = row / sh.seq, i = row % sh.seq;
  if (lane == 0) D[(b * sh.heads + h) * sh.seq + i] = s;
}

template <int HC, typename T>
__global__ void __launch_bounds__(kThreads) dkdvKernel(T* dk, T* dv, const T* dout, const T* q,
                                                       const T* k, const T* v, const float* lse,
                                                       const float* D, AttentionShape sh, const int32_t* cu) {
  LMF_DYNAMIC_SHARED(float, smem);
  const int hd = static_cast<int>(sh.headDim), ld = smemLd(hd);
  float* Ks = smem;
  float* Vs = Ks + kRows * ld;
  float* Qs = Vs + kRows * ld;
  float* dOs = Qs + kRows * ld;
  float* Ls = dOs + kRows * ld;
  float* Ds = Ls + kRows;
  const int64_t b = blockIdx.y / sh.kvHeads, kh = blockIdx.y % sh.kvHeads, group = sh.heads / sh.kvHeads;
  const int64_t k0 = int64_t(blockIdx.x) * kRows;
  const int64_t od = sh.heads * hd;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  loadTile(Ks, k + b * sh.keys() * sh.sk + kh * hd, k0, sh.keys(), sh.sk, hd, ld, 1.f);
  loadTile(Vs, v + b * sh.keys() * sh.sv + kh * hd, k0, sh.keys(), sh.sv, hd, ld, 1.f);
  float dK[kRowsPerWarp][HC], dV[kRowsPerWarp][HC];
  int64_t last[kRowsPerWarp];  // one past each key's last query (its document's end)
#pragma unroll
  for (int jj = 0; jj < kRowsPerWarp; jj++) {
    const int64_t j = k0 + warp * kRowsPerWarp + jj;
    last[jj] = j < sh.keys() ? docOf(sh, cu, b, j).end : 0;
#pragma unroll
    for (int t = 0; t < HC; t++) dK[jj][t] = dV[jj][t] = 0.f;
  }
  // The tile's last key has the latest document end.
  const int64_t qEnd = docOf(sh, cu, b, min(sh.keys(), k0 + kRows) - 1).end;

  for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
    const T* Q = q + b * sh.seq * sh.sq + h * hd;
    const T* dO = dout + b * sh.seq * od + h * hd;
    const float* L = lse + (b * sh.heads + h) * sh.seq;
    const float* Dh = D + (b * sh.heads + h) * sh.seq;
    for (int64_t q0 = (k0 / kRows) * kRows; q0 < qEnd; q0 += kRows) {
      __syncthreads();
      loadTile(Qs, Q, q0, sh.seq, sh.sq, hd, ld, 1.f);
      loadTile(dOs, dO, q0, sh.seq, od, hd, ld, 1.f);
      if (threadIdx.x < kRows) {
        const int64_t i = q0 + threadIdx.x;
        Ls[threadIdx.x] = i < sh.seq ? L[i] : 0.f;
        Ds[threadIdx.x] = i < sh.seq ? Dh[i] : 0.f;
      }
      __syncthreads();
      const int64_t i = q0 + lane;  // this lane's query
      float p[kRowsPerWarp], ds[kRowsPerWarp];
#pragma unroll
      for (int jj = 0; jj < kRowsPerWarp; jj++) {
        const int jl = warp * kRowsPerWarp + jj;
        const int64_t j = k0 + jl;
        p[jj] = 0.f;
        ds[jj] = 0.f;
        if (j < sh.keys() && i < sh.seq && i >= j && i < last[jj]) {
          const float s = dotRow(Qs + lane * ld, Ks + jl * ld, hd) * sh.scale;
          p[jj] = expf(s - Ls[lane]);
          const float dp = dotRow(dOs + lane * ld, Vs + jl * ld, hd);
          ds[jj] = p[jj] * (dp - Ds[lane]) * sh.scale;
        }
      }
      for (int ii = 0; ii < kWarp; ii++) {
#pragma unroll
        for (int t = 0; t < HC; t++) {
          const int c = lane + t * kWarp;
          const float go = c < hd ? dOs[ii * ld + c] : 0.f;
          const float qq = c < hd ? Qs[ii * ld + c] : 0.f;
#pragma unroll
          for (int jj = 0; jj < kRowsPerWarp; jj++) {
            dV[jj][t] += __shfl_sync(0xffffffffu, p[jj], ii) * go;
            dK[jj][t] += __shfl_sync(0xffffffffu, ds[jj], ii) * qq;
          }
        }
      }
    }
  }
#pragma unroll
  for (int jj = 0; jj < kRowsPerWarp; jj++) {
    const int64_t j = k0 + warp * kRowsPerWarp + jj;
    if (j >= sh.keys()) continue;
    T* dKr = dk + (b * sh.keys() + j) * sh.sk + kh * hd;
    T* dVr = dv + (b * sh.keys() + j) * sh.sv + kh * hd;
#pragma unroll
    for (int t = 0; t < HC; t++) {
      const int c = lane + t * kWarp;
      if (c < hd) {
        stf(dKr, c, dK[jj][t]);
        stf(dVr, c, dV[jj][t]);
      }
    }
  }
}

template <int HC, typename T>
__global__ void __launch_bounds__(kThreads) dqKernel(T* dq, const T* dout, const T* q, const T* k,
                                                     const T* v, const float* lse, const float* D,
                                                     AttentionShape sh, const int32_t* cu) {
  LMF_DYNAMIC_SHARED(float, smem);
  const int hd = static_cast<int>(sh.headDim), ld = smemLd(hd);
  float* Qs = smem;
  float* dOs = Qs + kRows * ld;
  float* Ks = dOs + kRows * ld;
  float* Vs = Ks + kRows * ld;
  const int64_t b = blockIdx.y / sh.heads, h = blockIdx.y % sh.heads, kh = h / (sh.heads / sh.kvHeads);
  const int64_t q0 = int64_t(blockIdx.x) * kRows;
  const int64_t od = sh.heads * hd;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  loadTile(Qs, q + b * sh.seq * sh.sq + h * hd, q0, sh.seq, sh.sq, hd, ld, 1.f);
  loadTile(dOs, dout + b * sh.seq * od + h * hd, q0, sh.seq, od, hd, ld, 1.f);
  const T* K = k + b * sh.keys() * sh.sk + kh * hd;
  const T* V = v + b * sh.keys() * sh.sv + kh * hd;
  float Lr[kRowsPerWarp], Dr[kRowsPerWarp], acc[kRowsPerWarp][HC];
  int64_t first[kRowsPerWarp];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; rr++) {
    const int64_t i = q0 + warp * kRowsPerWarp + rr;
    first[rr] = i < sh.seq ? docOf(sh, cu, b, i).start : 0;
    Lr[rr] = i < sh.seq ? lse[(b * sh.heads + h) * sh.seq + i] : 0.f;
    Dr[rr] = i < sh.seq ? D[(b * sh.heads + h) * sh.seq + i] : 0.f;
#pragma unroll
    for (int t = 0; t < HC; t++) acc[rr][t] = 0.f;
  }
  const int64_t lastRow = min(sh.seq, q0 + kRows) - 1;
  const int64_t kEnd = min(sh.keys(), lastRow + 1);
  for (int64_t k0 = (docOf(sh, cu, b, q0).start / kRows) * kRows; k0 < kEnd; k0 += kRows) {
    __syncthreads();
    loadTile(Ks, K, k0, sh.keys(), sh.sk, hd, ld, 1.f);
    loadTile(Vs, V, k0, sh.keys(), sh.sv, hd, ld, 1.f);
    __syncthreads();
    const int64_t j = k0 + lane;
    float ds[kRowsPerWarp];
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t i = q0 + r;
      ds[rr] = 0.f;
      if (i < sh.seq && j <= i && j < sh.keys() && j >= first[rr]) {
        const float s = dotRow(Qs + r * ld, Ks + lane * ld, hd) * sh.scale;
        const float p = expf(s - Lr[rr]);
        const float dp = dotRow(dOs + r * ld, Vs + lane * ld, hd);
        ds[rr] = p * (dp - Dr[rr]) * sh.scale;
      }
    }
    for (int jj = 0; jj < kWarp; jj++) {
#pragma unroll
      for (int t = 0; t < HC; t++) {
        const int c = lane + t * kWarp;
        const float kk = c < hd ? Ks[jj * ld + c] : 0.f;
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; rr++) acc[rr][t] += __shfl_sync(0xffffffffu, ds[rr], jj) * kk;
      }
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; rr++) {
    const int64_t i = q0 + warp * kRowsPerWarp + rr;
    if (i >= sh.seq) continue;
    T* dQr = dq + (b * sh.seq + i) * sh.sq + h * hd;
#pragma unroll
    for (int t = 0; t < HC; t++) {
      const int c = lane + t * kWarp;
      if (c < hd) stf(dQr, c, acc[rr][t]);
    }
  }
}


size_t tileBytes(int64_t hd, int tiles, int extraFloats) {
  return (size_t(tiles) * kRows * smemLd(static_cast<int>(hd)) + extraFloats) * sizeof(float);
}

template <int HC, typename T>
void forwardT(T* out, float* lse, const T* q, const T* k, const T* v, const AttentionShape& sh, const int32_t* cu,
              cudaStream_t s) {
  const size_t smem = tileBytes(sh.headDim, 3, 0);
  allowSmem(forwardKernel<HC, T>, smem, "attentionForward");
  dim3 grid(static_cast<unsigned>((sh.seq + kRows - 1) / kRows), static_cast<unsigned>(sh.batch * sh.heads));
  launch("attentionForward", forwardKernel<HC, T>, grid, kThreads, smem, s, out, lse, q, k, v, sh, cu);
}

template <int HC, typename T>
void backwardT(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const float* lse,
               const float* D, const AttentionShape& sh, const int32_t* cu, cudaStream_t s) {
  const size_t smemKV = tileBytes(sh.headDim, 4, 2 * kRows);
  allowSmem(dkdvKernel<HC, T>, smemKV, "attentionBackward");
  dim3 gridKV(static_cast<unsigned>((sh.keys() + kRows - 1) / kRows), static_cast<unsigned>(sh.batch * sh.kvHeads));
  launch("attentionBackward (dk, dv)", dkdvKernel<HC, T>, gridKV, kThreads, smemKV, s, dk, dv, dout, q, k, v, lse, D, sh,
         cu);
  const size_t smemQ = tileBytes(sh.headDim, 4, 0);
  allowSmem(dqKernel<HC, T>, smemQ, "attentionBackward");
  dim3 gridQ(static_cast<unsigned>((sh.seq + kRows - 1) / kRows), static_cast<unsigned>(sh.batch * sh.heads));
  launch("attentionBackward (dq)", dqKernel<HC, T>, gridQ, kThreads, smemQ, s, dq, dout, q, k, v, lse, D, sh, cu);
}

}  // namespace

bool attentionSupported(int64_t headDim) { return headDim >= 1 && headDim <= 4 * kWarp; }

void attentionForward(DevAct out, float* lse, DevActIn q, DevActIn k, DevActIn v, const AttentionShape& sh,
                      const int32_t* cu, cudaStream_t s) {
  if (sh.batch * sh.seq <= 0) return;
  withAct(out.bf16, [&](auto tag) {
    using T = decltype(tag);
    T* o = actPtr<T>(out.p);
    const T *qq = actPtr<T>(q.p), *kk = actPtr<T>(k.p), *vv = actPtr<T>(v.p);
    switch ((sh.headDim + kWarp - 1) / kWarp) {
      case 1: forwardT<1>(o, lse, qq, kk, vv, sh, cu, s); break;
      case 2: forwardT<2>(o, lse, qq, kk, vv, sh, cu, s); break;
      case 3: forwardT<3>(o, lse, qq, kk, vv, sh, cu, s); break;
      case 4: forwardT<4>(o, lse, qq, kk, vv, sh, cu, s); break;
      default: throw std::runtime_error("attentionForward: headDim above 128 is not supported by the CUDA kernel");
    }
  });
}

void attentionBackward(DevAct dq, DevAct dk, DevAct dv, DevActIn dout, DevActIn q, DevActIn k, DevActIn v,
                       DevActIn out, const float* lse, const AttentionShape& sh, const int32_t* cu, float* scratch,
                       cudaStream_t s) {
  if (sh.batch * sh.seq <= 0) return;
  const int64_t tasks = sh.batch * sh.seq * sh.heads;
  withAct(dq.bf16, [&](auto tag) {
    using T = decltype(tag);
    T *dQ = actPtr<T>(dq.p), *dK = actPtr<T>(dk.p), *dV = actPtr<T>(dv.p);
    const T *g = actPtr<T>(dout.p), *qq = actPtr<T>(q.p), *kk = actPtr<T>(k.p), *vv = actPtr<T>(v.p);
    launch("attentionBackward (rowdot)", rowDotKernel<T>, static_cast<unsigned>((tasks + kWarps - 1) / kWarps), kThreads,
           0, s, scratch, g, actPtr<T>(out.p), sh);
    switch ((sh.headDim + kWarp - 1) / kWarp) {
      case 1: backwardT<1>(dQ, dK, dV, g, qq, kk, vv, lse, scratch, sh, cu, s); break;
      case 2: backwardT<2>(dQ, dK, dV, g, qq, kk, vv, lse, scratch, sh, cu, s); break;
      case 3: backwardT<3>(dQ, dK, dV, g, qq, kk, vv, lse, scratch, sh, cu, s); break;
      case 4: backwardT<4>(dQ, dK, dV, g, qq, kk, vv, lse, scratch, sh, cu, s); break;
      default: throw std::runtime_error("attentionBackward: headDim above 128 is not supported by the CUDA kernel");
    }
  });
}

}  // namespace cuda
}  // namespace lmf
