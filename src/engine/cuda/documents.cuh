// Document bounds of packed rows (attention's document masking), shared by the attention kernels
// (attention.cu) and the tensor-core flash attention (flash_attention.cu).
#pragma once
#include <cstdint>

#include "../native/params.h"
#include "device.cuh"

namespace lmf {
namespace cuda {

// The document holding row i of sequence b: [start, end) as row indices of that sequence; [0, seq) without cu.
struct DocBounds {
  int64_t start, end;
};
__device__ __forceinline__ DocBounds docOf(const AttentionShape& sh, const int32_t* cu, int64_t b, int64_t i) {
  if (!cu) return {0, sh.seq};
  const int64_t t = b * sh.seq + i;
  int64_t lo = 0, hi = sh.segments - 1;  // the last g with cu[g] <= t
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (cu[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return {cu[lo] - b * sh.seq, cu[lo + 1] - b * sh.seq};
}

}  // namespace cuda
}  // namespace lmf
