// The softmax / cross-entropy step of the chunked output head (the GEMMs around it are in loss.cc), for a chunk
// of fp32 logits (fp32 mode) or bf16 logits (bf16 mode), one block per logits row:
//   - one read pass keeps each thread's running maximum and its sum of exponentials relative to that maximum
//     (an online softmax: when the maximum grows, the sum is rescaled by exp(old - new), as flash attention
//     does), then the block combines the threads' pairs in a fixed order: the row's logsumexp, its loss in
//     double, and, for evaluation (headLogprob), the first index of the maximum;
//   - for training a second pass overwrites the row in place with dlogits = (softmax - onehot) * gradScale, in the
//     chunk's own type, so the chunk of logits becomes the chunk of dlogits without another buffer.
// Rows are read 8 logits at a time (16 bytes of bf16); the glue pads the row stride to a multiple of 8.
#include <cuda_bf16.h>

#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int32_t kIgnore = -100;
constexpr int kVec = 8;  // logits per vector access

__device__ __forceinline__ float toF32(float x) { return x; }
__device__ __forceinline__ float toF32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void storeF32(float* p, float v) { *p = v; }
__device__ __forceinline__ void storeF32(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Eight consecutive logits as floats (p is 16-byte aligned for bf16, 32-byte aligned for fp32).
__device__ __forceinline__ void load8(const float* p, float v[kVec]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float v[kVec]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; k++) {  // element 2k is the low half of word k (little-endian)
    v[2 * k] = __uint_as_float(w[k] << 16);
    v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
  }
}
__device__ __forceinline__ void store8(float* p, const float v[kVec]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const float v[kVec]) {
  unsigned w[4];
#pragma unroll
  for (int k = 0; k < 4; k++)
    w[k] = unsigned(__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k]))) |
           unsigned(__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k + 1]))) << 16;
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

// One thread's online softmax state over the logits it has read: the maximum m (and the first index holding it)
// and s = sum of exp(x - m).
struct Online {
  float m = -INFINITY;
  float s = 0.f;
  int64_t at = -1;

  // Adds `count` logits whose first column is `col` (in increasing column order, so a tie keeps the first).
  __device__ __forceinline__ void add(const float* v, int count, int64_t col) {
    float lm = v[0];
    int li = 0;
    for (int k = 1; k < count; k++) {
      if (v[k] > lm) {
        lm = v[k];
        li = k;
      }
    }
    if (lm > m) {
      s *= expf(m - lm);  // the sum so far was relative to the old maximum
      m = lm;
      at = col + li;
    }
    for (int k = 0; k < count; k++) s += expf(v[k] - m);
  }
};

// Reads the row once, 8 logits per step; the last vocab % 8 logits one per thread. Each thread visits its
// columns in increasing order. `copy` (optional, fp32, packed) receives the logits as read.
template <typename T>
__device__ Online readRow(const T* row, int64_t vocab, float* copy) {
  Online o;
  const int64_t full = vocab / kVec;
  float v[kVec];
  for (int64_t q = threadIdx.x; q < full; q += blockDim.x) {
    load8(row + q * kVec, v);
    if (copy)
      for (int k = 0; k < kVec; k++) copy[q * kVec + k] = v[k];
    o.add(v, kVec, q * kVec);
  }
  const int64_t j = full * kVec + threadIdx.x;
  if (j < vocab) {
    v[0] = toF32(row[j]);
    if (copy) copy[j] = v[0];
    o.add(v, 1, j);
  }
  return o;
}

// The row's sum of exp(x - mx) from the threads' states, mx being the block maximum: each thread's sum rescaled
// to mx, added in double in a fixed order. Every thread gets the result. (A thread that read nothing has s = 0;
// one that read a NaN has s = NaN, which the sum keeps.)
__device__ __forceinline__ double rowExpSum(const Online& o, float mx, double* shd) {
  const double part = o.s == 0.f ? 0.0 : static_cast<double>(o.s) * static_cast<double>(expf(o.m - mx));
  return blockSum(part, shd);
}

template <typename T>
__device__ void fillRow(T* row, int64_t vocab, float value) {
  float v[kVec];
  for (int k = 0; k < kVec; k++) v[k] = value;
  const int64_t full = vocab / kVec;
  for (int64_t q = threadIdx.x; q < full; q += blockDim.x) store8(row + q * kVec, v);
  const int64_t j = full * kVec + threadIdx.x;
  if (j < vocab) storeF32(row + j, value);
}

template <typename T>
__global__ void crossEntropyKernel(T* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets,
                                   int64_t vocab, float gradScale, bool grads, int* errorFlag) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  const int64_t i = blockIdx.x;
  T* row = logits + i * ld;
  const int32_t t = targets[i];
  const bool bad = t != kIgnore && (t < 0 || t >= vocab);
  if (t == kIgnore || bad) {
    if (logitsCopy) readRow(row, vocab, logitsCopy + i * vocab);
    if (bad && threadIdx.x == 0) atomicCAS(errorFlag, kErrNone, kErrTarget);
    if (threadIdx.x == 0) rowLoss[i] = 0.0;
    if (grads) fillRow(row, vocab, 0.f);
    return;
  }
  // Read before the row is overwritten: the barriers of the reductions below order it before the second pass.
  const float target = threadIdx.x == 0 ? toF32(row[t]) : 0.f;
  const Online o = readRow(row, vocab, logitsCopy ? logitsCopy + i * vocab : nullptr);
  const float mx = blockMax(o.m, shf);
  const double sum = rowExpSum(o, mx, shd);
  if (threadIdx.x == 0) rowLoss[i] = static_cast<double>(mx) + log(sum) - static_cast<double>(target);
  if (!grads) return;
  // softmax as exp(x - mx) * (1 / sum), as the CPU engine computes it.
  const float k = static_cast<float>(gradScale / sum);
  const int64_t full = vocab / kVec;
  float v[kVec];
  for (int64_t q = threadIdx.x; q < full; q += blockDim.x) {
    load8(row + q * kVec, v);
    for (int c = 0; c < kVec; c++) {
      v[c] = expf(v[c] - mx) * k;
      if (q * kVec + c == t) v[c] -= gradScale;
    }
    store8(row + q * kVec, v);
  }
  const int64_t j = full * kVec + threadIdx.x;
  if (j < vocab) {
    const float p = expf(toF32(row[j]) - mx) * k;
    storeF32(row + j, j == t ? p - gradScale : p);
  }
}

