// Tensor-core flash attention (the FlashAttention-2 algorithm) for training: causal, GQA/MQA/MHA, head_dim 64 or
// 128, document masking (varlen through cu), bf16 operands on mma.sync m16n8k16 with fp32 accumulation.
//
// Operands: q, k, v (and dO in the backward) are staged once per call as head-major bf16 copies [b, head, t, d]
// (stageBf16Heads, the one fp32 -> bf16 conversion: it goes away once activations are stored in bf16), so every
// tile is a contiguous block that cp.async copies in 16-byte chunks. O, lse and the gradients are written in fp32.
//
// Forward: one block (4 warps) per 64 query rows of one (batch, head); each warp owns 16 rows, i.e. one mma row
// tile. K/V tiles of 64 keys stream through two shared-memory buffers (cp.async double buffering: the next tile
// is copied while the current one is used). Per tile: S = Q·Kᵀ (mma, fp32), an online softmax in registers (exp2
// with the scale folded in), then O += P·V with P re-packed from the S accumulators into bf16 A fragments (no
// shared-memory round trip). Saves lse = log(sum exp(scale * q·k)) per row for the backward.
//
// Backward: D = rowsum(dO∘O) in fp32 first; then two kernels, no atomics, every sum in a fixed order:
//   dK/dV: one block per 64 keys of one (batch, kv head); each warp owns 16 keys and loops over every query head
//     of the group and every 32-query tile at or after its keys: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ once per tile pair,
//     P = exp(S - lse), dS = P∘(dP - D), then dV += Pᵀ·dO and dK += dSᵀ·Q straight from registers.
//   dQ: one block per 64 query rows of one (batch, head) loops over the 32-key tiles up to the diagonal: it
//     recomputes S and dP (Q·Kᵀ and dO·Vᵀ) and adds dS·K.
// The dQ pass recomputes two of the five products (FA2 instead adds dQ with float atomics, which are not
// deterministic). Per-key-tile dQ partials would avoid that, but cost O(T²/64 · d) fp32 of memory and traffic per
// head (GiBs at 8 x 2048), more than the recompute (two T²·d/2 products on tensor cores).
//
// Shared-memory tiles have rows padded by 16 bytes: the 8 row addresses of an ldmatrix then fall in 8 different
// bank groups, and every row stays 16-byte aligned for cp.async and ldmatrix. Every GPU-only instruction is a
// ptx.cuh wrapper, so the interpreted engine runs this file's logic on the CPU.
//
// Fragment conventions (ptx.cuh): in a lane, g = lane / 4 and t = lane % 4; an accumulator tile acc[n][e] holds
// row g + 8 * (e / 2), column 8n + 2t + (e % 2).
#include <cuda_bf16.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "device.cuh"
#include "documents.cuh"
#include "flash_attention.cuh"
#include "ptx.cuh"

