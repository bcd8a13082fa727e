// Reading every op's arguments (generated from op_table.h), each op's own checks, the registration of every op,
// and the table as JavaScript sees it (opTable). See op_args.h.
#include "op_args.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace lmf {

// ---- the readers: scalars, then check(), then buffers, then the buffers required only when a condition holds ----

#define LMF_READ_SCALAR(kind, ...) LMF_READ_SCALAR_##kind(__VA_ARGS__)
#define LMF_READ_SCALAR_BUF(name, T, count)
#define LMF_READ_SCALAR_OPT(name, T, count)
#define LMF_READ_SCALAR_WHEN(cond, name, T, count)
#define LMF_READ_SCALAR_ANY(name, T, count, dt)
#define LMF_READ_SCALAR_ACT(name, T, count)
#define LMF_READ_SCALAR_INT(name) name = call.i64(At::name, #name);
#define LMF_READ_SCALAR_NUM(name) name = call.num(At::name);
#define LMF_READ_SCALAR_FLAG(name) name = call.flag(At::name);
#define LMF_READ_SCALAR_HOST(name) name = call.host(At::name);
#define LMF_READ_SCALAR_LET(T, name)

#define LMF_READ_BUFFER(kind, ...) LMF_READ_BUFFER_##kind(__VA_ARGS__)
#define LMF_READ_BUFFER_BUF(name, T, count) name = call.buffer<T>(At::name, count, #name);
#define LMF_READ_BUFFER_OPT(name, T, count) name = call.isNull(At::name) ? nullptr : call.buffer<T>(At::name, count, #name);
#define LMF_READ_BUFFER_WHEN(cond, name, T, count)
#define LMF_READ_BUFFER_ANY(name, T, count, dt) name = static_cast<T*>(call.raw(At::name, dt, count, #name));
#define LMF_READ_BUFFER_ACT(name, T, count) name = call.activation<T>(At::name, count, #name);
#define LMF_READ_BUFFER_INT(name)
#define LMF_READ_BUFFER_NUM(name)
#define LMF_READ_BUFFER_FLAG(name)
#define LMF_READ_BUFFER_HOST(name)
#define LMF_READ_BUFFER_LET(T, name)

#define LMF_READ_WHEN(kind, ...) LMF_READ_WHEN_##kind(__VA_ARGS__)
#define LMF_READ_WHEN_BUF(name, T, count)
#define LMF_READ_WHEN_OPT(name, T, count)
#define LMF_READ_WHEN_WHEN(cond, name, T, count) name = (cond) ? call.buffer<T>(At::name, count, #name) : nullptr;
#define LMF_READ_WHEN_ANY(name, T, count, dt)
#define LMF_READ_WHEN_ACT(name, T, count)
#define LMF_READ_WHEN_INT(name)
#define LMF_READ_WHEN_NUM(name)
#define LMF_READ_WHEN_FLAG(name)
#define LMF_READ_WHEN_HOST(name)
#define LMF_READ_WHEN_LET(T, name)

#define LMF_DEFINE_READ(name, Struct)     \
  void Struct::read(const Args& call) {   \
    call.expectCount(At::kCount);         \
    LMF_ARGS_##name(LMF_READ_SCALAR)      \
    check(call);                          \
    LMF_ARGS_##name(LMF_READ_BUFFER)      \
    LMF_ARGS_##name(LMF_READ_WHEN)        \
  }
#define LMF_DEFINE_READ_SHAPED(name, Struct, Shape) LMF_DEFINE_READ(name, Struct)
LMF_OPS(LMF_DEFINE_READ, LMF_DEFINE_READ_SHAPED)

// ---- each op's own checks, and the members it derives ----

