// Matrix products in the engine's precision. Operands and output are f32 or bf16 (an f32 pointer, or a bf16 one
// with the same leading dimension). A product runs in bf16 (bf16 operands, fp32 accumulation, C written in its own
// dtype) in bf16 mode or when any of A, B, C is bf16: f32 operands are then rounded to packed bf16 copies in
// scratch, bf16 operands are read as they are stored. In fp32 mode with f32 buffers (or for a shape cuBLASLt has no
// bf16 algorithm for) it runs in fp32, bf16 buffers converted to f32 copies in scratch.
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
  // bf16 operands (instead of a / b), stored with leading dimension lda / ldb.
  const cuda::bf16raw* aBf16 = nullptr;
  const cuda::bf16raw* bBf16 = nullptr;
  // A bf16 output (instead of c), leading dimension ldc.
  cuda::bf16raw* cBf16 = nullptr;
};

void matmulF32(const MatmulF32& p);

// Writes a packed bf16 copy of a stored [rows, cols] matrix (row stride ld) into `dst`.
void convertBf16(cuda::bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld);

}  // namespace lmf
