// The output head fused with cross-entropy, in row chunks so the [N, V] logits never exist at once:
// per chunk, logits = h · W^T (GEMM), the softmax/loss kernel turns them into dlogits in place, then
// dh = dlogits · W and dW += dlogits^T · h. In bf16 mode W is rounded to bf16 once per call and dlogits once
// per chunk. Row losses are kept in double and summed in a fixed order into lossOut. headLogprob runs the same
// forward GEMM per chunk and reduces each row to the target's log-probability and the argmax (evaluation).
#include <algorithm>
#include <cstdlib>

#include "common.h"
#include "matmul.h"

namespace lmf {

namespace {

// Rows per chunk: about 1 GiB of fp32 logits (1,728 rows for a 151,936 vocabulary), a multiple of 64 so
// the GEMMs keep whole tiles; LMFORGE_CE_CHUNK overrides (as on the CPU).
int64_t chunkRows(int64_t n, int64_t vocab) {
  const char* env = std::getenv("LMFORGE_CE_CHUNK");
  int64_t r = env ? std::atoll(env) : 0;
  if (r <= 0) {
    r = (int64_t(1) << 28) / std::max<int64_t>(vocab, 1);
    r = std::max<int64_t>(64, r / 64 * 64);
  }
  return std::max<int64_t>(1, std::min(r, n));
}

// Rows r0.. of the head's input h (f32 or bf16, read as stored) as a GEMM operand.
void setHRows(const Act<const float>& h, int64_t r0, int64_t d, const float*& f32, const cuda::bf16raw*& bf16) {
  if (h.bf16()) bf16 = h.as<const cuda::bf16raw>() + r0 * d;
  else f32 = static_cast<const float*>(h) + r0 * d;
}

}  // namespace

void op::headCrossEntropy(const HeadCrossEntropyArgs& args) {
  const int64_t n = args.n, d = args.d, V = args.vocab;
  if (n == 0) return;
  const bool grads = args.dh || args.dw;
  const bool bf16 = precision() == Precision::BF16;
  const int64_t R = chunkRows(n, V);
  auto* L = static_cast<float*>(scratch(kScratchLogits, size_t(R * V) * 4));
  auto* rowLoss = static_cast<double*>(scratch(kScratchRowLoss, size_t(n) * 8));
  const cuda::bf16raw* wBf16 = nullptr;
  if (bf16) {
    auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchHeadW, size_t(V * d) * 2));
    convertBf16(t, args.w, V, d, d);
    wBf16 = t;
  }
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    MatmulF32 fwd;  // L[m, V] = h[r0:r0+m] · W^T
    fwd.transB = true;
    fwd.m = m;
    fwd.n = V;
    fwd.k = d;
    setHRows(args.h, r0, d, fwd.a, fwd.aBf16);
    fwd.lda = d;
    fwd.b = args.w;
    fwd.ldb = d;
    fwd.bBf16 = wBf16;
    fwd.c = L;
    fwd.ldc = V;
    matmulF32(fwd);
    cuda::crossEntropyChunk(L, rowLoss + r0, args.logitsOut ? args.logitsOut + r0 * V : nullptr, args.targets + r0, m,
                            V, args.gradScale, grads, deviceErrorFlag(), stream());
    if (!grads) continue;
    // dlogits is the A operand of dh and the (transposed) A operand of dW: convert it once.
    const cuda::bf16raw* lBf16 = nullptr;
    if (bf16) {
      auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchA, size_t(m * V) * 2));
      convertBf16(t, L, m, V, V);
      lBf16 = t;
    }
    if (args.dh) {
      MatmulF32 p;  // dh[m, d] = dL[m, V] · W[V, d]
      p.m = m;
      p.n = d;
      p.k = V;
      p.a = L;
      p.lda = V;
      p.aBf16 = lBf16;
      p.b = args.w;
      p.ldb = d;
      p.bBf16 = wBf16;
      p.c = args.dh + r0 * d;
      p.ldc = d;
      matmulF32(p);
    }
    if (args.dw) {
      MatmulF32 p;  // dW[V, d] += dL^T[V, m] · h[m, d]
      p.transA = true;
      p.m = V;
      p.n = d;
      p.k = m;
      p.a = L;
      p.lda = V;
      p.aBf16 = lBf16;
      setHRows(args.h, r0, d, p.b, p.bBf16);
      p.ldb = d;
      p.c = args.dw;
      p.ldc = d;
      p.beta = 1.f;
      matmulF32(p);
    }
  }
  cuda::sumF64(args.lossOut, rowLoss, n, stream());
}

void op::headLogprob(const HeadLogprobArgs& args) {
  const int64_t n = args.n, d = args.d, V = args.vocab;
  if (n == 0) return;
  const int64_t R = chunkRows(n, V);
  auto* L = static_cast<float*>(scratch(kScratchLogits, size_t(R * V) * 4));
  const cuda::bf16raw* wBf16 = nullptr;
  if (precision() == Precision::BF16) {
    // The same rounding of W as the training forward, so evaluation scores the model that trains.
    auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchHeadW, size_t(V * d) * 2));
    convertBf16(t, args.w, V, d, d);
    wBf16 = t;
  }
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    MatmulF32 fwd;  // L[m, V] = h[r0:r0+m] · W^T
    fwd.transB = true;
    fwd.m = m;
    fwd.n = V;
    fwd.k = d;
    setHRows(args.h, r0, d, fwd.a, fwd.aBf16);
    fwd.lda = d;
    fwd.b = args.w;
    fwd.ldb = d;
    fwd.bBf16 = wBf16;
    fwd.c = L;
    fwd.ldc = V;
    matmulF32(fwd);
    cuda::logprobChunk(L, args.logprobOut + r0, args.argmaxOut + r0, args.targets + r0, m, V, deviceErrorFlag(), stream());
  }
}

}  // namespace lmf
