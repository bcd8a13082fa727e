// The output head fused with cross-entropy, in row chunks so the [N, V] logits never exist at once. Per chunk:
// logits = h · W^T (GEMM), the loss kernel (loss.cu) turns them into dlogits in place, then dh = dlogits · W and
// dW += dlogits^T · h, the second straight into the fp32 gradient with beta = 1 (tied weights: the embedding's
// gradient). Row losses are kept in double and summed in a fixed order into lossOut. headLogprob runs the same
// forward GEMM per chunk and reduces each row to the target's log-probability and the argmax (evaluation).
//   - bf16 mode: the chunk is bf16. W is rounded to bf16 once per call and h's rows once per chunk; the logits GEMM
//     writes bf16 (fp32 accumulation, one rounding), the loss kernel writes bf16 dlogits over them, and both
//     gradient GEMMs read that chunk as it is: no fp32 logits, no conversion of dlogits, no temporary.
//   - fp32 mode (and a shape cuBLASLt has no bf16 algorithm for): an fp32 chunk and fp32 GEMMs, as before.
// The bf16 chunk is opt-in (LMFORGE_CUDA_HEAD=bf16); by default bf16 mode keeps an fp32 logits chunk (the loss
// kernel's single online-softmax pass over it, dlogits rounded once to bf16 for the two gradient GEMMs). The bf16
// logits round every logit before the softmax, as autocast does; on the golden cases that moves the loss after
// three AdamW steps (lr 1e-2) past the bf16 tolerance (qwen3-tiny: 1.02e-2 against 8.4e-3 with fp32 logits; see
// docs/cuda.md), so it stays an option until a GPU measures what it saves.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common.h"
#include "gemm.h"
#include "matmul.h"