namespace lmf {
namespace cuda {

namespace {

using bf16 = __nv_bfloat16;

constexpr int kFlashWarps = 4;
constexpr int kFlashThreads = kFlashWarps * kWarp;
constexpr int kWarpRows = 16;                        // rows of one mma tile; each warp owns one
constexpr int kBlockRows = kFlashWarps * kWarpRows;  // 64: query rows per forward/dQ block, keys per dK/dV block
constexpr int kFwdKeys = 64;                         // keys per forward K/V tile
constexpr int kBwdCols = 32;                         // queries per dK/dV inner tile, keys per dQ inner tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Row stride (elements) of a bf16 tile in shared memory.
template <int HD>
__host__ __device__ constexpr int ldOf() {
  return HD + 8;
}

// Where row t of head h of batch b of a bf16 operand starts: base + b * batch + h * head + t * row. The activations
// as the model stores them (row-major [N, heads * HD], row stride s: row s, head HD, batch T * s) are read in place;
// a staged head-major copy has row HD, head T * HD, batch heads * T * HD.
struct HeadRows {
  const bf16* base;
  int64_t row, head, batch;
  __device__ __forceinline__ const bf16* at(int64_t b, int64_t h) const { return base + b * batch + h * head; }
};

// ---- staging: head-major bf16 copies of operands that cannot be read in place (f32, or rows not 16-byte aligned) ----

// dst[((b * heads + h) * seq + t) * hd + c] = bf16(src[(b * seq + t) * stride + h * hd + c]), round to nearest even.
template <typename E>
__global__ void stageBf16HeadsKernel(__nv_bfloat162* dst, const E* src, int64_t seq, int64_t heads, int64_t hd,
                                     int64_t stride, int64_t pairs) {
  const int64_t half = hd / 2;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < pairs;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (idx % half) * 2, rest = idx / half, h = rest % heads, row = rest / heads;
    const int64_t b = row / seq, t = row % seq;
    const E* s = src + row * stride + h * hd + c;
    dst[(((b * heads + h) * seq + t) * hd + c) / 2] = __floats2bfloat162_rn(ldf(s, 0), ldf(s, 1));
  }
}

template <typename E>
void stageBf16Heads(bf16* dst, const E* src, int64_t batch, int64_t seq, int64_t heads, int64_t hd,
                    int64_t stride, cudaStream_t s) {
  const int64_t pairs = batch * seq * heads * hd / 2;
  if (pairs == 0) return;
  launch("flashAttention (bf16 staging)", stageBf16HeadsKernel<E>, gridFor(pairs, 256), 256, 0, s,
         reinterpret_cast<__nv_bfloat162*>(dst), src, seq, heads, hd, stride, pairs);
}

// ---- device helpers ----

__device__ __forceinline__ uint32_t packBf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}


// Rows [r0, r0 + ROWS) of a [rows][HD] bf16 matrix (global, row stride `stride`) into a shared tile with cp.async, 16 bytes
// per copy; rows at or past `limit` are zero-filled with plain stores. The caller commits the group; the data is
// there after the cpAsyncWait covering it and a __syncthreads.
template <int ROWS, int HD>
__device__ __forceinline__ void loadTileAsync(bf16* dst, const bf16* src, int64_t r0, int64_t limit, int64_t stride) {
  constexpr int kChunks = HD / 8;
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += kFlashThreads) {
    const int r = idx / kChunks, c = (idx % kChunks) * 8;
    bf16* d = dst + r * ldOf<HD>() + c;
    if (r0 + r < limit) ptx::cpAsync16(d, src + (r0 + r) * stride + c);
    else *reinterpret_cast<uint4*>(d) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// acc (16 x N) += A · Btᵀ for one warp: A is 16 rows x K (row-major, shared, row stride LD), Bt is N rows x K
// (row-major, shared): S = Q·Kᵀ with A = Q rows and Bt = K rows. Fragments by ldmatrix (no transpose).
template <int K, int N, int LD>
__device__ __forceinline__ void mmaABt(float acc[N / 8][4], const bf16* A, const bf16* Bt) {
  static_assert(K % 16 == 0 && N % 16 == 0, "mma tiles are 16 deep and taken two 8-column tiles at a time");
  const int lane = threadIdx.x % kWarp;
#pragma unroll
  for (int kk = 0; kk < K / 16; kk++) {
    uint32_t a[4];
    // Tiles 0..3: rows 0-7 / 8-15 (lane bit 3) x columns 0-7 / 8-15 (lane bit 4) of this 16-deep slice.
    ptx::ldmatrixX4(a, A + (lane % 16) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
    for (int n = 0; n < N / 8; n += 2) {
      uint32_t b[4];
      // Tiles 0..3: (Bt rows of column tile n, k 0-7), (n, k 8-15), (n+1, k 0-7), (n+1, k 8-15).
      ptx::ldmatrixX4(b, Bt + (n * 8 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
      ptx::mmaBf16m16n8k16(acc[n], a, b, acc[n]);
      ptx::mmaBf16m16n8k16(acc[n + 1], a, b + 2, acc[n + 1]);
    }
  }
}

// acc (16 x N) += P · B for one warp: P is 16 x K in registers (A fragments, packed by toAFragments), B is K rows x
// N (row-major, shared): O += P·V, dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K. Fragments by ldmatrix.trans.
template <int K, int N, int LD>
__device__ __forceinline__ void mmaPB(float acc[N / 8][4], const uint32_t p[K / 16][4], const bf16* B) {
  static_assert(K % 16 == 0 && N % 16 == 0, "mma tiles are 16 deep and taken two 8-column tiles at a time");
  const int lane = threadIdx.x % kWarp;
#pragma unroll
  for (int kk = 0; kk < K / 16; kk++) {
#pragma unroll
    for (int n = 0; n < N / 8; n += 2) {
      uint32_t b[4];
      // Tiles 0..3 (transposed): B rows 0-7 / 8-15 of the slice (lane bit 3) x column tiles n / n+1 (lane bit 4).
      ptx::ldmatrixX4<true>(b, B + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * LD + n * 8 + (lane / 16) * 8);
      ptx::mmaBf16m16n8k16(acc[n], p[kk], b, acc[n]);
      ptx::mmaBf16m16n8k16(acc[n + 1], p[kk], b + 2, acc[n + 1]);
    }
  }
}

// The accumulators of a 16 x K tile as the A fragments of the next product (rounded to bf16): columns 16kk..+15
// are accumulator tiles 2kk and 2kk+1.
template <int K>
__device__ __forceinline__ void toAFragments(uint32_t p[K / 16][4], const float s[K / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < K / 16; kk++) {
    p[kk][0] = packBf16x2(s[2 * kk][0], s[2 * kk][1]);
    p[kk][1] = packBf16x2(s[2 * kk][2], s[2 * kk][3]);
    p[kk][2] = packBf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    p[kk][3] = packBf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

template <int N>
__device__ __forceinline__ void zero(float acc[N][4]) {
#pragma unroll
  for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
}

// Writes a warp's 16 x HD accumulator tile, times `mul`, to rows row0.. (row stride `stride`) of dst; rows at or
// past `limit` are skipped.
template <int HD, typename E>
__device__ __forceinline__ void storeRows(E* dst, const float acc[HD / 8][4], int64_t row0, int64_t limit,
                                          int64_t stride, float mul0, float mul1) {
  const int lane = threadIdx.x % kWarp, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int half = 0; half < 2; half++) {
    const int64_t r = row0 + g + 8 * half;
    if (r >= limit) continue;
    const float mul = half ? mul1 : mul0;
    E* d = dst + r * stride + 2 * t;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
      stf(d, n * 8, acc[n][2 * half] * mul);
      stf(d, n * 8 + 1, acc[n][2 * half + 1] * mul);
    }
  }
}

// ---- forward ----

template <int HD, typename E>
__global__ void __launch_bounds__(kFlashThreads)
    flashForwardKernel(E* out, float* lse, HeadRows qb, HeadRows kb, HeadRows vb, AttentionShape sh,
                       const int32_t* cu) {
  constexpr int LD = ldOf<HD>();
  LMF_DYNAMIC_SHARED(uint4, smemRaw);
  bf16* Qs = reinterpret_cast<bf16*>(smemRaw);
  bf16* Ks = Qs + kBlockRows * LD;  // two buffers of kFwdKeys rows
  bf16* Vs = Ks + 2 * kFwdKeys * LD;
  const int64_t T = sh.seq, b = blockIdx.y / sh.heads, h = blockIdx.y % sh.heads, kh = h / (sh.heads / sh.kvHeads);
  // The longest rows (most key tiles) first: the tail of the grid is then short blocks.
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBlockRows;
  const bf16* Q = qb.at(b, h);
  const bf16* K = kb.at(b, kh);
  const bf16* V = vb.at(b, kh);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, g = lane / 4, t = lane % 4;

  const int64_t rowLast = min(T, q0 + kBlockRows) - 1;
  // Documents only move forward with the row: the block's first row has the earliest first key.
  const int64_t kBegin = (docOf(sh, cu, b, q0).start / kFwdKeys) * kFwdKeys;
  const int64_t firstMax = docOf(sh, cu, b, rowLast).start;  // no row sees a key before this one
  const int tiles = static_cast<int>((rowLast + 1 - kBegin + kFwdKeys - 1) / kFwdKeys);
  int64_t row[2], first[2];
#pragma unroll
  for (int half = 0; half < 2; half++) {
    row[half] = q0 + warp * kWarpRows + g + 8 * half;
    first[half] = row[half] < T ? docOf(sh, cu, b, row[half]).start : 0;
  }

  loadTileAsync<kBlockRows, HD>(Qs, Q, q0, T, qb.row);
  loadTileAsync<kFwdKeys, HD>(Ks, K, kBegin, T, kb.row);
  loadTileAsync<kFwdKeys, HD>(Vs, V, kBegin, T, vb.row);
  ptx::cpAsyncCommit();

  float o[HD / 8][4];
  zero<HD / 8>(o);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (log2 units) and this lane's partial sum
  const float sl2 = sh.scale * kLog2e;
  for (int it = 0; it < tiles; it++) {
    const int64_t k0 = kBegin + int64_t(it) * kFwdKeys;
    const int cur = it & 1;
    if (it + 1 < tiles) {
      loadTileAsync<kFwdKeys, HD>(Ks + (cur ^ 1) * kFwdKeys * LD, K, k0 + kFwdKeys, T, kb.row);
      loadTileAsync<kFwdKeys, HD>(Vs + (cur ^ 1) * kFwdKeys * LD, V, k0 + kFwdKeys, T, vb.row);
    }
    ptx::cpAsyncCommit();
    ptx::cpAsyncWait<1>();  // every group but the newest has landed: this tile (and Q)
    __syncthreads();

    float s[kFwdKeys / 8][4];
    zero<kFwdKeys / 8>(s);
    mmaABt<HD, kFwdKeys, LD>(s, Qs + warp * kWarpRows * LD, Ks + cur * kFwdKeys * LD);
    // Only tiles reaching past the block's first row, or before its last row's document start, need a mask.
    const bool masked = k0 + kFwdKeys - 1 > q0 || k0 < firstMax;
    float corr[2];
#pragma unroll
    for (int half = 0; half < 2; half++) {
      float mx = m[half];
#pragma unroll
      for (int n = 0; n < kFwdKeys / 8; n++)
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; e++) {
          float x = s[n][e] * sl2;
          if (masked) {
            const int64_t j = k0 + n * 8 + 2 * t + (e & 1);
            if (j > row[half] || j < first[half]) x = -INFINITY;
          }
          s[n][e] = x;
          mx = fmaxf(mx, x);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;  // a row that has seen no visible key yet
      corr[half] = exp2f(m[half] - base);
      m[half] = mx;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < kFwdKeys / 8; n++)
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; e++) {
          s[n][e] = exp2f(s[n][e] - base);
          sum += s[n][e];
        }
      l[half] = l[half] * corr[half] + sum;
    }
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
      o[n][0] *= corr[0];
      o[n][1] *= corr[0];
      o[n][2] *= corr[1];
      o[n][3] *= corr[1];
    }
    uint32_t p[kFwdKeys / 16][4];
    toAFragments<kFwdKeys>(p, s);
    mmaPB<kFwdKeys, HD, LD>(o, p, Vs + cur * kFwdKeys * LD);
    __syncthreads();  // this buffer is refilled by the next iteration's prefetch
  }

  float inv[2];
#pragma unroll
  for (int half = 0; half < 2; half++) {
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 1);
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 2);
    inv[half] = 1.f / l[half];
    if (lse && t == 0 && row[half] < T) lse[(b * sh.heads + h) * T + row[half]] = (m[half] + log2f(l[half])) * kLn2;
  }
  storeRows<HD>(out + b * T * sh.od() + h * HD, o, q0 + warp * kWarpRows, T, sh.od(), inv[0], inv[1]);
}

