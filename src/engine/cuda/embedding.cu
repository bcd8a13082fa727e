// Token embedding gather and its deterministic scatter-add. Backward sorts positions by token id with CUB's
// stable radix sort, then one block per run of equal ids sums that id's rows in position order: no atomics,
// the same bits on every run.
#include <cub/device/device_radix_sort.cuh>

#include "device.cuh"
#include "kernels.cuh"

namespace lmf {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__global__ void gatherKernel(float* out, const int32_t* ids, const float* table, int64_t n, int64_t d, int64_t vocab,
                             bool accumulate, int* errorFlag) {
  const int64_t row = blockIdx.x;
  if (row >= n) return;
  const int32_t id = ids[row];
  float* dst = out + row * d;
  if (id < 0 || id >= vocab) {
    // Bad id: flag it (reported at the next sync) and write zeros rather than read out of bounds.
    if (threadIdx.x == 0) atomicCAS(errorFlag, kErrNone, kErrTokenId);
    if (!accumulate)
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] = 0.f;
    return;
  }
  const float* src = table + int64_t(id) * d;
  if (accumulate) {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] += src[j];
  } else {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] = src[j];
  }
}

__global__ void iotaKernel(int32_t* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = static_cast<int32_t>(i);
}

// Block i handles the run of equal ids that starts at sorted index i (blocks not at a run start exit).
__global__ void scatterRunsKernel(float* dtable, const int32_t* sortedIds, const int32_t* order, const float* dout,
                                  int64_t n, int64_t d, int64_t vocab, int* errorFlag) {
  const int64_t i = blockIdx.x;
  if (i >= n) return;
  const int32_t id = sortedIds[i];
  if (i > 0 && sortedIds[i - 1] == id) return;
  if (id < 0 || id >= vocab) {
    if (threadIdx.x == 0) atomicCAS(errorFlag, kErrNone, kErrTokenId);
    return;
  }
  int64_t end = i + 1;
  while (end < n && sortedIds[end] == id) end++;
  float* dst = dtable + int64_t(id) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float acc = dst[j];
    for (int64_t r = i; r < end; r++) acc += dout[int64_t(order[r]) * d + j];
    dst[j] = acc;
  }
}

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

size_t cubTempBytes(int64_t n) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(n));
  return bytes;
}

}  // namespace

void embeddingForward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t d, int64_t vocab,
                      bool accumulate, int* errorFlag, cudaStream_t s) {
  if (n <= 0 || d <= 0) return;
  launch("embeddingForward", gatherKernel, static_cast<unsigned>(n), kThreads, 0, s, out, ids, table, n, d, vocab,
         accumulate, errorFlag);
}

size_t embeddingBackwardScratch(int64_t n) {
  // iota positions, sorted ids, sorted positions, CUB temporary storage.
  return 3 * align256(size_t(n) * sizeof(int32_t)) + align256(cubTempBytes(n));
}

void embeddingBackward(float* dtable, const int32_t* ids, const float* dout, int64_t n, int64_t d, int64_t vocab,
                       void* scratch, size_t scratchBytes, int* errorFlag, cudaStream_t s) {
  if (n <= 0 || d <= 0) return;
  char* p = static_cast<char*>(scratch);
  const size_t idxBytes = align256(size_t(n) * sizeof(int32_t));
  auto* positions = reinterpret_cast<int32_t*>(p);
  auto* sortedIds = reinterpret_cast<int32_t*>(p + idxBytes);
  auto* order = reinterpret_cast<int32_t*>(p + 2 * idxBytes);
  void* temp = p + 3 * idxBytes;
  size_t tempBytes = scratchBytes - 3 * idxBytes;
  launch("embeddingBackward", iotaKernel, gridFor(n, kThreads), kThreads, 0, s, positions, n);
  // Radix sort is stable: equal ids keep increasing positions, which fixes the summation order.
  cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, tempBytes, ids, sortedIds, positions, order,
                                                  static_cast<int>(n), 0, 32, s);
  if (e != cudaSuccess) throw std::runtime_error(std::string("embeddingBackward: sort failed: ") + cudaGetErrorString(e));
  launch("embeddingBackward", scatterRunsKernel, static_cast<unsigned>(n), kThreads, 0, s, dtable, sortedIds, order,
         dout, n, d, vocab, errorFlag);
}

}  // namespace cuda
}  // namespace lmf