namespace {

// The dtype of a transfer's buffer, which the typed array must share (a bf16 buffer travels as a Float32Array).
DType transferDType(const Args& call, size_t buffer, const TypedView& host) {
  const DType dtype = call.dtypeOf(buffer, "buffer");
  if (dtype == DType::BF16 && host.dtype != DType::F32)
    call.fail(std::string("a bf16 buffer is transferred as a Float32Array (converted), not as ") + dtypeName(host.dtype));
  if (dtype != DType::BF16 && host.dtype != dtype)
    call.fail(std::string("the typed array holds ") + dtypeName(host.dtype) + " but the buffer is " + dtypeName(dtype) +
              ": use the matching typed array");
  return dtype;
}

void requirePositive(const Args& call, int64_t v, const char* what) {
  if (v == 0) call.fail(std::string(what) + " must be positive");
}

// Rows of an embedding table of width d: what its buffer holds from the offset.
int64_t tableRows(const Args& call, size_t table, const char* what, int64_t d) {
  requirePositive(call, d, "d");
  return call.avail(table, what) / d;
}

void checkQkPrep(const Args& call, const QkPrepShape& s, size_t cos, size_t sin) {
  requirePositive(call, s.seq, "seq");
  requirePositive(call, s.headDim, "headDim");
  if (s.qkvStride < s.nh() * s.headDim)
    call.fail("qkvStride " + std::to_string(s.qkvStride) + " is smaller than the q and k columns (" +
              std::to_string(s.nh() * s.headDim) + ")");
  // The RoPE tables: both present or both null.
  if (call.isNull(cos) != call.isNull(sin)) call.fail("cos and sin must be given together (or both null)");
  if (!call.isNull(cos) && s.headDim % 2 != 0)
    call.fail("RoPE needs an even headDim, got " + std::to_string(s.headDim));
}

void checkAttention(const Args& call, const AttentionShape& s) {
  if (s.heads == 0 || s.kvHeads == 0 || s.headDim == 0) call.fail("heads, kvHeads and headDim must be positive");
  if (s.heads % s.kvHeads != 0)
    call.fail("heads (" + std::to_string(s.heads) + ") must be a multiple of kvHeads (" + std::to_string(s.kvHeads) +
              ")");
  if (s.sq < s.heads * s.headDim) call.fail("the q stride is smaller than heads*headDim");
  if (s.sk < s.kvHeads * s.headDim) call.fail("the k stride is smaller than kvHeads*headDim");
  if (s.sv < s.kvHeads * s.headDim) call.fail("the v stride is smaller than kvHeads*headDim");
}

void checkActivationKind(const Args& call, int64_t kind) {
  if (kind > kSilu) call.fail("unknown activation kind " + std::to_string(kind));
}

// A leading dimension `what`: 0 means the packed width; it may not be smaller than the stored width (`whose`).
int64_t leading(const Args& call, int64_t ld, int64_t width, const char* what, const char* whose) {
  if (ld == 0) return std::max<int64_t>(width, 1);
  if (ld < width)
    call.fail(std::string(what) + " " + std::to_string(ld) + " is smaller than " + whose + std::to_string(width));
  return ld;
}

}  // namespace

void UploadArgs::check(const Args& call) { dtype = transferDType(call, At::buffer, host); }
void DownloadArgs::check(const Args& call) { dtype = transferDType(call, At::buffer, host); }

void FillArgs::check(const Args& call) {
  dtype = call.dtypeOf(At::dst, "dst");
  if (dtype == DType::I32 && (value != std::floor(value) || value < -2147483648.0 || value > 2147483647.0))
    fail("an i32 buffer can only hold 32-bit integers");
}

// The source has the destination's dtype, or one is f32 and the other bf16: the cast (round to nearest even).
void CopyArgs::check(const Args& call) {
  dtype = call.dtypeOf(At::dst, "dst");
  srcDtype = call.dtypeOf(At::src, "src");
  const bool cast = (dtype == DType::F32 && srcDtype == DType::BF16) || (dtype == DType::BF16 && srcDtype == DType::F32);
  if (dtype != srcDtype && !cast)
    fail(std::string("src is ") + dtypeName(srcDtype) + " but dst is " + dtypeName(dtype) +
         ": copy needs equal dtypes, or f32 and bf16 (the one cast)");
}

void AddArgs::check(const Args&) {}
void ScaleArgs::check(const Args&) {}

void MatmulArgs::check(const Args& call) {
  lda = leading(call, lda, transA ? m : k, "lda", "A's stored width ");
  ldb = leading(call, ldb, transB ? k : n, "ldb", "B's stored width ");
  ldc = leading(call, ldc, n, "ldc", "C's width n=");
  if (accumulate && !call.isNull(At::bias))
    fail("bias can only be used with accumulate false (add it once, not per micro-step)");
}