// The larger of two (value, index) pairs; on equal values the smaller index (torch.argmax's first maximum). An
// index of -1 is a thread that read nothing.
__device__ __forceinline__ void argmaxMerge(float& v, int64_t& i, float ov, int64_t oi) {
  if (oi < 0) return;
  if (i < 0 || ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// The block's first maximum: warp shuffles, then the warps' winners through shared memory.
__device__ void blockArgmax(float& v, int64_t& at, float* shv, int64_t* shi) {
  for (int o = 16; o > 0; o >>= 1) argmaxMerge(v, at, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, at, o));
  const int lane = threadIdx.x % kWarp, wid = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  __syncthreads();
  if (lane == 0) {
    shv[wid] = v;
    shi[wid] = at;
  }
  __syncthreads();
  v = lane < nw ? shv[lane] : -INFINITY;
  at = lane < nw ? shi[lane] : -1;
  for (int o = 16; o > 0; o >>= 1) argmaxMerge(v, at, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, at, o));
}

template <typename T>
__global__ void logprobKernel(const T* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets,
                              int64_t vocab, int* errorFlag) {
  __shared__ float shv[32];
  __shared__ int64_t shi[32];
  __shared__ double shd[32];
  const int64_t i = blockIdx.x;
  const T* row = logits + i * ld;
  const int32_t t = targets[i];
  const bool bad = t != kIgnore && (t < 0 || t >= vocab);
  if (t == kIgnore || bad) {
    if (threadIdx.x == 0) {
      if (bad) atomicCAS(errorFlag, kErrNone, kErrTarget);
      logprob[i] = 0.0;
      argmax[i] = -1;
    }
    return;
  }
  const Online o = readRow(row, vocab, nullptr);
  float mx = o.m;
  int64_t at = o.at;
  blockArgmax(mx, at, shv, shi);
  // A row of NaN or -inf has no maximum: argmax 0, as the CPU engine.
  if (at < 0) mx = -INFINITY, at = 0;
  const double sum = rowExpSum(o, mx, shd);
  if (threadIdx.x == 0) {
    logprob[i] = static_cast<double>(toF32(row[t])) - static_cast<double>(mx) - log(sum);
    argmax[i] = static_cast<int32_t>(at);
  }
}

// Threads per row: enough for about four vectors each (small vocabularies use one warp), at most 1024.
int threadsFor(int64_t vocab) {
  const int64_t vectors = (vocab + kVec - 1) / kVec;
  const int64_t t = ((vectors + 3) / 4 + kWarp - 1) / kWarp * kWarp;
  return static_cast<int>(t < kWarp ? kWarp : t > 1024 ? 1024 : t);
}

template <typename T>
void crossEntropyLaunch(T* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets, int64_t m,
                        int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s) {
  if (m <= 0) return;
  launch("headCrossEntropy", crossEntropyKernel<T>, static_cast<unsigned>(m), threadsFor(vocab), 0, s, logits, ld,
         rowLoss, logitsCopy, targets, vocab, gradScale, grads, errorFlag);
}

template <typename T>
void logprobLaunch(const T* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets, int64_t m,
                   int64_t vocab, int* errorFlag, cudaStream_t s) {
  if (m <= 0) return;
  launch("headLogprob", logprobKernel<T>, static_cast<unsigned>(m), threadsFor(vocab), 0, s, logits, ld, logprob,
         argmax, targets, vocab, errorFlag);
}

}  // namespace

void crossEntropyChunk(float* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets, int64_t m,
                       int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s) {
  crossEntropyLaunch(logits, ld, rowLoss, logitsCopy, targets, m, vocab, gradScale, grads, errorFlag, s);
}

void crossEntropyChunk(bf16raw* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets,
                       int64_t m, int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s) {
  crossEntropyLaunch(reinterpret_cast<__nv_bfloat16*>(logits), ld, rowLoss, logitsCopy, targets, m, vocab, gradScale,
                     grads, errorFlag, s);
}

void logprobChunk(const float* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets, int64_t m,
                  int64_t vocab, int* errorFlag, cudaStream_t s) {
  logprobLaunch(logits, ld, logprob, argmax, targets, m, vocab, errorFlag, s);
}

void logprobChunk(const bf16raw* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets,
                  int64_t m, int64_t vocab, int* errorFlag, cudaStream_t s) {
  logprobLaunch(reinterpret_cast<const __nv_bfloat16*>(logits), ld, logprob, argmax, targets, m, vocab, errorFlag, s);
}

}  // namespace cuda
}  // namespace lmf
