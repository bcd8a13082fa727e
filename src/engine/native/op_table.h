// The argument table of every op both engines export: the one place that says which arguments an op takes, in
// which order, of which kind, and how many elements each buffer must hold. From it come
//   - each op's struct of read arguments and its reader (op_args.h / op_args.cc), with the positions named;
//   - the registration of every op, calling the engine's `op::<name>` (registerOps);
//   - the TypeScript marshalling order: the addons export the table (opTable()), which
//     scripts/gen-op-table.mjs writes into src/engine/op-table.ts, and native.ts passes each op's named
//     arguments in that order (it refuses an addon whose table differs).
//
// LMF_OPS lists the ops: OP(name, Struct) gives Struct its own scalar members; SHAPED(name, Struct, Shape) makes
// Struct a Shape (params.h) whose members receive the scalars, so the kernels can take the shape as it is.
// LMF_ARGS_<name>(X) lists an op's arguments in call order, one X(kind, ...) each:
//   X(BUF, name, T, count)        a buffer of element type T (float, const float, double, int32_t...) that must
//                                 hold `count` elements from its offset; it travels as two numbers, handle and
//                                 offset
//   X(OPT, name, T, count)        the same, or absent (handle -1): then the member is null
//   X(WHEN, cond, name, T, count) required when `cond` holds (read after every BUF and OPT), else null
//   X(ANY, name, T, count, dt)    a buffer of any dtype (T is void or const void), checked against member `dt`
//   X(ACT, name, T, count)        an activation: an f32 or a bf16 buffer (T is float or const float); the member is
//                                 an Act<T> (glue.h: pointer + dtype). Parameters, their gradients, statistics
//                                 (norm mean/rstd, lse), RoPE tables, f64 scalars and ids stay BUF
//   X(INT, name)                  a non-negative integer (int64_t)
//   X(NUM, name)                  a number (double)
//   X(FLAG, name)                 a boolean
//   X(HOST, name)                 a JavaScript typed array (host memory)
//   X(LET, T, name)               no argument: a member the op's check() derives
// Scalars are read first (in order), then the op's check() runs, then the buffers (in order): so counts, written
// as C++ expressions over the members, see every scalar and what check() derived.
#pragma once

// clang-format off
#define LMF_OPS(OP, SHAPED)                                                                   \
  OP(upload, UploadArgs) OP(download, DownloadArgs) OP(fill, FillArgs) OP(copy, CopyArgs)     \
  OP(add, AddArgs) OP(scale, ScaleArgs)                                                       \
  OP(matmul, MatmulArgs) OP(biasGrad, BiasGradArgs)                                           \
  OP(embeddingForward, EmbeddingForwardArgs) OP(embeddingBackward, EmbeddingBackwardArgs)     \
  OP(rmsnormForward, RmsnormForwardArgs) OP(rmsnormBackward, RmsnormBackwardArgs)             \
  OP(layernormForward, LayernormForwardArgs) OP(layernormBackward, LayernormBackwardArgs)     \
  OP(addRmsnormForward, AddRmsnormForwardArgs) OP(addLayernormForward, AddLayernormForwardArgs) \
  SHAPED(qkPrepForward, QkPrepForwardArgs, QkPrepForwardShape)                                \
  SHAPED(qkPrepBackward, QkPrepBackwardArgs, QkPrepShape)                                     \
  SHAPED(attentionForward, AttentionForwardArgs, AttentionShape)                              \
  SHAPED(attentionBackward, AttentionBackwardArgs, AttentionShape)                            \
  SHAPED(attentionDecode, AttentionDecodeArgs, AttentionShape)                                \
  OP(swigluForward, SwigluForwardArgs) OP(swigluBackward, SwigluBackwardArgs)                 \
  OP(activationForward, ActivationForwardArgs) OP(activationBackward, ActivationBackwardArgs) \
  OP(headCrossEntropy, HeadCrossEntropyArgs) OP(headLogprob, HeadLogprobArgs)                 \
  OP(sumSquares, SumSquaresArgs) OP(adamw, AdamwArgs) OP(adamwRanges, AdamwRangesArgs)

