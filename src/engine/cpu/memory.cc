// Buffers: the handle registry, transfers to and from JavaScript typed arrays, fill/copy and the two
// elementwise ops (add, scale).
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common.h"

namespace lmf {

namespace {
constexpr int64_t kSlotBits = 24;
constexpr int64_t kSlotMask = (int64_t(1) << kSlotBits) - 1;
constexpr uint32_t kMaxGeneration = (uint32_t(1) << 28) - 1;  // keeps handles far below 2^53
std::vector<Buf> g_bufs;
std::vector<int64_t> g_freeSlots;
uint64_t g_bytes = 0;

size_t allocBytes(const Buf& b) {
  size_t bytes = static_cast<size_t>(b.length) * dtypeSize(b.dtype);
  return (bytes + 63) / 64 * 64;
}

constexpr int64_t kParallelMin = kStreamParallelMin;
}  // namespace

static void releaseMemory(const Buf& b) {
  if (b.mapped) munmap(b.ptr, allocBytes(b));  // mapped buffers are >= 1 MB, so never the 0-byte case
  else std::free(b.ptr);
}

int64_t registryAlloc(DType dtype, int64_t length) {
  Buf b;
  b.dtype = dtype;
  b.length = length;
  size_t bytes = allocBytes(b);
  if (bytes == 0) bytes = 64;
  // Large buffers are mapped pages: the kernel hands them out zeroed and untouched, so allocating costs
  // nothing up front and each page is first touched by the (parallel) op that writes it.
  constexpr size_t kMapMin = size_t(1) << 20;
  if (bytes >= kMapMin) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    b.ptr = p == MAP_FAILED ? nullptr : p;
    b.mapped = true;
  } else {
    b.ptr = std::aligned_alloc(64, bytes);
    if (b.ptr) std::memset(b.ptr, 0, bytes);
  }
  if (!b.ptr)
    throw OpError("alloc: out of memory allocating " + std::to_string(bytes) + " bytes (" + std::to_string(length) +
                  " " + dtypeName(dtype) + " elements): reduce the batch, sequence or model size");
  b.live = true;
  int64_t slot;
  if (!g_freeSlots.empty()) {
    slot = g_freeSlots.back();
    g_freeSlots.pop_back();
    b.generation = g_bufs[slot].generation + 1 > kMaxGeneration ? 0 : g_bufs[slot].generation + 1;
    g_bufs[slot] = b;
  } else {
    if (static_cast<int64_t>(g_bufs.size()) > kSlotMask) {
      releaseMemory(b);
      throw OpError("alloc: more than 16M live buffers: free buffers that are no longer needed");
    }
    slot = static_cast<int64_t>(g_bufs.size());
    g_bufs.push_back(b);
  }
  g_bytes += allocBytes(b);
  return (static_cast<int64_t>(b.generation) << kSlotBits) | slot;
}

const Buf& registryGet(int64_t handle, const char* op, const char* what) {
  int64_t slot = handle & kSlotMask;
  uint32_t gen = static_cast<uint32_t>(handle >> kSlotBits);
  if (handle < 0 || slot >= static_cast<int64_t>(g_bufs.size()) || g_bufs[slot].generation != gen)
    throw OpError(std::string(op) + ": " + what + " has handle " + std::to_string(handle) +
                  " which this backend never allocated");
  const Buf& b = g_bufs[slot];
  if (!b.live)
    throw OpError(std::string(op) + ": " + what + " (handle " + std::to_string(handle) +
                  ") was already freed: it is used after free()");
  return b;
}

void registryFree(int64_t handle) {
  const Buf& b = registryGet(handle, "free", "the buffer");
  int64_t slot = handle & kSlotMask;
  g_bytes -= allocBytes(b);
  releaseMemory(g_bufs[slot]);
  g_bufs[slot].ptr = nullptr;
  g_bufs[slot].live = false;
  g_freeSlots.push_back(slot);
}

uint64_t registryBytes() { return g_bytes; }