// ---- backward ----

// D[(b * heads + h) * seq + i] = dot(dO, O) of row i, head h, in fp32: one warp per (row, head).
template <typename E>
__global__ void flashRowDotKernel(float* D, const E* dout, const E* out, AttentionShape sh) {
  const int64_t task = blockIdx.x * int64_t(kFlashWarps) + threadIdx.x / kWarp;
  if (task >= sh.batch * sh.seq * sh.heads) return;  // uniform across the warp
  const int lane = threadIdx.x % kWarp;
  const int64_t r = task / sh.heads, h = task % sh.heads, hd = sh.headDim;
  const E* o = out + r * sh.od() + h * hd;
  const E* g = dout + r * sh.od() + h * hd;
  float s = 0.f;
  for (int64_t c = lane; c < hd; c += kWarp) s += ldf(o, c) * ldf(g, c);
  s = warpSum(s);
  if (lane == 0) D[(r / sh.seq * sh.heads + h) * sh.seq + r % sh.seq] = s;
}

template <int HD, typename E>
__global__ void __launch_bounds__(kFlashThreads)
    flashDkDvKernel(E* dk, E* dv, HeadRows qb, HeadRows kb, HeadRows vb, HeadRows dob,
                    const float* lse, const float* D, AttentionShape sh, const int32_t* cu) {
  constexpr int LD = ldOf<HD>();
  LMF_DYNAMIC_SHARED(uint4, smemRaw);
  bf16* Ks = reinterpret_cast<bf16*>(smemRaw);
  bf16* Vs = Ks + kBlockRows * LD;
  bf16* Qs = Vs + kBlockRows * LD;    // two buffers of kBwdCols rows
  bf16* dOs = Qs + 2 * kBwdCols * LD;  // two buffers
  float* Ls = reinterpret_cast<float*>(dOs + 2 * kBwdCols * LD);  // two buffers: lse * log2(e) per query
  float* Ds = Ls + 2 * kBwdCols;                                 // two buffers: D per query
  const int64_t T = sh.seq, b = blockIdx.y / sh.kvHeads, kh = blockIdx.y % sh.kvHeads, group = sh.heads / sh.kvHeads;
  const int64_t k0 = int64_t(blockIdx.x) * kBlockRows;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, g = lane / 4, t = lane % 4;
  const bf16* K = kb.at(b, kh);
  const bf16* V = vb.at(b, kh);

  // Query tiles from the block's first key to the last key's document end (the latest of the block's keys).
  const int64_t keyLast = min(T, k0 + kBlockRows) - 1;
  const int64_t qEnd = docOf(sh, cu, b, keyLast).end;
  const int64_t lastMin = docOf(sh, cu, b, k0).end;  // the earliest document end among the block's keys
  const int perHead = static_cast<int>((qEnd - k0 + kBwdCols - 1) / kBwdCols);
  const int iters = static_cast<int>(group) * perHead;
  int64_t key[2], last[2];  // this lane's keys and one past each one's last query
#pragma unroll
  for (int half = 0; half < 2; half++) {
    key[half] = k0 + warp * kWarpRows + g + 8 * half;
    last[half] = key[half] < T ? docOf(sh, cu, b, key[half]).end : 0;
  }

  // Iteration `it` is query tile it % perHead of head kh * group + it / perHead.
  auto loadQueries = [&](int it, int buf) {
    const int64_t h = kh * group + it / perHead, q0 = k0 + int64_t(it % perHead) * kBwdCols;
    loadTileAsync<kBwdCols, HD>(Qs + buf * kBwdCols * LD, qb.at(b, h), q0, T, qb.row);
    loadTileAsync<kBwdCols, HD>(dOs + buf * kBwdCols * LD, dob.at(b, h), q0, T, dob.row);
    if (threadIdx.x < kBwdCols) {
      const int64_t i = q0 + threadIdx.x, at = (b * sh.heads + h) * T + i;
      Ls[buf * kBwdCols + threadIdx.x] = i < T ? lse[at] * kLog2e : 0.f;
      Ds[buf * kBwdCols + threadIdx.x] = i < T ? D[at] : 0.f;
    }
  };
  loadTileAsync<kBlockRows, HD>(Ks, K, k0, T, kb.row);
  loadTileAsync<kBlockRows, HD>(Vs, V, k0, T, vb.row);
  loadQueries(0, 0);
  ptx::cpAsyncCommit();

  float dK[HD / 8][4], dV[HD / 8][4];
  zero<HD / 8>(dK);
  zero<HD / 8>(dV);
  const float sl2 = sh.scale * kLog2e;
  for (int it = 0; it < iters; it++) {
    const int cur = it & 1;
    const int64_t q0 = k0 + int64_t(it % perHead) * kBwdCols;
    if (it + 1 < iters) loadQueries(it + 1, cur ^ 1);
    ptx::cpAsyncCommit();
    ptx::cpAsyncWait<1>();
    __syncthreads();

    const bf16* Qt = Qs + cur * kBwdCols * LD;
    const bf16* dOt = dOs + cur * kBwdCols * LD;
    float s[kBwdCols / 8][4], dp[kBwdCols / 8][4];  // Sᵀ and dPᵀ: this warp's 16 keys x 32 queries
    zero<kBwdCols / 8>(s);
    zero<kBwdCols / 8>(dp);
    mmaABt<HD, kBwdCols, LD>(s, Ks + warp * kWarpRows * LD, Qt);
    mmaABt<HD, kBwdCols, LD>(dp, Vs + warp * kWarpRows * LD, dOt);
    // Unmasked when every query of the tile follows every key of the block, is a real row, and sees every key.
    const bool masked = q0 < k0 + kBlockRows - 1 || q0 + kBwdCols > min(T, lastMin);
#pragma unroll
    for (int n = 0; n < kBwdCols / 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int c = n * 8 + 2 * t + (e & 1), half = e / 2;
        const int64_t i = q0 + c;
        const bool visible = !masked || (i >= key[half] && i < last[half]);
        const float p = visible ? exp2f(s[n][e] * sl2 - Ls[cur * kBwdCols + c]) : 0.f;
        s[n][e] = p;
        dp[n][e] = p * (dp[n][e] - Ds[cur * kBwdCols + c]);
      }
    uint32_t pa[kBwdCols / 16][4], dsa[kBwdCols / 16][4];
    toAFragments<kBwdCols>(pa, s);
    toAFragments<kBwdCols>(dsa, dp);
    mmaPB<kBwdCols, HD, LD>(dV, pa, dOt);
    mmaPB<kBwdCols, HD, LD>(dK, dsa, Qt);
    __syncthreads();  // this buffer is refilled by the next iteration's prefetch
  }
  const int64_t r0 = b * T, j0 = k0 + warp * kWarpRows;
  storeRows<HD>(dk + r0 * sh.sk + kh * HD, dK, j0, T, sh.sk, sh.scale, sh.scale);
  storeRows<HD>(dv + r0 * sh.sv + kh * HD, dV, j0, T, sh.sv, 1.f, 1.f);
}