// ---- memory: transfers (the typed array's type must be the buffer's dtype; a bf16 buffer takes a Float32Array
//      and converts), fill, copy (same dtype, or f32 <-> bf16: the one cast), elementwise ----
#define LMF_ARGS_upload(X) X(ANY, buffer, void, host.length, dtype) X(HOST, host) X(LET, DType, dtype)
#define LMF_ARGS_download(X) X(ANY, buffer, const void, host.length, dtype) X(HOST, host) X(LET, DType, dtype)
#define LMF_ARGS_fill(X) X(ANY, dst, void, n, dtype) X(INT, n) X(NUM, value) X(LET, DType, dtype)
#define LMF_ARGS_copy(X) \
  X(ANY, dst, void, n, dtype) X(ANY, src, const void, n, srcDtype) X(INT, n) X(LET, DType, dtype) X(LET, DType, srcDtype)
#define LMF_ARGS_add(X) X(BUF, out, float, n) X(BUF, a, const float, n) X(BUF, b, const float, n) X(INT, n)
#define LMF_ARGS_scale(X) X(BUF, x, float, n) X(INT, n) X(NUM, s)

// ---- matrix products: C[m, n] (+)= op(A) op(B) (+ bias); a leading dimension 0 means the packed width ----
#define LMF_ARGS_matmul(X)                                                                                  \
  X(ACT, C, float, span2d(m, n, ldc)) X(ACT, A, const float, span2d(transA ? k : m, transA ? m : k, lda))   \
  X(ACT, B, const float, span2d(transB ? n : k, transB ? k : n, ldb))                                       \
  X(INT, m) X(INT, n) X(INT, k) X(FLAG, transA) X(FLAG, transB) X(INT, lda) X(INT, ldb) X(INT, ldc)         \
  X(FLAG, accumulate) X(OPT, bias, const float, n)
#define LMF_ARGS_biasGrad(X) \
  X(BUF, db, float, cols) X(ACT, dy, const float, span2d(rows, cols, ldy)) X(INT, rows) X(INT, cols) X(INT, ldy)

// ---- embeddings: the table's row count (vocab) is what its buffer holds from the offset ----
#define LMF_ARGS_embeddingForward(X)                                                                          \
  X(BUF, out, float, n * d) X(BUF, ids, const int32_t, n) X(BUF, table, const float, vocab * d) X(INT, n)    \
  X(INT, d) X(FLAG, accumulate) X(LET, int64_t, vocab)
#define LMF_ARGS_embeddingBackward(X)                                                                         \
  X(BUF, dtable, float, vocab * d) X(BUF, ids, const int32_t, n) X(BUF, dout, const float, n * d)            \
  X(INT, n) X(INT, d) X(LET, int64_t, vocab)

// ---- normalisation over rows of d ----
#define LMF_ARGS_rmsnormForward(X) \
  X(ACT, out, float, rows * d) X(BUF, rstd, float, rows) X(BUF, x, const float, rows * d) X(BUF, w, const float, d) \
  X(INT, rows) X(INT, d) X(NUM, eps)
#define LMF_ARGS_rmsnormBackward(X)                                                                           \
  X(BUF, dx, float, rows * d) X(BUF, dw, float, d) X(ACT, dout, const float, rows * d)                       \
  X(BUF, x, const float, rows * d) X(BUF, w, const float, d) X(BUF, rstd, const float, rows)                 \
  X(INT, rows) X(INT, d) X(FLAG, accumulateDx)
#define LMF_ARGS_layernormForward(X)                                                                           \
  X(ACT, out, float, rows * d) X(BUF, mean, float, rows) X(BUF, rstd, float, rows) X(BUF, x, const float, rows * d) \
  X(BUF, w, const float, d) X(BUF, b, const float, d) X(INT, rows) X(INT, d) X(NUM, eps)
#define LMF_ARGS_layernormBackward(X)                                                                         \
  X(BUF, dx, float, rows * d) X(BUF, dw, float, d) X(BUF, db, float, d) X(ACT, dout, const float, rows * d)  \
  X(BUF, x, const float, rows * d) X(BUF, w, const float, d) X(BUF, mean, const float, rows)                 \
  X(BUF, rstd, const float, rows) X(INT, rows) X(INT, d) X(FLAG, accumulateDx)

// ---- a residual add fused with the norm that follows it: sum = a + b, then out = norm(sum) as the ops above
//      (sum may be a or b: in place); `out` is the activation the next matrix product reads ----
#define LMF_ARGS_addRmsnormForward(X)                                                                         \
  X(BUF, sum, float, rows * d) X(ACT, out, float, rows * d) X(BUF, rstd, float, rows)                        \
  X(BUF, a, const float, rows * d) X(BUF, b, const float, rows * d) X(BUF, w, const float, d)                \
  X(INT, rows) X(INT, d) X(NUM, eps)