namespace lmf {

namespace {

// Whether bf16 mode runs the head on a bf16 logits chunk (LMFORGE_CUDA_HEAD=bf16) or an fp32 one (default, fp32).
bool bf16LogitsChosen(const char* op) {
  const char* v = std::getenv("LMFORGE_CUDA_HEAD");
  if (!v || !*v || std::strcmp(v, "fp32") == 0) return false;
  if (std::strcmp(v, "bf16") == 0) return true;
  opFail(op, std::string("LMFORGE_CUDA_HEAD='") + v + "' is not a head precision: use fp32 (default) or bf16");
}

// About 1 GiB of logits per chunk, in either type: 3,520 bf16 or 1,728 fp32 rows for a 151,936 vocabulary.
constexpr int64_t kChunkBytes = int64_t(1) << 30;

// Row stride of a logits chunk: the vocabulary rounded up to 8 elements, so every row starts 16-byte aligned for
// the loss kernel's vector loads and the GEMMs' aligned algorithms. The padding columns are never written or read.
int64_t chunkStride(int64_t vocab) { return (vocab + 7) / 8 * 8; }

// Rows per chunk: about kChunkBytes of logits, a multiple of 64 so the GEMMs keep whole tiles;
// LMFORGE_CE_CHUNK overrides (as on the CPU; the tests use it for several chunks).
int64_t chunkRows(int64_t n, int64_t ld, int64_t elementBytes) {
  const char* env = std::getenv("LMFORGE_CE_CHUNK");
  int64_t r = env ? std::atoll(env) : 0;
  if (r <= 0) {
    r = kChunkBytes / (std::max<int64_t>(ld, 1) * elementBytes);
    r = std::max<int64_t>(64, r / 64 * 64);
  }
  return std::max<int64_t>(1, std::min(r, n));
}

// Rows r0.. of the head's input h (f32 or bf16, read as stored) as a GEMM operand (the fp32-logits path).
void setHRows(const Act<const float>& h, int64_t r0, int64_t d, const float*& f32, const cuda::bf16raw*& bf16) {
  if (h.bf16()) bf16 = h.as<const cuda::bf16raw>() + r0 * d;
  else f32 = static_cast<const float*>(h) + r0 * d;
}

// The head input's rows [r0, r0 + m) as packed bf16: the logits GEMM's A operand and the dW GEMM's B operand. A
// bf16 h (the bf16 activation arena) is used as stored; an f32 h is rounded into `area` (when `convert`; without,
// only where the rows will be, for the alignment question to cuBLASLt).
const cuda::bf16raw* headRowsBf16(const Act<const float>& h, int64_t r0, int64_t m, int64_t d, cuda::bf16raw* area,
                                  bool convert) {
  if (h.bf16()) return h.as<const cuda::bf16raw>() + r0 * d;
  if (convert) convertBf16(area, static_cast<const float*>(h) + r0 * d, m, d, d);
  return area;
}

// logits[m, V] (bf16, row stride ld) = hRows[m, d] · W[V, d]^T
Gemm logitsGemm(const cuda::bf16raw* hRows, const cuda::bf16raw* w, cuda::bf16raw* logits, int64_t m, int64_t V,
                int64_t d, int64_t ld) {
  Gemm g;
  g.transB = true;
  g.m = m;
  g.n = V;
  g.k = d;
  g.a = hRows;
  g.lda = d;
  g.b = w;
  g.ldb = d;
  g.c = logits;
  g.ldc = ld;
  g.bf16Inputs = true;
  g.bf16Output = true;
  return g;
}

// dh[m, d] (fp32) = dlogits[m, V] · W[V, d]
Gemm dhGemm(const cuda::bf16raw* dlogits, const cuda::bf16raw* w, float* dh, int64_t m, int64_t V, int64_t d,
            int64_t ld) {
  Gemm g;
  g.m = m;
  g.n = d;
  g.k = V;
  g.a = dlogits;
  g.lda = ld;
  g.b = w;
  g.ldb = d;
  g.c = dh;
  g.ldc = d;
  g.bf16Inputs = true;
  return g;
}

// dW[V, d] (fp32) += dlogits[m, V]^T · hRows[m, d]: accumulated by the GEMM itself (beta = 1).
Gemm dwGemm(const cuda::bf16raw* dlogits, const cuda::bf16raw* hRows, float* dw, int64_t m, int64_t V, int64_t d,
            int64_t ld) {
  Gemm g;
  g.transA = true;
  g.m = V;
  g.n = d;
  g.k = m;
  g.a = dlogits;
  g.lda = ld;
  g.b = hRows;
  g.ldb = d;
  g.c = dw;
  g.ldc = d;
  g.beta = 1.f;
  g.bf16Inputs = true;
  return g;
}

// The places of the bf16 head's operands in scratch, taken before anything is queued.
struct Bf16Head {
  int64_t rows = 0, ld = 0;
  cuda::bf16raw* logits = nullptr;  // [rows, ld]
  cuda::bf16raw* w = nullptr;       // [V, d] packed
  cuda::bf16raw* hArea = nullptr;   // [rows, d] packed, for an f32 h only
};

Bf16Head placeBf16Head(int64_t n, int64_t V, int64_t d, bool hIsBf16) {
  Bf16Head b;
  b.ld = chunkStride(V);
  b.rows = chunkRows(n, b.ld, 2);
  b.logits = static_cast<cuda::bf16raw*>(scratch(kScratchLogits, size_t(b.rows * b.ld) * 2));
  b.w = static_cast<cuda::bf16raw*>(scratch(kScratchHeadW, size_t(V * d) * 2));
  if (!hIsBf16) b.hArea = static_cast<cuda::bf16raw*>(scratch(kScratchA, size_t(b.rows * d) * 2));
  return b;
}

// Whether cuBLASLt has a bf16 algorithm for every product of the call, chunk by chunk (the answers are cached per
// shape and alignment, so this costs a few lookups per call). If not, the whole call takes the fp32 path.
bool bf16HeadSupported(const Bf16Head& b, const Act<const float>& h, float* dh, float* dw, int64_t n, int64_t V, int64_t d) {
  for (int64_t r0 = 0; r0 < n; r0 += b.rows) {
    const int64_t m = std::min(b.rows, n - r0);
    const cuda::bf16raw* hRows = headRowsBf16(h, r0, m, d, b.hArea, false);
    if (!gemmSupported(logitsGemm(hRows, b.w, b.logits, m, V, d, b.ld))) return false;
    if (dh && !gemmSupported(dhGemm(b.logits, b.w, dh + r0 * d, m, V, d, b.ld))) return false;
    if (dw && !gemmSupported(dwGemm(b.logits, hRows, dw, m, V, d, b.ld))) return false;
  }
  return true;
}

// L[m, V] (fp32, row stride ld) = h[r0:r0+m] · W^T in the engine's precision (bf16 operands in bf16 mode).
void logitsF32(float* L, const Act<const float>& h, const float* w, const cuda::bf16raw* wBf16, int64_t r0, int64_t m, int64_t V,
               int64_t d, int64_t ld) {
  MatmulF32 fwd;
  fwd.transB = true;
  fwd.m = m;
  fwd.n = V;
  fwd.k = d;
  setHRows(h, r0, d, fwd.a, fwd.aBf16);
  fwd.lda = d;
  fwd.b = w;
  fwd.ldb = d;
  fwd.bBf16 = wBf16;
  fwd.c = L;
  fwd.ldc = ld;
  matmulF32(fwd);
}

// The head with an fp32 logits chunk: fp32 mode, or bf16 mode for a shape without bf16 algorithms (then the
// operands of each product are rounded to bf16 by matmulF32 where it can, dlogits once per chunk).
void headCrossEntropyF32(const HeadCrossEntropyArgs& args, double* rowLoss) {
  const int64_t n = args.n, d = args.d, V = args.vocab, ld = chunkStride(V);
  const bool grads = args.dh || args.dw;
  const bool bf16 = precision() == Precision::BF16;
  const int64_t R = chunkRows(n, ld, 4);
  auto* L = static_cast<float*>(scratch(kScratchLogits, size_t(R * ld) * 4));
  const cuda::bf16raw* wBf16 = nullptr;
  if (bf16) {
    auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchHeadW, size_t(V * d) * 2));
    convertBf16(t, args.w, V, d, d);
    wBf16 = t;
  }
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    logitsF32(L, args.h, args.w, wBf16, r0, m, V, d, ld);
    cuda::crossEntropyChunk(L, ld, rowLoss + r0, args.logitsOut ? args.logitsOut + r0 * V : nullptr, args.targets + r0,
                            m, V, args.gradScale, grads, deviceErrorFlag(), stream());
    if (!grads) continue;
    // dlogits is the A operand of dh and the (transposed) A operand of dW: convert it once.
    const cuda::bf16raw* lBf16 = nullptr;
    if (bf16) {
      auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchA, size_t(m * V) * 2));
      convertBf16(t, L, m, V, ld);
      lBf16 = t;
    }
    if (args.dh) {
      MatmulF32 p;  // dh[m, d] = dL[m, V] · W[V, d]
      p.m = m;
      p.n = d;
      p.k = V;
      p.a = L;
      p.lda = lBf16 ? V : ld;  // the bf16 copy is packed
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
      p.lda = lBf16 ? V : ld;  // the bf16 copy is packed
      p.aBf16 = lBf16;
      setHRows(args.h, r0, d, p.b, p.bBf16);
      p.ldb = d;
      p.c = args.dw;
      p.ldc = d;
      p.beta = 1.f;
      matmulF32(p);
    }
  }
}

}  // namespace

