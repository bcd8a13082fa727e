// CUB's DeviceRadixSort::SortPairs for the interpreted CUDA engine: the same call (a size query with a null
// temporary storage, then the sort queued on the stream) with a stable CPU sort behind it (interpret/cub.cc).
// Keys sort numerically (signed keys too, as CUB's bit twiddling does); equal keys keep their input order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../cuda_runtime.h"

namespace lmf_interp {
// Bytes of temporary storage the model asks for n items (so a too-small area is caught as on the GPU).
size_t sortPairsTempBytes(int n);
cudaError_t sortPairsI32(void* temp, size_t tempBytes, const int32_t* keysIn, int32_t* keysOut, const int32_t* valuesIn,
                         int32_t* valuesOut, int n, int beginBit, int endBit, bool signedKeys, cudaStream_t stream);
}  // namespace lmf_interp

namespace cub {
struct DeviceRadixSort {
  template <class KeyT, class ValueT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in, KeyT* d_keys_out,
                               const ValueT* d_values_in, ValueT* d_values_out, int num_items, int begin_bit = 0,
                               int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = nullptr) {
    static_assert(sizeof(KeyT) == 4 && std::is_integral_v<KeyT> && sizeof(ValueT) == 4,
                  "the interpreted CUB sorts 32-bit integer keys with 32-bit values");
    if (!d_temp_storage) {
      temp_storage_bytes = ::lmf_interp::sortPairsTempBytes(num_items);
      return cudaSuccess;
    }
    return ::lmf_interp::sortPairsI32(d_temp_storage, temp_storage_bytes, reinterpret_cast<const int32_t*>(d_keys_in),
                                      reinterpret_cast<int32_t*>(d_keys_out), reinterpret_cast<const int32_t*>(d_values_in),
                                      reinterpret_cast<int32_t*>(d_values_out), num_items, begin_bit, end_bit,
                                      std::is_signed_v<KeyT>, stream);
  }
};
}  // namespace cub