#define LMF_ARGS_addLayernormForward(X)                                                                       \
  X(BUF, sum, float, rows * d) X(ACT, out, float, rows * d) X(BUF, mean, float, rows)                        \
  X(BUF, rstd, float, rows) X(BUF, a, const float, rows * d) X(BUF, b, const float, rows * d)                \
  X(BUF, w, const float, d) X(BUF, bias, const float, d) X(INT, rows) X(INT, d) X(NUM, eps)

// ---- the attention prologue: per-head QK-RMSNorm (absent weights: none) then RoPE (absent tables: none);
//      positions (absent: t % seq) give each token's row of the tables ----
#define LMF_ARGS_qkPrepForward(X)                                                                                 \
  X(ACT, out, float, n * nh() * headDim) X(WHEN, qNormW || kNormW, rstd, float, n * nh())                       \
  X(ACT, qkv, const float, span2d(n, nh() * headDim, qkvStride)) X(INT, qkvStride)                              \
  X(OPT, qNormW, const float, headDim) X(OPT, kNormW, const float, headDim)                                     \
  X(OPT, cos, const float, seq * (headDim / 2)) X(OPT, sin, const float, seq * (headDim / 2))                   \
  X(INT, n) X(INT, seq) X(INT, heads) X(INT, kvHeads) X(INT, headDim) X(NUM, eps)                             \
  X(OPT, positions, const int32_t, n)
#define LMF_ARGS_qkPrepBackward(X)                                                                                \
  X(ACT, dqkv, float, span2d(n, nh() * headDim, qkvStride)) X(INT, qkvStride)                                   \
  X(WHEN, qNormW, dqNormW, float, headDim) X(WHEN, kNormW, dkNormW, float, headDim)                             \
  X(ACT, dout, const float, n * nh() * headDim) X(ACT, qkv, const float, span2d(n, nh() * headDim, qkvStride))  \
  X(WHEN, qNormW || kNormW, rstd, const float, n * nh())                                                        \
  X(OPT, qNormW, const float, headDim) X(OPT, kNormW, const float, headDim)                                     \
  X(OPT, cos, const float, seq * (headDim / 2)) X(OPT, sin, const float, seq * (headDim / 2))                   \
  X(INT, n) X(INT, seq) X(INT, heads) X(INT, kvHeads) X(INT, headDim) X(OPT, positions, const int32_t, n)

// ---- causal attention (training), and over a KV cache (generation: batch 1, queries at past..past+seq-1) ----
#define LMF_ATTENTION_SHAPE(X) \
  X(INT, sq) X(INT, sk) X(INT, sv) X(INT, batch) X(INT, seq) X(INT, heads) X(INT, kvHeads) X(INT, headDim) X(NUM, scale)
// Document masking (varlen): cuSeqlens [segments + 1] are the documents' starts over the flattened batch*seq rows,
// then batch*seq; a row attends only within its document, and every row start is a boundary. Absent: causal rows.
#define LMF_DOCUMENTS(X) X(OPT, cuSeqlens, const int32_t, segments + 1) X(INT, segments)
#define LMF_ARGS_attentionForward(X)                                                                           \
  X(ACT, out, float, n() * od()) X(BUF, lse, float, batch * heads * seq)                                     \
  X(ACT, q, const float, span2d(n(), heads * headDim, sq)) X(ACT, k, const float, span2d(n(), kvHeads * headDim, sk)) \
  X(ACT, v, const float, span2d(n(), kvHeads * headDim, sv)) LMF_ATTENTION_SHAPE(X) LMF_DOCUMENTS(X)
#define LMF_ARGS_attentionBackward(X)                                                                          \
  X(ACT, dq, float, span2d(n(), heads * headDim, sq)) X(ACT, dk, float, span2d(n(), kvHeads * headDim, sk))  \
  X(ACT, dv, float, span2d(n(), kvHeads * headDim, sv)) X(ACT, dout, const float, n() * od())                \
  X(ACT, q, const float, span2d(n(), heads * headDim, sq)) X(ACT, k, const float, span2d(n(), kvHeads * headDim, sk)) \
  X(ACT, v, const float, span2d(n(), kvHeads * headDim, sv)) X(ACT, out, const float, n() * od())            \
  X(BUF, lse, const float, batch * heads * seq) LMF_ATTENTION_SHAPE(X) LMF_DOCUMENTS(X)
#define LMF_ARGS_attentionDecode(X)                                                                            \
  X(BUF, out, float, seq * od()) X(BUF, q, const float, span2d(seq, heads * headDim, sq))                    \
  X(BUF, kCache, const float, span2d(keys(), kvHeads * headDim, sk))                                         \
  X(BUF, vCache, const float, span2d(keys(), kvHeads * headDim, sv))                                         \
  X(INT, sq) X(INT, sk) X(INT, sv) X(INT, seq) X(INT, past) X(INT, heads) X(INT, kvHeads) X(INT, headDim) X(NUM, scale)