template <int HD, typename E>
__global__ void __launch_bounds__(kFlashThreads)
    flashDqKernel(E* dq, HeadRows qb, HeadRows kb, HeadRows vb, HeadRows dob, const float* lse,
                  const float* D, AttentionShape sh, const int32_t* cu) {
  constexpr int LD = ldOf<HD>();
  LMF_DYNAMIC_SHARED(uint4, smemRaw);
  bf16* Qs = reinterpret_cast<bf16*>(smemRaw);
  bf16* dOs = Qs + kBlockRows * LD;
  bf16* Ks = dOs + kBlockRows * LD;  // two buffers of kBwdCols rows
  bf16* Vs = Ks + 2 * kBwdCols * LD;
  const int64_t T = sh.seq, b = blockIdx.y / sh.heads, h = blockIdx.y % sh.heads, kh = h / (sh.heads / sh.kvHeads);
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBlockRows;  // the longest rows first
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, g = lane / 4, t = lane % 4;
  const bf16* K = kb.at(b, kh);
  const bf16* V = vb.at(b, kh);

  const int64_t rowLast = min(T, q0 + kBlockRows) - 1;
  const int64_t kBegin = (docOf(sh, cu, b, q0).start / kBwdCols) * kBwdCols;
  const int64_t firstMax = docOf(sh, cu, b, rowLast).start;
  const int tiles = static_cast<int>((rowLast + 1 - kBegin + kBwdCols - 1) / kBwdCols);
  int64_t row[2], first[2];
  float L2[2], Dr[2];
#pragma unroll
  for (int half = 0; half < 2; half++) {
    row[half] = q0 + warp * kWarpRows + g + 8 * half;
    const bool real = row[half] < T;
    const int64_t at = (b * sh.heads + h) * T + row[half];
    first[half] = real ? docOf(sh, cu, b, row[half]).start : 0;
    L2[half] = real ? lse[at] * kLog2e : 0.f;
    Dr[half] = real ? D[at] : 0.f;
  }

  loadTileAsync<kBlockRows, HD>(Qs, qb.at(b, h), q0, T, qb.row);
  loadTileAsync<kBlockRows, HD>(dOs, dob.at(b, h), q0, T, dob.row);
  loadTileAsync<kBwdCols, HD>(Ks, K, kBegin, T, kb.row);
  loadTileAsync<kBwdCols, HD>(Vs, V, kBegin, T, vb.row);
  ptx::cpAsyncCommit();

  float dQ[HD / 8][4];
  zero<HD / 8>(dQ);
  const float sl2 = sh.scale * kLog2e;
  for (int it = 0; it < tiles; it++) {
    const int cur = it & 1;
    const int64_t k0 = kBegin + int64_t(it) * kBwdCols;
    if (it + 1 < tiles) {
      loadTileAsync<kBwdCols, HD>(Ks + (cur ^ 1) * kBwdCols * LD, K, k0 + kBwdCols, T, kb.row);
      loadTileAsync<kBwdCols, HD>(Vs + (cur ^ 1) * kBwdCols * LD, V, k0 + kBwdCols, T, vb.row);
    }
    ptx::cpAsyncCommit();
    ptx::cpAsyncWait<1>();
    __syncthreads();

    const bf16* Kt = Ks + cur * kBwdCols * LD;
    float s[kBwdCols / 8][4], dp[kBwdCols / 8][4];  // S and dP: this warp's 16 queries x 32 keys
    zero<kBwdCols / 8>(s);
    zero<kBwdCols / 8>(dp);
    mmaABt<HD, kBwdCols, LD>(s, Qs + warp * kWarpRows * LD, Kt);
    mmaABt<HD, kBwdCols, LD>(dp, dOs + warp * kWarpRows * LD, Vs + cur * kBwdCols * LD);
    const bool masked = k0 + kBwdCols - 1 > q0 || k0 < firstMax || rowLast + 1 < q0 + kBlockRows;
#pragma unroll
    for (int n = 0; n < kBwdCols / 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int half = e / 2;
        const int64_t j = k0 + n * 8 + 2 * t + (e & 1);
        const bool visible = !masked || (j <= row[half] && j >= first[half] && row[half] < T);
        const float p = visible ? exp2f(s[n][e] * sl2 - L2[half]) : 0.f;
        dp[n][e] = p * (dp[n][e] - Dr[half]);
      }
    uint32_t dsa[kBwdCols / 16][4];
    toAFragments<kBwdCols>(dsa, dp);
    mmaPB<kBwdCols, HD, LD>(dQ, dsa, Kt);
    __syncthreads();  // this buffer is refilled by the next iteration's prefetch
  }
  storeRows<HD>(dq + b * T * sh.sq + h * HD, dQ, q0 + warp * kWarpRows, T, sh.sq, sh.scale, sh.scale);
}

