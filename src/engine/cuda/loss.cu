// The softmax / cross-entropy step of the chunked output head (the GEMMs around it are in loss.cc): one block
// per logits row finds the max, the sum of exponentials and the target logit, writes the row's loss in double,
// and, for training, overwrites the row in place with (softmax - onehot) * gradScale, so the chunk of logits
// becomes the chunk of dlogits without another buffer. The evaluation head (headLogprob) reduces each row to the
// target's log-probability and the row's argmax instead.
#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int32_t kIgnore = -100;

__global__ void crossEntropyKernel(float* logits, double* rowLoss, float* logitsCopy, const int32_t* targets,
                                   int64_t vocab, float gradScale, bool grads, int* errorFlag) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  const int64_t i = blockIdx.x;
  float* row = logits + i * vocab;
  if (logitsCopy) {
    float* dst = logitsCopy + i * vocab;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) dst[j] = row[j];
  }
  const int32_t t = targets[i];
  const bool bad = t != kIgnore && (t < 0 || t >= vocab);
  if (t == kIgnore || bad) {
    if (bad && threadIdx.x == 0) atomicCAS(errorFlag, kErrNone, kErrTarget);
    if (threadIdx.x == 0) rowLoss[i] = 0.0;
    if (grads)
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) row[j] = 0.f;
    return;
  }
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = blockMax(mx, shf);
  // Per-thread float sums of at most vocab/1024 terms, combined in double.
  float part = 0.f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) part += expf(row[j] - mx);
  const double sum = blockSum(static_cast<double>(part), shd);
  const float target = row[t];
  if (threadIdx.x == 0) rowLoss[i] = static_cast<double>(mx) + log(sum) - target;
  if (!grads) return;
  __syncthreads();  // every thread has read row[t] before it is overwritten
  const float k = static_cast<float>(gradScale / sum);
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = expf(row[j] - mx) * k;
    row[j] = j == t ? v - gradScale : v;
  }
}

// The larger of two (value, index) pairs; on equal values the smaller index (torch.argmax's first maximum).
__device__ __forceinline__ void argmaxMerge(float& v, int64_t& i, float ov, int64_t oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

__global__ void logprobKernel(const float* logits, double* logprob, int32_t* argmax, const int32_t* targets,
                              int64_t vocab, int* errorFlag) {
  __shared__ float shv[32];
  __shared__ int64_t shi[32];
  __shared__ double shd[32];
  const int64_t i = blockIdx.x;
  const float* row = logits + i * vocab;
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
  // Each thread's first maximum over its strided columns (increasing j keeps the first on ties), then the block's.
  float mx = -INFINITY;
  int64_t at = vocab;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = row[j];
    if (at == vocab || v > mx) {
      mx = v;
      at = j;
    }
  }
  for (int o = 16; o > 0; o >>= 1) argmaxMerge(mx, at, __shfl_xor_sync(0xffffffffu, mx, o), __shfl_xor_sync(0xffffffffu, at, o));
  const int lane = threadIdx.x % kWarp, wid = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  if (lane == 0) {
    shv[wid] = mx;
    shi[wid] = at;
  }
  __syncthreads();
  mx = lane < nw ? shv[lane] : -INFINITY;
  at = lane < nw ? shi[lane] : vocab;
  for (int o = 16; o > 0; o >>= 1) argmaxMerge(mx, at, __shfl_xor_sync(0xffffffffu, mx, o), __shfl_xor_sync(0xffffffffu, at, o));
  // Per-thread float sums of at most vocab/1024 terms, combined in double (as the loss).
  float part = 0.f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) part += expf(row[j] - mx);
  const double sum = blockSum(static_cast<double>(part), shd);
  if (threadIdx.x == 0) {
    logprob[i] = static_cast<double>(row[t]) - static_cast<double>(mx) - log(sum);
    argmax[i] = static_cast<int32_t>(at);
  }
}

}  // namespace

void logprobChunk(const float* logits, double* logprob, int32_t* argmax, const int32_t* targets, int64_t m,
                  int64_t vocab, int* errorFlag, cudaStream_t s) {
  if (m <= 0) return;
  launch("headLogprob", logprobKernel, static_cast<unsigned>(m), kThreads, 0, s, logits, logprob, argmax, targets, vocab,
         errorFlag);
}

void crossEntropyChunk(float* logits, double* rowLoss, float* logitsCopy, const int32_t* targets, int64_t m,
                       int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s) {
  if (m <= 0) return;
  launch("headCrossEntropy", crossEntropyKernel, static_cast<unsigned>(m), kThreads, 0, s, logits, rowLoss, logitsCopy,
         targets, vocab, gradScale, grads, errorFlag);
}

}  // namespace cuda
}  // namespace lmf