// ---- feed-forward activations: gu is [rows, 2f] (gate | up); kind is an ActivationKind ----
#define LMF_ARGS_swigluForward(X) X(ACT, out, float, rows * f) X(ACT, gu, const float, rows * 2 * f) X(INT, rows) X(INT, f)
#define LMF_ARGS_swigluBackward(X) \
  X(ACT, dgu, float, rows * 2 * f) X(ACT, dout, const float, rows * f) X(ACT, gu, const float, rows * 2 * f) X(INT, rows) X(INT, f)
#define LMF_ARGS_activationForward(X) X(ACT, out, float, n) X(ACT, x, const float, n) X(INT, n) X(INT, kind)
#define LMF_ARGS_activationBackward(X) \
  X(ACT, dx, float, n) X(ACT, dout, const float, n) X(ACT, x, const float, n) X(INT, n) X(INT, kind)

// ---- the output head fused with cross-entropy: lossOut[0] += sum of row losses; gradients optional ----
#define LMF_ARGS_headCrossEntropy(X)                                                                           \
  X(BUF, lossOut, double, 1) X(ACT, h, const float, n * d) X(BUF, w, const float, vocab * d)                 \
  X(BUF, targets, const int32_t, n) X(INT, n) X(INT, d) X(INT, vocab) X(NUM, gradScale)                      \
  X(OPT, dh, float, n * d) X(OPT, dw, float, vocab * d) X(OPT, logitsOut, float, n * vocab)

// ---- the output head scored per row (evaluation): logprobOut[i] = log softmax(h[i] W^T)[targets[i]] and
// argmaxOut[i] = the row's first maximum; rows with target -100 get 0 and -1 ----
#define LMF_ARGS_headLogprob(X)                                                                                \
  X(BUF, logprobOut, double, n) X(BUF, argmaxOut, int32_t, n) X(ACT, h, const float, n * d)                  \
  X(BUF, w, const float, vocab * d) X(BUF, targets, const int32_t, n) X(INT, n) X(INT, d) X(INT, vocab)

// ---- optimizer: out[0] += sum x^2; one AdamW step with the gradient scaled by gradScale (clipping) ----
// With stepStats ([loss sum, gradient sum of squares] of the step, f64, where the engine keeps them) the clip
// coefficient of `clip` is applied too and a step whose statistics are not finite is skipped: decided by the
// engine, so a GPU step needs no host round trip (adamwStepScale, params.h). paramBf16 (optional) receives the
// new weights rounded to bf16 in the same pass: the weight copies the bf16 GEMMs read.
#define LMF_ARGS_sumSquares(X) X(BUF, out, double, 1) X(BUF, x, const float, n) X(INT, n)
#define LMF_ARGS_adamw(X)                                                                                      \
  X(BUF, param, float, n) X(BUF, grad, const float, n) X(BUF, m, float, n) X(BUF, v, float, n) X(INT, n)     \
  X(NUM, lr) X(NUM, beta1) X(NUM, beta2) X(NUM, eps) X(NUM, weightDecay) X(NUM, step) X(NUM, gradScale)      \
  X(OPT, stepStats, const double, 2) X(NUM, clip) X(OPT, paramBf16, Bf16Bits, n) X(LET, AdamwCoefficients, coef)
// The same step over a table of ranges in one launch (multi-tensor): ranges holds (offset, size, decay) triples,
// offsets into param/grad/m/v/paramBf16 (spans of n elements), ascending and disjoint; decay 1 applies weightDecay,
// 0 none. Bit-identical to one adamw call per range.
#define LMF_ARGS_adamwRanges(X)                                                                                \
  X(BUF, param, float, n) X(BUF, grad, const float, n) X(BUF, m, float, n) X(BUF, v, float, n) X(INT, n)     \
  X(HOST, ranges) X(NUM, lr) X(NUM, beta1) X(NUM, beta2) X(NUM, eps) X(NUM, weightDecay) X(NUM, step)        \
  X(NUM, gradScale) X(OPT, stepStats, const double, 2) X(NUM, clip) X(OPT, paramBf16, Bf16Bits, n)           \
  X(LET, AdamwCoefficients, coef) X(LET, AdamwCoefficients, coefNoDecay) X(LET, AdamwRangeTable, table)
// clang-format on