// ---- host side ----


size_t tileBytes(int64_t hd, int64_t rows) { return size_t(rows) * size_t(hd + 8) * sizeof(bf16); }

size_t align256(size_t n) { return (n + 255) & ~size_t(255); }

// Whether bf16 operands can be read in place: cp.async copies 16 bytes, so every row start must be 16-byte aligned
// (the base, and a row stride that is a multiple of 8 elements). The model's arena views are (docs/cuda.md).
bool inPlace(const void* p, int64_t stride) { return reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0; }
bool readInPlace(const FlashOperands& o, const AttentionShape& sh, bool backward) {
  return o.q.bf16 && inPlace(o.q.p, sh.sq) && inPlace(o.k.p, sh.sk) && inPlace(o.v.p, sh.sv) &&
         (!backward || inPlace(o.dout.p, sh.od()));
}

// The scratch layout: the staged bf16 q, k, v, then (backward) dO, when they are not read in place; then (backward)
// the fp32 row dots D.
size_t stagedBytes(const AttentionShape& sh, bool backward) {
  const size_t qBytes = align256(size_t(sh.batch * sh.heads * sh.seq * sh.headDim) * sizeof(bf16));
  const size_t kBytes = align256(size_t(sh.batch * sh.kvHeads * sh.seq * sh.headDim) * sizeof(bf16));
  return qBytes + 2 * kBytes + (backward ? qBytes : 0);
}
size_t dotsBytes(const AttentionShape& sh) { return align256(size_t(sh.batch * sh.heads * sh.seq) * sizeof(float)); }

