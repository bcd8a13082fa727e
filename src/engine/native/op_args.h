// The ONE decoding of every op's positional arguments, shared by the CPU (src/engine/cpu) and CUDA
// (src/engine/cuda) engines: argument positions, dtype and bounds checks (through Args) and shape checks, with
// the error messages the ops have always thrown. Each engine's op calls decodeXxx, then only computes or
// launches. Checks that need the data itself (token ids, targets) are not here: on the CPU they run on the host
// after decoding, on CUDA the data lives on the device and the kernels flag bad values.
#pragma once
#include "glue.h"

namespace lmf {

// ---- embeddings ----

// embeddingForward(out, ids, table, n, d, accumulate); the table's row count (vocab) is implied by its buffer.
struct EmbeddingForwardArgs {
  float* out;
  const int32_t* ids;
  const float* table;
  int64_t n, d, vocab;
  bool accumulate;
};
EmbeddingForwardArgs decodeEmbeddingForward(const Args& a);

// embeddingBackward(dtable, ids, dout, n, d)
struct EmbeddingBackwardArgs {
  float* dtable;
  const int32_t* ids;
  const float* dout;
  int64_t n, d, vocab;
};
EmbeddingBackwardArgs decodeEmbeddingBackward(const Args& a);

// ---- normalisation ----

// rmsnormForward(out, rstd, x, w, rows, d, eps)
struct RmsnormForwardArgs {
  float* out;
  float* rstd;
  const float* x;
  const float* w;
  int64_t rows, d;
  double eps;
};
RmsnormForwardArgs decodeRmsnormForward(const Args& a);

// rmsnormBackward(dx, dw, dout, x, w, rstd, rows, d, accumulateDx)
struct RmsnormBackwardArgs {
  float* dx;
  float* dw;
  const float* dout;
  const float* x;
  const float* w;
  const float* rstd;
  int64_t rows, d;
  bool accumulateDx;
};
RmsnormBackwardArgs decodeRmsnormBackward(const Args& a);

// layernormForward(out, mean, rstd, x, w, b, rows, d, eps)
struct LayernormForwardArgs {
  float* out;
  float* mean;
  float* rstd;
  const float* x;
  const float* w;
  const float* b;
  int64_t rows, d;
  double eps;
};
LayernormForwardArgs decodeLayernormForward(const Args& a);

// layernormBackward(dx, dw, db, dout, x, w, mean, rstd, rows, d, accumulateDx)
struct LayernormBackwardArgs {
  float* dx;
  float* dw;
  float* db;
  const float* dout;
  const float* x;
  const float* w;
  const float* mean;
  const float* rstd;
  int64_t rows, d;
  bool accumulateDx;
};
LayernormBackwardArgs decodeLayernormBackward(const Args& a);

// ---- QK-norm + RoPE (qkPrep) ----

// n tokens of sequences of length seq; q|k columns of (heads + kvHeads) heads in rows of stride `stride`.
struct QkPrepShape {
  int64_t n, seq, heads, kvHeads, headDim, stride;
  int64_t nh() const { return heads + kvHeads; }
};

// qkPrepForward(out, rstd, qkv, qkvStride, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, eps,
//               positions).
// Absent norm weights / RoPE tables are null; rstd is decoded only when a norm weight is given.
struct QkPrepForwardArgs {
  QkPrepShape s;
  float* out;
  float* rstd;
  const float* qkv;
  const float* qNormW;
  const float* kNormW;
  const float* cos;
  const float* sin;
  double eps;
  const int32_t* positions;  // [n] position of each token (the row of cos/sin), or null: t % seq
};
QkPrepForwardArgs decodeQkPrepForward(const Args& a);

// qkPrepBackward(dqkv, qkvStride, dqNormW, dkNormW, dout, qkv, rstd, qNormW, kNormW, cos, sin,
//                n, seq, heads, kvHeads, headDim, positions)
struct QkPrepBackwardArgs {
  QkPrepShape s;
  float* dqkv;
  float* dqNormW;
  float* dkNormW;
  const float* dout;
  const float* qkv;
  const float* rstd;
  const float* qNormW;
  const float* kNormW;
  const float* cos;
  const float* sin;
  const int32_t* positions;
};
QkPrepBackwardArgs decodeQkPrepBackward(const Args& a);

// ---- attention ----

// Causal attention over batch sequences of seq tokens; q/k/v (and dq/dk/dv) rows have strides sq/sk/sv.
struct AttentionShape {
  int64_t sq, sk, sv, batch, seq, heads, kvHeads, headDim;
  float scale;
  int64_t n() const { return batch * seq; }
  int64_t od() const { return heads * headDim; }  // packed width of out / dout
};

// attentionForward(out, lse, q, k, v, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale, cuSeqlens, segments).
// Document masking: cuSeqlens [segments + 1] (int32) are the documents' starts over the flattened batch*seq
// tokens, then batch*seq; a token attends only within its document. Null: causal over each row of seq tokens.
// Every row start must be a boundary (a document never crosses rows); the CPU engine checks it on the host.
struct AttentionForwardArgs {
  AttentionShape s;
  float* out;
  float* lse;
  const float* q;
  const float* k;
  const float* v;
  const int32_t* cuSeqlens;
  int64_t segments;
};
AttentionForwardArgs decodeAttentionForward(const Args& a);

// attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale,
//                   cuSeqlens, segments)
struct AttentionBackwardArgs {
  AttentionShape s;
  float* dq;
  float* dk;
  float* dv;
  const float* dout;
  const float* q;
  const float* k;
  const float* v;
  const float* out;
  const float* lse;
  const int32_t* cuSeqlens;
  int64_t segments;
};
AttentionBackwardArgs decodeAttentionBackward(const Args& a);

// attentionDecode(out, q, k, v, sq, sk, sv, n, past, heads, kvHeads, headDim, scale): n new queries at
// positions past..past+n-1 of one sequence over past+n cached keys/values.
struct AttentionDecodeArgs {
  int64_t sq, sk, sv, n, past, heads, kvHeads, headDim;
  float scale;
  float* out;
  const float* q;
  const float* k;  // the k cache, past+n rows
  const float* v;  // the v cache, past+n rows
  int64_t total() const { return past + n; }
};
AttentionDecodeArgs decodeAttentionDecode(const Args& a);

// ---- activations ----

// swigluForward(out, gu, rows, f): gu is [rows, 2f] (gate | up).
struct SwigluForwardArgs {
  float* out;
  const float* gu;
  int64_t rows, f;
};
SwigluForwardArgs decodeSwigluForward(const Args& a);

// swigluBackward(dgu, dout, gu, rows, f)
struct SwigluBackwardArgs {
  float* dgu;
  const float* dout;
  const float* gu;
  int64_t rows, f;
};
SwigluBackwardArgs decodeSwigluBackward(const Args& a);

enum ActivationKind : int { kGelu = 0, kGeluTanh = 1, kSilu = 2 };

// activationForward(out, x, n, kind)
struct ActivationForwardArgs {
  float* out;
  const float* x;
  int64_t n;
  ActivationKind kind;
};
ActivationForwardArgs decodeActivationForward(const Args& a);

// activationBackward(dx, dout, x, n, kind)
struct ActivationBackwardArgs {
  float* dx;
  const float* dout;
  const float* x;
  int64_t n;
  ActivationKind kind;
};
ActivationBackwardArgs decodeActivationBackward(const Args& a);

// ---- the output head with cross-entropy ----

constexpr int32_t kIgnoreTarget = -100;  // a target that contributes no loss and no gradient

// headCrossEntropy(lossOut, h, w, targets, n, d, vocab, gradScale, dh, dw, logitsOut); dh, dw, logitsOut optional.
struct HeadCrossEntropyArgs {
  double* lossOut;
  const float* h;
  const float* w;
  const int32_t* targets;
  int64_t n, d, vocab;
  float gradScale;
  float* dh;
  float* dw;
  float* logitsOut;
};
HeadCrossEntropyArgs decodeHeadCrossEntropy(const Args& a);

// ---- matrix products ----

// matmul(c, a, b, m, n, k, transA, transB, lda, ldb, ldc, accumulate, bias): C[m,n] (+)= op(A) op(B) (+ bias).
// Leading dimensions are resolved (0 = packed width) and checked.
struct MatmulArgs {
  float* C;
  const float* A;
  const float* B;
  const float* bias;  // null when absent
  int64_t m, n, k;
  bool transA, transB;
  int64_t lda, ldb, ldc;
  bool accumulate;
};
MatmulArgs decodeMatmul(const Args& a);

// biasGrad(db, dy, rows, cols, ldy): db += column sums of dy (ldy resolved: 0 = cols).
struct BiasGradArgs {
  float* db;
  const float* dy;
  int64_t rows, cols, ldy;
};
BiasGradArgs decodeBiasGrad(const Args& a);

// ---- optimizer ----

// sumSquares(out f64, x, n): out[0] += sum x^2.
struct SumSquaresArgs {
  double* out;
  const float* x;
  int64_t n;
};
SumSquaresArgs decodeSumSquares(const Args& a);

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale). The step's coefficients are
// derived here in double and rounded once to float, so both engines use the same values.
struct AdamwArgs {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t n;
  double lr, beta1, beta2, eps, weightDecay, step, gradScale;
  float decay;     // 1 - lr * weightDecay
  float stepSize;  // lr / (1 - beta1^step)
  float bc2Sqrt;   // sqrt(1 - beta2^step)
};
AdamwArgs decodeAdamw(const Args& a);

// ---- memory ----

// upload(handle, off, typedArray) / download(handle, off, typedArray): the typed array's element type must be the
// buffer's dtype, and its length (from the offset) must fit in the buffer.
struct TransferArgs {
  void* buffer;  // engine memory at the offset
  void* host;    // the typed array's data
  size_t bytes;
};
TransferArgs decodeTransfer(const Args& a);

// fill(dst, off, n, value): any dtype; an i32 buffer only takes 32-bit integers.
struct FillArgs {
  void* dst;
  DType dtype;
  int64_t n;
  double value;
};
FillArgs decodeFill(const Args& a);

// copy(dst, off, src, off, n): same dtype (the destination's).
struct CopyArgs {
  void* dst;
  const void* src;
  DType dtype;
  int64_t n;
  size_t bytes() const { return static_cast<size_t>(n) * dtypeSize(dtype); }
};
CopyArgs decodeCopy(const Args& a);

// add(out, a, b, n)
struct AddArgs {
  float* out;
  const float* a;
  const float* b;
  int64_t n;
};
AddArgs decodeAdd(const Args& a);

// scale(x, n, s)
struct ScaleArgs {
  float* x;
  int64_t n;
  float s;
};
ScaleArgs decodeScale(const Args& a);

}  // namespace lmf