namespace {

DType dtypeFromCode(const Args& a, size_t i) {
  int64_t c = a.i64(i, "dtype code");
  if (c > 2) a.fail("unknown dtype code " + std::to_string(c));
  return static_cast<DType>(c);
}

// The element count a typed array holds, after checking that its type matches the buffer's dtype.
struct TypedView {
  void* data;
  int64_t length;
};

TypedView typedArg(const Napi::CallbackInfo& info, const Args& a, size_t i, DType want) {
  if (i >= info.Length() || !info[i].IsTypedArray()) a.fail("expected a typed array");
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  napi_typedarray_type ty = t.TypedArrayType();
  DType got;
  if (ty == napi_float32_array) got = DType::F32;
  else if (ty == napi_float64_array) got = DType::F64;
  else if (ty == napi_int32_array) got = DType::I32;
  else a.fail("only Float32Array, Float64Array and Int32Array can be transferred");
  if (got != want)
    a.fail(std::string("the typed array holds ") + dtypeName(got) + " but the buffer is " + dtypeName(want) +
           ": use the matching typed array");
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  return {static_cast<char*>(ab.Data()) + t.ByteOffset(), static_cast<int64_t>(t.ElementLength())};
}

// Transfers need the CallbackInfo itself (for the typed array), so they are registered directly.
Napi::Value Transfer(const Napi::CallbackInfo& info, bool upload) {
  const char* op = upload ? "upload" : "download";
  try {
    Args a(info, op);
    double h = a.num(0);
    if (h < 0) a.fail("the buffer is required");
    const Buf& b = registryGet(static_cast<int64_t>(h), op, "the buffer");
    TypedView tv = typedArg(info, a, 2, b.dtype);
    void* p = a.raw(0, b.dtype, tv.length, "the buffer");
    size_t bytes = static_cast<size_t>(tv.length) * dtypeSize(b.dtype);
    if (upload) std::memcpy(p, tv.data, bytes);
    else std::memcpy(tv.data, p, bytes);
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

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

// address(handle, off, n) -> BigInt: the raw address of elements [off, off+n) after a bounds check. The MPI/NCCL
// addon (src/dist/native) takes buffers as addresses so collectives run on engine memory without copies; the
// pointer stays valid until the buffer is freed, which JavaScript controls.
Napi::Value Address(const Napi::CallbackInfo& info) {
  try {
    Args a(info, "address");
    double h = a.num(0);
    if (h < 0) a.fail("buffer is required");
    const Buf& b = registryGet(static_cast<int64_t>(h), a.op(), "buffer");
    void* p = a.raw(0, b.dtype, a.i64(2, "n"), "buffer");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

// fill(dst, off, n, value)
void opFill(const Args& a) {
  double h = a.num(0);
  if (h < 0) a.fail("dst is required");
  const Buf& b = registryGet(static_cast<int64_t>(h), a.op(), "dst");
  int64_t n = a.i64(2, "n");
  double v = a.num(3);
  void* p = a.raw(0, b.dtype, n, "dst");
  if (b.dtype == DType::F32) {
    float* x = static_cast<float*>(p);
    float fv = static_cast<float>(v);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = fv;
  } else if (b.dtype == DType::F64) {
    double* x = static_cast<double*>(p);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = v;
  } else {
    if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0) a.fail("an i32 buffer can only hold 32-bit integers");
    int32_t* x = static_cast<int32_t*>(p);
    int32_t iv = static_cast<int32_t>(v);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = iv;
  }
}

// copy(dst, off, src, off, n): same dtype; overlapping ranges behave like memmove.
void opCopy(const Args& a) {
  double h = a.num(0);
  if (h < 0) a.fail("dst is required");
  const Buf& b = registryGet(static_cast<int64_t>(h), a.op(), "dst");
  int64_t n = a.i64(4, "n");
  void* d = a.raw(0, b.dtype, n, "dst");
  const void* s = a.raw(2, b.dtype, n, "src");
  std::memmove(d, s, static_cast<size_t>(n) * dtypeSize(b.dtype));
}

// add(out, a, b, n)
void opAdd(const Args& a) {
  int64_t n = a.i64(6, "n");
  float* o = a.f32(0, n, "out");
  const float* x = a.f32(2, n, "a");
  const float* y = a.f32(4, n, "b");
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
}

// scale(x, n, s)
void opScale(const Args& a) {
  int64_t n = a.i64(2, "n");
  float* x = a.f32(0, n, "x");
  float s = static_cast<float>(a.num(3));
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

}  // namespace

void registerMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("free", Napi::Function::New(
                          env,
                          [](const Napi::CallbackInfo& info) -> Napi::Value {
                            try {
                              Args a(info, "free");
                              registryFree(static_cast<int64_t>(a.num(0)));
                            } catch (const std::exception& e) {
                              Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
                            }
                            return info.Env().Undefined();
                          },
                          "free"));
  exports.Set("allocatedBytes", Napi::Function::New(
                                    env,
                                    [](const Napi::CallbackInfo& info) -> Napi::Value {
                                      return Napi::Number::New(info.Env(), static_cast<double>(registryBytes()));
                                    },
                                    "allocatedBytes"));
  exports.Set("upload", Napi::Function::New(
                            env, [](const Napi::CallbackInfo& info) { return Transfer(info, true); }, "upload"));
  exports.Set("download", Napi::Function::New(
                              env, [](const Napi::CallbackInfo& info) { return Transfer(info, false); }, "download"));
  registerOp(env, exports, "fill", opFill);
  registerOp(env, exports, "copy", opCopy);
  registerOp(env, exports, "add", opAdd);
  registerOp(env, exports, "scale", opScale);
}

}  // namespace lmf