struct Operands {
  HeadRows q, k, v, dout;
  float* D;
};

HeadRows inPlaceRows(const void* p, int64_t stride, int64_t T) {
  return {static_cast<const bf16*>(p), stride, 0, T * stride};
}
HeadRows stagedRows(const bf16* p, int64_t heads, int64_t T, int64_t hd) { return {p, hd, T * hd, heads * T * hd}; }

// The operands as the kernels read them: in place (bf16, aligned), or staged into head-major bf16 copies in scratch.
template <typename E>
Operands prepare(const FlashOperands& o, const AttentionShape& sh, void* scratch, bool backward, cudaStream_t s) {
  const int64_t T = sh.seq, hd = sh.headDim;
  Operands r{};
  char* p = static_cast<char*>(scratch);
  if (readInPlace(o, sh, backward)) {
    r.q = inPlaceRows(o.q.p, sh.sq, T);
    r.k = inPlaceRows(o.k.p, sh.sk, T);
    r.v = inPlaceRows(o.v.p, sh.sv, T);
    r.q.head = r.k.head = r.v.head = hd;
    if (backward) {
      r.dout = inPlaceRows(o.dout.p, sh.od(), T);
      r.dout.head = hd;
    }
  } else {
    const size_t qBytes = align256(size_t(sh.batch * sh.heads * T * hd) * sizeof(bf16));
    const size_t kBytes = align256(size_t(sh.batch * sh.kvHeads * T * hd) * sizeof(bf16));
    auto* q = reinterpret_cast<bf16*>(p);
    auto* k = reinterpret_cast<bf16*>(p + qBytes);
    auto* v = reinterpret_cast<bf16*>(p + qBytes + kBytes);
    stageBf16Heads(q, actPtr<E>(o.q.p), sh.batch, T, sh.heads, hd, sh.sq, s);
    stageBf16Heads(k, actPtr<E>(o.k.p), sh.batch, T, sh.kvHeads, hd, sh.sk, s);
    stageBf16Heads(v, actPtr<E>(o.v.p), sh.batch, T, sh.kvHeads, hd, sh.sv, s);
    r.q = stagedRows(q, sh.heads, T, hd);
    r.k = stagedRows(k, sh.kvHeads, T, hd);
    r.v = stagedRows(v, sh.kvHeads, T, hd);
    if (backward) {
      auto* d = reinterpret_cast<bf16*>(p + qBytes + 2 * kBytes);
      stageBf16Heads(d, actPtr<E>(o.dout.p), sh.batch, T, sh.heads, hd, sh.od(), s);
      r.dout = stagedRows(d, sh.heads, T, hd);
    }
    p += stagedBytes(sh, backward);
  }
  r.D = backward ? reinterpret_cast<float*>(p) : nullptr;
  return r;
}