void op::headCrossEntropy(const HeadCrossEntropyArgs& args) {
  const int64_t n = args.n, d = args.d, V = args.vocab;
  if (n == 0) return;
  auto* rowLoss = static_cast<double*>(scratch(kScratchRowLoss, size_t(n) * 8));
  if (precision() == Precision::BF16 && bf16LogitsChosen(args.kOp)) {
    const Bf16Head b = placeBf16Head(n, V, d, args.h.bf16());
    if (bf16HeadSupported(b, args.h, args.dh, args.dw, n, V, d)) {
      const bool grads = args.dh || args.dw;
      convertBf16(b.w, args.w, V, d, d);
      for (int64_t r0 = 0; r0 < n; r0 += b.rows) {
        const int64_t m = std::min(b.rows, n - r0);
        const cuda::bf16raw* hRows = headRowsBf16(args.h, r0, m, d, b.hArea, true);
        gemm(logitsGemm(hRows, b.w, b.logits, m, V, d, b.ld), stream());
        cuda::crossEntropyChunk(b.logits, b.ld, rowLoss + r0, args.logitsOut ? args.logitsOut + r0 * V : nullptr,
                                args.targets + r0, m, V, args.gradScale, grads, deviceErrorFlag(), stream());
        if (args.dh) gemm(dhGemm(b.logits, b.w, args.dh + r0 * d, m, V, d, b.ld), stream());
        if (args.dw) gemm(dwGemm(b.logits, hRows, args.dw, m, V, d, b.ld), stream());
      }
      cuda::sumF64(args.lossOut, rowLoss, n, stream());
      return;
    }
  }
  headCrossEntropyF32(args, rowLoss);
  cuda::sumF64(args.lossOut, rowLoss, n, stream());
}

void op::headLogprob(const HeadLogprobArgs& args) {
  const int64_t n = args.n, d = args.d, V = args.vocab;
  if (n == 0) return;
  if (precision() == Precision::BF16 && bf16LogitsChosen(args.kOp)) {
    // bf16 logits as in training, so evaluation scores the model that trains.
    const Bf16Head b = placeBf16Head(n, V, d, args.h.bf16());
    if (bf16HeadSupported(b, args.h, nullptr, nullptr, n, V, d)) {
      convertBf16(b.w, args.w, V, d, d);
      for (int64_t r0 = 0; r0 < n; r0 += b.rows) {
        const int64_t m = std::min(b.rows, n - r0);
        gemm(logitsGemm(headRowsBf16(args.h, r0, m, d, b.hArea, true), b.w, b.logits, m, V, d, b.ld), stream());
        cuda::logprobChunk(b.logits, b.ld, args.logprobOut + r0, args.argmaxOut + r0, args.targets + r0, m, V,
                           deviceErrorFlag(), stream());
      }
      return;
    }
  }
  const int64_t ld = chunkStride(V), R = chunkRows(n, ld, 4);
  auto* L = static_cast<float*>(scratch(kScratchLogits, size_t(R * ld) * 4));
  const cuda::bf16raw* wBf16 = nullptr;
  if (precision() == Precision::BF16) {
    auto* t = static_cast<cuda::bf16raw*>(scratch(kScratchHeadW, size_t(V * d) * 2));
    convertBf16(t, args.w, V, d, d);
    wBf16 = t;
  }
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    logitsF32(L, args.h, args.w, wBf16, r0, m, V, d, ld);
    cuda::logprobChunk(L, ld, args.logprobOut + r0, args.argmaxOut + r0, args.targets + r0, m, V, deviceErrorFlag(),
                       stream());
  }
}

}  // namespace lmf
