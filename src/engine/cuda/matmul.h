// Matrix products on fp32 buffers in the engine's precision: in bf16 mode the operands are rounded to packed
// bf16 copies in scratch (or given already converted) and multiplied with fp32 accumulation into fp32 C;
// in fp32 mode (or for a shape cuBLASLt has no bf16 algorithm for) the fp32 operands are used directly.
#pragma once
#include <cstdint>

#include "kernels.cuh"

namespace lmf {

struct MatmulF32 {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  float beta = 0.f;
  // Packed bf16 copies of A / B made by the caller (bf16 mode only); null = convert here.
  const cuda::bf16raw* aBf16 = nullptr;
  const cuda::bf16raw* bBf16 = nullptr;
};

void matmulF32(const MatmulF32& p);

// Writes a packed bf16 copy of a stored [rows, cols] matrix (row stride ld) into `dst`.
void convertBf16(cuda::bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld);

}  // namespace lmf