void BiasGradArgs::check(const Args& call) { ldy = leading(call, ldy, cols, "ldy", "cols = "); }

void EmbeddingForwardArgs::check(const Args& call) { vocab = tableRows(call, At::table, "table", d); }
void EmbeddingBackwardArgs::check(const Args& call) { vocab = tableRows(call, At::dtable, "dtable", d); }

// d = 0 is accepted by rmsnormBackward (neither engine rejected it): there is nothing to compute.
void RmsnormForwardArgs::check(const Args& call) { requirePositive(call, d, "d"); }
void RmsnormBackwardArgs::check(const Args&) {}
void AddRmsnormForwardArgs::check(const Args& call) { requirePositive(call, d, "d"); }
void AddLayernormForwardArgs::check(const Args& call) { requirePositive(call, d, "d"); }
void LayernormForwardArgs::check(const Args& call) { requirePositive(call, d, "d"); }
void LayernormBackwardArgs::check(const Args& call) { requirePositive(call, d, "d"); }

void QkPrepForwardArgs::check(const Args& call) { checkQkPrep(call, *this, At::cos, At::sin); }
void QkPrepBackwardArgs::check(const Args& call) { checkQkPrep(call, *this, At::cos, At::sin); }

// The document count, before cuSeqlens (segments + 1 entries) is read; the entries are the engine's to check.
void checkSegments(const Args& call, const AttentionShape& s, size_t cuAt) {
  if (call.isNull(cuAt)) return;
  if (s.segments < 1 && s.n() > 0) call.fail("segments must be at least 1 when cuSeqlens is given");
  if (s.segments > s.n())
    call.fail("segments (" + std::to_string(s.segments) + ") exceeds batch*seq (" + std::to_string(s.n()) + ")");
}

void AttentionForwardArgs::check(const Args& call) {
  checkAttention(call, *this);
  checkSegments(call, *this, At::cuSeqlens);
}
void AttentionBackwardArgs::check(const Args& call) {
  checkAttention(call, *this);
  checkSegments(call, *this, At::cuSeqlens);
}
void AttentionDecodeArgs::check(const Args& call) {
  batch = 1;
  checkAttention(call, *this);
}

void SwigluForwardArgs::check(const Args&) {}
void SwigluBackwardArgs::check(const Args&) {}
void ActivationForwardArgs::check(const Args& call) { checkActivationKind(call, kind); }
void ActivationBackwardArgs::check(const Args& call) { checkActivationKind(call, kind); }

void HeadCrossEntropyArgs::check(const Args&) {
  if (vocab == 0 || d == 0) fail("vocab and d must be positive");
}

void HeadLogprobArgs::check(const Args&) {
  if (vocab == 0 || d == 0) fail("vocab and d must be positive");
}

void SumSquaresArgs::check(const Args&) {}

namespace {

// The step's coefficients, derived in double and rounded once to float, so both engines use the same values.
template <typename Op>
AdamwCoefficients adamwCoefficients(const Op& op, double weightDecay) {
  if (!(op.step >= 1) || op.step != std::floor(op.step))
    op.fail("step must be a 1-based integer, got " + std::to_string(op.step));
  if (!(op.beta1 >= 0 && op.beta1 < 1 && op.beta2 >= 0 && op.beta2 < 1)) op.fail("beta1 and beta2 must lie in [0, 1)");
  AdamwCoefficients coef;
  coef.decay = static_cast<float>(1 - op.lr * weightDecay);
  coef.beta2 = static_cast<float>(op.beta2);
  coef.oneMinusBeta1 = static_cast<float>(1 - op.beta1);
  coef.oneMinusBeta2 = static_cast<float>(1 - op.beta2);
  coef.eps = static_cast<float>(op.eps);
  coef.gradScale = static_cast<float>(op.gradScale);
  coef.stepSize = static_cast<float>(op.lr / (1 - std::pow(op.beta1, op.step)));
  coef.bc2Sqrt = static_cast<float>(std::sqrt(1 - std::pow(op.beta2, op.step)));
  return coef;
}

}  // namespace

