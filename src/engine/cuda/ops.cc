// Argument decoding and checks for the non-GEMM ops (the same positions, checks and messages as the CPU
// engine's files), each followed by the kernel launch on the engine's stream. Token ids and targets live on
// the device, so their range is checked by the kernels, which raise the device error flag; the error is
// reported at the next download/synchronize (the decoder also checks them on the host before upload).
#include <algorithm>
#include <cmath>

#include "../native/op_args.h"
#include "common.h"

namespace lmf {

namespace {

// ---- embeddings ----

// embeddingForward(out, ids, table, n, d, accumulate)
void opEmbeddingForward(const Args& a) {
  const EmbeddingForwardArgs p = decodeEmbeddingForward(a);
  cuda::embeddingForward(p.out, p.ids, p.table, p.n, p.d, p.vocab, p.accumulate, deviceErrorFlag(), stream());
}

// embeddingBackward(dtable, ids, dout, n, d)
void opEmbeddingBackward(const Args& a) {
  const EmbeddingBackwardArgs p = decodeEmbeddingBackward(a);
  if (p.n == 0) return;
  size_t bytes = cuda::embeddingBackwardScratch(p.n);
  void* s = scratch(kScratchSort, bytes);
  cuda::embeddingBackward(p.dtable, p.ids, p.dout, p.n, p.d, p.vocab, s, bytes, deviceErrorFlag(), stream());
}

// ---- normalisation ----

// rmsnormForward(out, rstd, x, w, rows, d, eps)
void opRmsnormForward(const Args& a) {
  const RmsnormForwardArgs p = decodeRmsnormForward(a);
  cuda::rmsnormForward(p.out, p.rstd, p.x, p.w, p.rows, p.d, static_cast<float>(p.eps), stream());
}

double* partials(int64_t count) { return static_cast<double*>(scratch(kScratchPartials, size_t(std::max<int64_t>(count, 1)) * 8)); }

// rmsnormBackward(dx, dw, dout, x, w, rstd, rows, d, accumulateDx)
void opRmsnormBackward(const Args& a) {
  const RmsnormBackwardArgs p = decodeRmsnormBackward(a);
  if (p.rows == 0 || p.d == 0) return;
  cuda::rmsnormBackward(p.dx, p.dw, p.dout, p.x, p.w, p.rstd, p.rows, p.d, p.accumulateDx,
                        partials(cuda::normPartials(p.rows, p.d, 1)), stream());
}

// layernormForward(out, mean, rstd, x, w, b, rows, d, eps)
void opLayernormForward(const Args& a) {
  const LayernormForwardArgs p = decodeLayernormForward(a);
  cuda::layernormForward(p.out, p.mean, p.rstd, p.x, p.w, p.b, p.rows, p.d, static_cast<float>(p.eps), stream());
}

// layernormBackward(dx, dw, db, dout, x, w, mean, rstd, rows, d, accumulateDx)
void opLayernormBackward(const Args& a) {
  const LayernormBackwardArgs p = decodeLayernormBackward(a);
  if (p.rows == 0) return;
  cuda::layernormBackward(p.dx, p.dw, p.db, p.dout, p.x, p.w, p.mean, p.rstd, p.rows, p.d, p.accumulateDx,
                          partials(cuda::normPartials(p.rows, p.d, 2)), stream());
}

// ---- QK-norm + RoPE ----

cuda::QkPrepShape kernelShape(const QkPrepShape& s, const int32_t* positions) {
  return {s.n, s.seq, s.heads, s.kvHeads, s.headDim, s.stride, positions};
}

// qkPrepForward(out, rstd, qkv, qkvStride, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, eps,
//               positions): positions live on the device, so their range is the caller's promise (model/decoder.ts
//               checks it on the host before uploading).
void opQkPrepForward(const Args& a) {
  const QkPrepForwardArgs p = decodeQkPrepForward(a);
  cuda::qkPrepForward(p.out, p.rstd, p.qkv, p.qNormW, p.kNormW, p.cos, p.sin, kernelShape(p.s, p.positions),
                      static_cast<float>(p.eps), stream());
}

// qkPrepBackward(dqkv, qkvStride, dqNormW, dkNormW, dout, qkv, rstd, qNormW, kNormW, cos, sin,
//                n, seq, heads, kvHeads, headDim)
void opQkPrepBackward(const Args& a) {
  const QkPrepBackwardArgs p = decodeQkPrepBackward(a);
  const cuda::QkPrepShape s = kernelShape(p.s, p.positions);
  double* part = (p.qNormW || p.kNormW) ? partials(cuda::qkPrepPartials(s)) : nullptr;
  cuda::qkPrepBackward(p.dqkv, p.dqNormW, p.dkNormW, p.dout, p.qkv, p.rstd, p.qNormW, p.kNormW, p.cos, p.sin, s, part,
                       stream());
}

// ---- attention ----

// The CUDA kernel's limits, beyond the arguments' validity (decoded in op_args).
void checkAttentionLimits(const Args& a, int64_t headDim, int64_t batchHeads) {
  if (!cuda::attentionSupported(headDim))
    a.fail("headDim " + std::to_string(headDim) + " is above 128, which the CUDA attention kernel does not support");
  if (batchHeads > 65535)
    a.fail("batch x heads = " + std::to_string(batchHeads) + " exceeds 65535 (one grid dimension): split the batch");
}

// The kernel's shape of training attention: queries and keys are the same batch x seq rows, optionally split into
// documents (cuSeqlens on the device: its validity is the caller's promise, as the CPU engine checks it).
cuda::AttnShape kernelShape(const Args& a, const AttentionShape& s, const int32_t* cu, int64_t segments) {
  checkAttentionLimits(a, s.headDim, s.batch * s.heads);
  cuda::AttnShape k{};
  k.sq = s.sq;
  k.sk = s.sk;
  k.sv = s.sv;
  k.batch = s.batch;
  k.tq = k.tk = s.seq;
  k.qOffset = 0;
  k.heads = s.heads;
  k.kvHeads = s.kvHeads;
  k.headDim = s.headDim;
  k.scale = s.scale;
  k.cu = cu;
  k.segments = cu ? segments : 0;
  return k;
}

// attentionForward(out, lse, q, k, v, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale)
void opAttentionForward(const Args& a) {
  const AttentionForwardArgs p = decodeAttentionForward(a);
  cuda::attentionForward(p.out, p.lse, p.q, p.k, p.v, kernelShape(a, p.s, p.cuSeqlens, p.segments), stream());
}

// attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, sq, sk, sv, batch, seq, heads, kvHeads, headDim, scale)
void opAttentionBackward(const Args& a) {
  const AttentionBackwardArgs p = decodeAttentionBackward(a);
  const cuda::AttnShape s = kernelShape(a, p.s, p.cuSeqlens, p.segments);
  if (p.s.n() == 0) return;
  auto* rowDots = static_cast<float*>(scratch(kScratchAttn, size_t(s.batch * s.heads * s.tq) * 4));
  cuda::attentionBackward(p.dq, p.dk, p.dv, p.dout, p.q, p.k, p.v, p.out, p.lse, s, rowDots, stream());
}

// attentionDecode(out, q, k, v, sq, sk, sv, n, past, heads, kvHeads, headDim, scale): the forward kernel with
// queries at positions past.. over past+n cached keys, batch 1, no log-sum-exp.
void opAttentionDecode(const Args& a) {
  const AttentionDecodeArgs p = decodeAttentionDecode(a);
  checkAttentionLimits(a, p.headDim, p.heads);
  cuda::AttnShape s{};
  s.sq = p.sq;
  s.sk = p.sk;
  s.sv = p.sv;
  s.heads = p.heads;
  s.kvHeads = p.kvHeads;
  s.headDim = p.headDim;
  s.scale = p.scale;
  s.batch = 1;
  s.tq = p.n;
  s.tk = p.total();
  s.qOffset = p.past;
  if (p.n == 0) return;
  cuda::attentionForward(p.out, nullptr, p.q, p.k, p.v, s, stream());
}

// ---- activations ----

// swigluForward(out, gu, rows, f)
void opSwigluForward(const Args& a) {
  const SwigluForwardArgs p = decodeSwigluForward(a);
  cuda::swigluForward(p.out, p.gu, p.rows, p.f, stream());
}

// swigluBackward(dgu, dout, gu, rows, f)
void opSwigluBackward(const Args& a) {
  const SwigluBackwardArgs p = decodeSwigluBackward(a);
  cuda::swigluBackward(p.dgu, p.dout, p.gu, p.rows, p.f, stream());
}

// activationForward(out, x, n, kind)
void opActivationForward(const Args& a) {
  const ActivationForwardArgs p = decodeActivationForward(a);
  cuda::activationForward(p.out, p.x, p.n, p.kind, stream());
}

// activationBackward(dx, dout, x, n, kind)
void opActivationBackward(const Args& a) {
  const ActivationBackwardArgs p = decodeActivationBackward(a);
  cuda::activationBackward(p.dx, p.dout, p.x, p.n, p.kind, stream());
}

// ---- optimizer ----

// sumSquares(out f64, x, n): out[0] += sum x^2 (fixed order).
void opSumSquares(const Args& a) {
  const SumSquaresArgs p = decodeSumSquares(a);
  if (p.n == 0) return;
  cuda::sumSquares(p.out, p.x, p.n, partials(cuda::reducePartials(p.n)), stream());
}

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale)
void opAdamw(const Args& a) {
  const AdamwArgs p = decodeAdamw(a);
  cuda::AdamWArgs h{};
  h.decay = p.decay;
  h.beta2 = static_cast<float>(p.beta2);
  h.oneMinusBeta1 = static_cast<float>(1 - p.beta1);
  h.oneMinusBeta2 = static_cast<float>(1 - p.beta2);
  h.eps = static_cast<float>(p.eps);
  h.gradScale = static_cast<float>(p.gradScale);
  h.stepSize = p.stepSize;
  h.bc2Sqrt = p.bc2Sqrt;
  cuda::adamw(p.param, p.grad, p.m, p.v, p.n, h, stream());
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "embeddingForward", opEmbeddingForward);
  registerOp(env, exports, "embeddingBackward", opEmbeddingBackward);
  registerOp(env, exports, "rmsnormForward", opRmsnormForward);
  registerOp(env, exports, "rmsnormBackward", opRmsnormBackward);
  registerOp(env, exports, "layernormForward", opLayernormForward);
  registerOp(env, exports, "layernormBackward", opLayernormBackward);
  registerOp(env, exports, "qkPrepForward", opQkPrepForward);
  registerOp(env, exports, "qkPrepBackward", opQkPrepBackward);
  registerOp(env, exports, "attentionForward", opAttentionForward);
  registerOp(env, exports, "attentionBackward", opAttentionBackward);
  registerOp(env, exports, "attentionDecode", opAttentionDecode);
  registerOp(env, exports, "swigluForward", opSwigluForward);
  registerOp(env, exports, "swigluBackward", opSwigluBackward);
  registerOp(env, exports, "activationForward", opActivationForward);
  registerOp(env, exports, "activationBackward", opActivationBackward);
  registerOp(env, exports, "sumSquares", opSumSquares);
  registerOp(env, exports, "adamw", opAdamw);
}

}  // namespace lmf
