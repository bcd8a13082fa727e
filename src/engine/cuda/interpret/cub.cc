// CUB's radix sort of (key, value) pairs for the interpreted CUDA engine (include/cub/...): the same contract
// (temporary storage sized by a first call, the sort queued on the stream, stable) with std::stable_sort.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "cub/device/device_radix_sort.cuh"

namespace lmf_interp {

size_t sortPairsTempBytes(int n) { return 256 + 8 * size_t(n > 0 ? n : 0); }

cudaError_t sortPairsI32(void* temp, size_t tempBytes, const int32_t* keysIn, int32_t* keysOut, const int32_t* valuesIn,
                         int32_t* valuesOut, int n, int beginBit, int endBit, bool signedKeys, cudaStream_t stream) {
  if (stickyError() != cudaSuccess) return setLastError(stickyError());
  if (n < 0 || beginBit < 0 || endBit > 32 || beginBit >= endBit) return setLastError(cudaErrorInvalidValue);
  if (tempBytes < sortPairsTempBytes(n)) return setLastError(cudaErrorInvalidValue);
  const size_t bytes = size_t(n) * 4;
  if (n > 0 && (!isDeviceRange(temp, tempBytes) || !isDeviceRange(keysIn, bytes) || !isDeviceRange(keysOut, bytes) ||
                !isDeviceRange(valuesIn, bytes) || !isDeviceRange(valuesOut, bytes)))
    return setLastError(cudaErrorInvalidValue);
  enqueueHostTask(stream, "cub::DeviceRadixSort::SortPairs", [=] {
    const uint32_t mask = endBit - beginBit == 32 ? 0xffffffffu : ((1u << (endBit - beginBit)) - 1u);
    auto digit = [&](int32_t k) {
      uint32_t u;
      std::memcpy(&u, &k, 4);
      if (signedKeys) u ^= 0x80000000u;  // CUB's twiddle: signed keys sort numerically
      return (u >> beginBit) & mask;
    };
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return digit(keysIn[a]) < digit(keysIn[b]); });
    std::vector<int32_t> k(n), v(n);
    for (int i = 0; i < n; i++) {
      k[i] = keysIn[order[i]];
      v[i] = valuesIn[order[i]];
    }
    std::memset(temp, 0xff, tempBytes);  // the scratch holds nothing useful afterwards, as on the GPU
    if (n > 0) {
      std::memcpy(keysOut, k.data(), bytes);
      std::memcpy(valuesOut, v.data(), bytes);
    }
  });
  return cudaSuccess;
}

}  // namespace lmf_interp
