// The matmul and biasGrad ops (arguments read and checked by the shared reader), and matmulF32 (bf16 or fp32;
// operands and output f32 or bf16).
// Bias: C's rows are set to the bias first and the GEMM accumulates onto them (beta = 1).
#include <algorithm>

#include "common.h"
#include "gemm.h"
#include "matmul.h"

namespace lmf {

void convertBf16(cuda::bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  cuda::toBf16(dst, src, rows, cols, ld, stream());
}

namespace {

// op(X) stored [rows, cols] (row stride ld) as an f32 or a bf16 matrix.
struct Operand {
  const void* p = nullptr;
  bool bf16 = false;
  int64_t rows = 0, cols = 0, ld = 0;
};

// The operand as bf16 (as stored, or rounded into a packed copy in `slot`), or as f32 (as stored, or a packed
// f32 copy in `slot`).
Operand asBf16(const Operand& x, ScratchSlot slot) {
  if (x.bf16) return x;
  void* t = scratch(slot, size_t(x.rows * x.cols) * 2);
  convertBf16(static_cast<cuda::bf16raw*>(t), static_cast<const float*>(x.p), x.rows, x.cols, x.ld);
  return {t, true, x.rows, x.cols, std::max<int64_t>(x.cols, 1)};
}
Operand asF32(const Operand& x, ScratchSlot slot) {
  if (!x.bf16) return x;
  void* t = scratch(slot, size_t(x.rows * x.cols) * 4);
  cuda::convertRows({t, false}, std::max<int64_t>(x.cols, 1), {x.p, true}, x.ld, x.rows, x.cols, stream());
  return {t, false, x.rows, x.cols, std::max<int64_t>(x.cols, 1)};
}

}  // namespace

void matmulF32(const MatmulF32& p) {
  if (p.m == 0 || p.n == 0) return;
  const Operand A{p.aBf16 ? static_cast<const void*>(p.aBf16) : p.a, p.aBf16 != nullptr, p.transA ? p.k : p.m,
                  p.transA ? p.m : p.k, p.lda};
  const Operand B{p.bBf16 ? static_cast<const void*>(p.bBf16) : p.b, p.bBf16 != nullptr, p.transB ? p.n : p.k,
                  p.transB ? p.k : p.n, p.ldb};
  const bool cBf16 = p.cBf16 != nullptr;
  void* C = cBf16 ? static_cast<void*>(p.cBf16) : static_cast<void*>(p.c);
  Gemm g;
  g.transA = p.transA;
  g.transB = p.transB;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.c = C;
  g.ldc = p.ldc;
  g.beta = p.beta;
  g.bf16Output = cBf16;
  if (precision() == Precision::BF16 || A.bf16 || B.bf16 || cBf16) {
    // The places of the operands' bf16 copies are known before the conversion, so cuBLASLt is asked first (their
    // alignment is part of the question); an operand already in bf16 is read where it is stored.
    const auto place = [](const Operand& x, ScratchSlot slot) -> Operand {
      if (x.bf16) return x;
      return {scratch(slot, size_t(x.rows * x.cols) * 2), true, x.rows, x.cols, std::max<int64_t>(x.cols, 1)};
    };
    const Operand a = place(A, kScratchA), b = place(B, kScratchB);
    g.a = a.p;
    g.lda = a.ld;
    g.b = b.p;
    g.ldb = b.ld;
    g.bf16Inputs = true;
    if (gemmSupported(g)) {
      asBf16(A, kScratchA);
      asBf16(B, kScratchB);
      gemm(g, stream());
      return;
    }
  }
  // fp32: f32 copies of bf16 operands; a bf16 C is computed in an f32 copy (holding C first when beta != 0) and
  // rounded back.
  const Operand a = asF32(A, kScratchAF32), b = asF32(B, kScratchBF32);
  g.a = a.p;
  g.lda = a.ld;
  g.b = b.p;
  g.ldb = b.ld;
  g.bf16Inputs = false;
  g.bf16Output = false;
  if (!cBf16) {
    gemm(g, stream());
    return;
  }
  const Operand c32 = asF32({C, true, p.m, p.n, p.ldc}, kScratchCF32);
  g.c = const_cast<void*>(c32.p);
  g.ldc = c32.ld;
  if (p.beta == 0.f) cuda::fillF32(static_cast<float*>(g.c), p.m * p.n, 0.f, stream());  // never read NaN scratch
  gemm(g, stream());
  cuda::convertRows({C, true}, p.ldc, {c32.p, false}, c32.ld, p.m, p.n, stream());
}

void op::matmul(const MatmulArgs& args) {
  const int64_t m = args.m, n = args.n, k = args.k, ldc = args.ldc;
  const bool acc = args.accumulate;
  const float* bias = args.bias;
  if (m == 0 || n == 0) return;
  float beta = acc ? 1.0f : 0.0f;
  if (bias) {
    cuda::broadcastRows(dev(args.C), bias, m, n, ldc, stream());
    beta = 1.0f;
  }
  if (k == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; i++) {
        if (args.C.bf16()) cuda::fillBf16(args.C.as<cuda::bf16raw>() + i * ldc, n, 0, stream());
        else cuda::fillF32(static_cast<float*>(args.C) + i * ldc, n, 0.f, stream());
      }
    return;
  }
  MatmulF32 p;
  p.transA = args.transA;
  p.transB = args.transB;
  p.m = m;
  p.n = n;
  p.k = k;
  if (args.A.bf16()) p.aBf16 = args.A.as<const cuda::bf16raw>();
  else p.a = args.A;
  p.lda = args.lda;
  if (args.B.bf16()) p.bBf16 = args.B.as<const cuda::bf16raw>();
  else p.b = args.B;
  p.ldb = args.ldb;
  if (args.C.bf16()) p.cBf16 = args.C.as<cuda::bf16raw>();
  else p.c = args.C;
  p.ldc = ldc;
  p.beta = beta;
  matmulF32(p);
}

// db += column sums (double, fixed order).
void op::biasGrad(const BiasGradArgs& p) {
  if (p.rows == 0 || p.cols == 0) return;
  double* partials = scratchPartials(cuda::colSumPartials(p.rows, p.cols));
  cuda::columnSums(p.db, dev(p.dy), p.rows, p.cols, p.ldy, partials, stream());
}

}  // namespace lmf
