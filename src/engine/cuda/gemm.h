// The one GEMM entry point of the CUDA engine, free of cuBLAS types so that only gemm.cc needs cublasLt.h.
// Row-major semantics like the backend interface: C[m, n] = alpha * op(A) · op(B) + beta * C.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace lmf {

struct Gemm {
  bool transA = false, transB = false;  // A stored [k, m] / B stored [n, k]
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  int64_t ldb = 0;
  void* c = nullptr;  // fp32 output, or bf16 with bf16Output (also the input when beta != 0)
  int64_t ldc = 0;
  float alpha = 1.f, beta = 0.f;
  bool bf16Inputs = false;  // A and B hold bf16 (fp32 accumulate); else fp32 with fp32 compute (no TF32)
  bool bf16Output = false;  // C holds bf16 (only with bf16Inputs)
};

// Enqueues the product on `stream` (cuBLASLt, heuristic algorithm, cached per shape). Throws on failure.
void gemm(const Gemm& g, cudaStream_t stream);

// Whether cuBLASLt has an algorithm for this shape, type and these pointers' alignments (checked once per
// combination, then cached). The pointers must be set (their alignment matters, not their contents).
bool gemmSupported(const Gemm& g);

// Human-readable library version for describe().
const char* gemmLibrary();

}  // namespace lmf
