// The matmul and biasGrad ops (arguments read and checked by the shared reader), and matmulF32 (bf16 or fp32).
// Bias: C's rows are set to the bias first and the GEMM accumulates onto them (beta = 1).
#include <algorithm>

#include "common.h"
#include "gemm.h"
#include "matmul.h"

namespace lmf {

void convertBf16(cuda::bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  cuda::toBf16(dst, src, rows, cols, ld, stream());
}

void matmulF32(const MatmulF32& p) {
  if (p.m == 0 || p.n == 0) return;
  const int64_t aRows = p.transA ? p.k : p.m, aCols = p.transA ? p.m : p.k;
  const int64_t bRows = p.transB ? p.n : p.k, bCols = p.transB ? p.k : p.n;
  Gemm g;
  g.transA = p.transA;
  g.transB = p.transB;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.c = p.c;
  g.ldc = p.ldc;
  g.beta = p.beta;
  if (precision() == Precision::BF16) {
    // Packed bf16 copies of the operands (made here unless the caller converted them already).
    g.lda = std::max<int64_t>(aCols, 1);
    g.ldb = std::max<int64_t>(bCols, 1);
    g.bf16Inputs = true;
    if (gemmSupported(g)) {
      const cuda::bf16raw* a = p.aBf16;
      if (!a) {
        auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchA, size_t(aRows * aCols) * 2));
        convertBf16(t, p.a, aRows, aCols, p.lda);
        a = t;
      }
      const cuda::bf16raw* b = p.bBf16;
      if (!b) {
        auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchB, size_t(bRows * bCols) * 2));
        convertBf16(t, p.b, bRows, bCols, p.ldb);
        b = t;
      }
      g.a = a;
      g.b = b;
      gemm(g, stream());
      return;
    }
  }
  // fp32 mode, or a shape cuBLASLt has no bf16 algorithm for: the fp32 operands as they are stored.
  g.a = p.a;
  g.lda = p.lda;
  g.b = p.b;
  g.ldb = p.ldb;
  g.bf16Inputs = false;
  gemm(g, stream());
}

void op::matmul(const MatmulArgs& args) {
  const int64_t m = args.m, n = args.n, k = args.k, ldc = args.ldc;
  const bool acc = args.accumulate;
  float* C = args.C;
  const float* bias = args.bias;
  if (m == 0 || n == 0) return;
  float beta = acc ? 1.0f : 0.0f;
  if (bias) {
    cuda::broadcastRows(C, bias, m, n, ldc, stream());
    beta = 1.0f;
  }
  if (k == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; i++) cuda::fillF32(C + i * ldc, n, 0.f, stream());
    return;
  }
  MatmulF32 p;
  p.transA = args.transA;
  p.transB = args.transB;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = args.A;
  p.lda = args.lda;
  p.b = args.B;
  p.ldb = args.ldb;
  p.c = C;
  p.ldc = ldc;
  p.beta = beta;
  matmulF32(p);
}

// db += column sums (double, fixed order).
void op::biasGrad(const BiasGradArgs& p) {
  if (p.rows == 0 || p.cols == 0) return;
  double* partials = scratchPartials(cuda::colSumPartials(p.rows, p.cols));
  cuda::columnSums(p.db, p.dy, p.rows, p.cols, p.ldy, partials, stream());
}

}  // namespace lmf