unsigned tilesOf(int64_t n, int64_t tile) { return static_cast<unsigned>((n + tile - 1) / tile); }

template <int HD, typename E>
void forwardT(E* out, float* lse, const Operands& op, const AttentionShape& sh, const int32_t* cu, cudaStream_t s) {
  const size_t smem = tileBytes(HD, kBlockRows + 4 * kFwdKeys);
  allowSmem(flashForwardKernel<HD, E>, smem, "flashAttentionForward");
  const dim3 grid(tilesOf(sh.seq, kBlockRows), static_cast<unsigned>(sh.batch * sh.heads));
  launch("flashAttentionForward", flashForwardKernel<HD, E>, grid, kFlashThreads, smem, s, out, lse, op.q, op.k, op.v, sh,
         cu);
}

template <int HD, typename E>
void backwardT(E* dq, E* dk, E* dv, const float* lse, const Operands& op, const AttentionShape& sh, const int32_t* cu,
               cudaStream_t s) {
  const size_t smemKV = tileBytes(HD, 2 * kBlockRows + 4 * kBwdCols) + 4 * kBwdCols * sizeof(float);
  allowSmem(flashDkDvKernel<HD, E>, smemKV, "flashAttentionBackward");
  const dim3 gridKV(tilesOf(sh.seq, kBlockRows), static_cast<unsigned>(sh.batch * sh.kvHeads));
  launch("flashAttentionBackward (dk, dv)", flashDkDvKernel<HD, E>, gridKV, kFlashThreads, smemKV, s, dk, dv, op.q, op.k,
         op.v, op.dout, lse, static_cast<const float*>(op.D), sh, cu);
  const size_t smemQ = tileBytes(HD, 2 * kBlockRows + 4 * kBwdCols);
  allowSmem(flashDqKernel<HD, E>, smemQ, "flashAttentionBackward");
  const dim3 gridQ(tilesOf(sh.seq, kBlockRows), static_cast<unsigned>(sh.batch * sh.heads));
  launch("flashAttentionBackward (dq)", flashDqKernel<HD, E>, gridQ, kFlashThreads, smemQ, s, dq, op.q, op.k, op.v,
         op.dout, lse, static_cast<const float*>(op.D), sh, cu);
}

}  // namespace

