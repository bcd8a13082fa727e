// The Node-API plumbing both engines share: see glue.h.
#include "glue.h"

#include <cmath>
#include <vector>

namespace lmf {

const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
    case DType::BF16: return "bf16";
  }
  return "?";
}

size_t dtypeSize(DType t) { return t == DType::F64 ? 8 : t == DType::BF16 ? 2 : 4; }

void opFail(const char* op, const std::string& msg) { throw OpError(std::string(op) + ": " + msg); }

void Args::expectCount(size_t count) const {
  if (info_.Length() != count)
    fail("takes " + std::to_string(count) + " arguments but was called with " + std::to_string(info_.Length()));
}

double Args::num(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

int64_t Args::i64(size_t i, const char* what) const {
  double v = num(i);
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0)
    fail(std::string(what) + " must be a non-negative integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

bool Args::flag(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsBoolean()) fail("argument " + std::to_string(i) + " must be a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

bool Args::isNull(size_t i) const { return num(i) < 0; }

DType Args::dtypeOf(size_t i, const char* what) const {
  double h = num(i);
  if (h < 0) fail(std::string(what) + " is required but was null");
  return registryGet(static_cast<int64_t>(h), op_, what).dtype;
}

TypedView Args::host(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsTypedArray()) fail("expected a typed array");
  Napi::TypedArray t = info_[i].As<Napi::TypedArray>();
  TypedView v;
  switch (t.TypedArrayType()) {
    case napi_float32_array: v.dtype = DType::F32; break;
    case napi_float64_array: v.dtype = DType::F64; break;
    case napi_int32_array: v.dtype = DType::I32; break;
    default: fail("only Float32Array, Float64Array and Int32Array can be transferred");
  }
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  v.data = static_cast<char*>(ab.Data()) + t.ByteOffset();
  v.length = static_cast<int64_t>(t.ElementLength());
  return v;
}

int64_t Args::avail(size_t i, const char* what) const {
  double h = num(i);
  if (h < 0) fail(std::string(what) + " is required but was null");
  const Buf& b = registryGet(static_cast<int64_t>(h), op_, what);
  int64_t off = i64(i + 1, "offset");
  return off > b.length ? 0 : b.length - off;
}

void* Args::raw(size_t i, DType want, int64_t count, const char* what) const {
  double h = num(i);
  if (h < 0) fail(std::string(what) + " is required but was null");
  const Buf& b = registryGet(static_cast<int64_t>(h), op_, what);
  if (b.dtype != want)
    fail(std::string(what) + " must be a " + dtypeName(want) + " buffer but is " + dtypeName(b.dtype));
  int64_t off = i64(i + 1, "offset");
  if (count < 0) fail(std::string(what) + ": negative element count (check the shape arguments)");
  if (off + count > b.length)
    fail(std::string(what) + " needs elements [" + std::to_string(off) + ", " + std::to_string(off + count) +
         ") but its buffer has " + std::to_string(b.length) +
         " elements: check the shape/stride arguments and the offset, or allocate a larger buffer");
  return static_cast<char*>(b.ptr) + off * dtypeSize(b.dtype);
}

void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [fn, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            fn(Args(info, name));
                          } catch (const std::exception& e) {
                            Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
                          }
                          return info.Env().Undefined();
                        },
                        name));
}

namespace {
constexpr int64_t kSlotBits = 24;
constexpr int64_t kSlotMask = (int64_t(1) << kSlotBits) - 1;
constexpr uint32_t kMaxGeneration = (uint32_t(1) << 28) - 1;  // keeps handles far below 2^53
std::vector<Buf> g_bufs;
std::vector<int64_t> g_freeSlots;
uint64_t g_bytes = 0, g_peak = 0;
}  // namespace

int64_t registryInsert(Buf b) {
  b.live = true;
  int64_t slot;
  if (!g_freeSlots.empty()) {
    slot = g_freeSlots.back();
    g_freeSlots.pop_back();
    b.generation = g_bufs[slot].generation + 1 > kMaxGeneration ? 0 : g_bufs[slot].generation + 1;
    g_bufs[slot] = b;
  } else {
    if (static_cast<int64_t>(g_bufs.size()) > kSlotMask)
      throw OpError("alloc: more than 16M live buffers: free buffers that are no longer needed");
    slot = static_cast<int64_t>(g_bufs.size());
    g_bufs.push_back(b);
  }
  g_bytes += b.bytes;
  if (g_bytes > g_peak) g_peak = g_bytes;
  return (static_cast<int64_t>(b.generation) << kSlotBits) | slot;
}

const Buf& registryGet(int64_t handle, const char* op, const char* what) {
  int64_t slot = handle & kSlotMask;
  uint32_t gen = static_cast<uint32_t>(handle >> kSlotBits);
  if (handle < 0 || slot >= static_cast<int64_t>(g_bufs.size()) || g_bufs[slot].generation != gen)
    throw OpError(std::string(op) + ": " + what + " has handle " + std::to_string(handle) +
                  " which this backend never allocated (a buffer of another backend?)");
  const Buf& b = g_bufs[slot];
  if (!b.live)
    throw OpError(std::string(op) + ": " + what + " (handle " + std::to_string(handle) +
                  ") was already freed: it is used after free()");
  return b;
}

Buf registryRemove(int64_t handle) {
  Buf b = registryGet(handle, "free", "the buffer");
  int64_t slot = handle & kSlotMask;
  g_bytes -= b.bytes;
  g_bufs[slot].ptr = nullptr;
  g_bufs[slot].live = false;
  g_freeSlots.push_back(slot);
  return b;
}

uint64_t registryBytes() { return g_bytes; }
uint64_t registryPeakBytes() { return g_peak; }

DType dtypeFromCode(const Args& a, size_t i) {
  int64_t c = a.i64(i, "dtype code");
  if (c > 3) a.fail("unknown dtype code " + std::to_string(c));
  return static_cast<DType>(c);
}

namespace {

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  try {
    Args a(info, "alloc");
    DType t = dtypeFromCode(a, 0);
    int64_t n = a.i64(1, "length");
    return Napi::Number::New(info.Env(), static_cast<double>(registryAlloc(t, n)));
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

void opFree(const Args& a) { registryFree(static_cast<int64_t>(a.num(0))); }

Napi::Value Address(const Napi::CallbackInfo& info) {
  try {
    Args a(info, "address");
    a.expectCount(3);
    void* p = a.raw(0, a.dtypeOf(0, "buffer"), a.i64(2, "n"), "buffer");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}
}  // namespace

void registerAddress(Napi::Env env, Napi::Object exports) {
  exports.Set("address", Napi::Function::New(env, Address, "address"));
}

void registerBufferOps(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  registerOp(env, exports, "free", opFree);
  exports.Set("allocatedBytes", Napi::Function::New(
                                    env,
                                    [](const Napi::CallbackInfo& info) -> Napi::Value {
                                      return Napi::Number::New(info.Env(), static_cast<double>(registryBytes()));
                                    },
                                    "allocatedBytes"));
  exports.Set("peakAllocatedBytes", Napi::Function::New(
                                        env,
                                        [](const Napi::CallbackInfo& info) -> Napi::Value {
                                          return Napi::Number::New(info.Env(), static_cast<double>(registryPeakBytes()));
                                        },
                                        "peakAllocatedBytes"));
}

}  // namespace lmf