void AdamwArgs::check(const Args&) { coef = adamwCoefficients(*this, weightDecay); }

// The range table: (offset, size, decay) triples in a Float64Array, ascending, disjoint, inside the n elements.
void AdamwRangesArgs::check(const Args&) {
  coef = adamwCoefficients(*this, weightDecay);
  coefNoDecay = adamwCoefficients(*this, 0.0);
  if (ranges.dtype != DType::F64 || ranges.length % 3 != 0)
    fail("ranges must be a Float64Array of (offset, size, decay) triples");
  const double* t = static_cast<const double*>(ranges.data);
  int64_t end = 0;
  for (int64_t i = 0; i < ranges.length / 3; i++) {
    const double off = t[3 * i], size = t[3 * i + 1], decay = t[3 * i + 2];
    const std::string at = "range " + std::to_string(i);
    if (!(off >= 0 && size >= 0 && off == std::floor(off) && size == std::floor(size) && off + size <= double(n)))
      fail(at + " (offset " + std::to_string(off) + ", size " + std::to_string(size) +
           ") must be whole numbers inside the " + std::to_string(n) + " elements");
    if (off < double(end)) fail(at + " starts before the previous range ends: give the ranges ascending and disjoint");
    if (decay != 0 && decay != 1) fail(at + ": decay must be 0 or 1");
    AdamwRange r;
    r.offset = static_cast<int64_t>(off);
    r.size = static_cast<int64_t>(size);
    r.decay = decay != 0;
    end = r.offset + r.size;
    if (r.size > 0) table.push_back(r);
  }
}

// ---- the table for JavaScript, and registration ----

namespace {

#define LMF_DESCRIBE(kind, ...) LMF_DESCRIBE_##kind(__VA_ARGS__)
#define LMF_DESCRIBE_BUF(name, T, count) {#name, "buf"},
#define LMF_DESCRIBE_OPT(name, T, count) {#name, "opt"},
#define LMF_DESCRIBE_WHEN(cond, name, T, count) {#name, "opt"},
#define LMF_DESCRIBE_ANY(name, T, count, dt) {#name, "buf"},
#define LMF_DESCRIBE_ACT(name, T, count) {#name, "buf"},
#define LMF_DESCRIBE_INT(name) {#name, "int"},
#define LMF_DESCRIBE_NUM(name) {#name, "num"},
#define LMF_DESCRIBE_FLAG(name) {#name, "flag"},
#define LMF_DESCRIBE_HOST(name) {#name, "host"},
#define LMF_DESCRIBE_LET(T, name)

struct OpDescription {
  const char* op;
  std::vector<std::pair<const char*, const char*>> args;  // (name, kind) in call order
};

#define LMF_DESCRIBE_OP(name, Struct) {#name, {LMF_ARGS_##name(LMF_DESCRIBE)}},
#define LMF_DESCRIBE_SHAPED(name, Struct, Shape) LMF_DESCRIBE_OP(name, Struct)
const std::vector<OpDescription> kTable = {LMF_OPS(LMF_DESCRIBE_OP, LMF_DESCRIBE_SHAPED)};

Napi::Value OpTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object table = Napi::Object::New(env);
  for (const OpDescription& d : kTable) {
    Napi::Array args = Napi::Array::New(env, d.args.size());
    for (size_t i = 0; i < d.args.size(); i++) {
      Napi::Array entry = Napi::Array::New(env, 2);
      entry.Set(uint32_t(0), d.args[i].first);
      entry.Set(uint32_t(1), d.args[i].second);
      args.Set(static_cast<uint32_t>(i), entry);
    }
    table.Set(d.op, args);
  }
  return table;
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
#define LMF_REGISTER_OP(name, Struct) registerOp<Struct>(env, exports, op::name);
#define LMF_REGISTER_SHAPED(name, Struct, Shape) LMF_REGISTER_OP(name, Struct)
  LMF_OPS(LMF_REGISTER_OP, LMF_REGISTER_SHAPED)
  exports.Set("opTable", Napi::Function::New(env, OpTable, "opTable"));
}

}  // namespace lmf