bool flashAttentionSupported(const AttentionShape& sh) {
  return (sh.headDim == 64 || sh.headDim == 128) && sh.past == 0;
}

size_t flashForwardScratch(const AttentionShape& sh, const FlashOperands& o) {
  return readInPlace(o, sh, false) ? 0 : stagedBytes(sh, false);
}
size_t flashBackwardScratch(const AttentionShape& sh, const FlashOperands& o) {
  return (readInPlace(o, sh, true) ? 0 : stagedBytes(sh, true)) + dotsBytes(sh);
}

void flashAttentionForward(DevAct out, float* lse, const FlashOperands& o, const AttentionShape& sh, const int32_t* cu,
                           void* scratch, cudaStream_t s) {
  if (sh.batch * sh.seq <= 0) return;
  withAct(out.bf16, [&](auto tag) {
    using E = decltype(tag);
    const Operands op = prepare<E>(o, sh, scratch, false, s);
    if (sh.headDim == 64) forwardT<64>(actPtr<E>(out.p), lse, op, sh, cu, s);
    else if (sh.headDim == 128) forwardT<128>(actPtr<E>(out.p), lse, op, sh, cu, s);
    else throw std::runtime_error("flashAttentionForward: head_dim must be 64 or 128");
  });
}

void flashAttentionBackward(DevAct dq, DevAct dk, DevAct dv, const FlashOperands& o, DevActIn out, const float* lse,
                            const AttentionShape& sh, const int32_t* cu, void* scratch, cudaStream_t s) {
  if (sh.batch * sh.seq <= 0) return;
  withAct(dq.bf16, [&](auto tag) {
    using E = decltype(tag);
    const Operands op = prepare<E>(o, sh, scratch, true, s);
    const int64_t tasks = sh.batch * sh.seq * sh.heads;
    launch("flashAttentionBackward (rowdot)", flashRowDotKernel<E>, tilesOf(tasks, kFlashWarps), kFlashThreads, 0, s,
           op.D, actPtr<E>(o.dout.p), actPtr<E>(out.p), sh);
    E *dQ = actPtr<E>(dq.p), *dK = actPtr<E>(dk.p), *dV = actPtr<E>(dv.p);
    if (sh.headDim == 64) backwardT<64>(dQ, dK, dV, lse, op, sh, cu, s);
    else if (sh.headDim == 128) backwardT<128>(dQ, dK, dV, lse, op, sh, cu, s);
    else throw std::runtime_error("flashAttentionBackward: head_dim must be 64 or 128");
  });
}

}  // namespace cuda
}  // namespace lmf
