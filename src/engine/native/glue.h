// The Node-API plumbing both engines share (CPU: src/engine/cpu, CUDA: src/engine/cuda): dtypes, the error type
// every op throws before any work starts, the buffer-handle registry, reading positional arguments with dtype
// and bounds checks, typed-array views, and op registration. Each engine adds its own memory allocation. Which
// argument sits at which position is not decided here but in the op table (op_table.h).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace lmf {

// BF16: 2-byte elements (bfloat16, the top half of an IEEE float), the storage format of activations and weight
// copies on the CUDA engine; transfers and copies to/from f32 round to nearest even (bf16.h).
enum class DType : int { F32 = 0, F64 = 1, I32 = 2, BF16 = 3 };

const char* dtypeName(DType t);
size_t dtypeSize(DType t);

// The element type of a bf16 buffer as the argument readers see it: the raw bit pattern.
struct Bf16Bits {
  uint16_t bits;
};

// The dtype of a buffer of element type T (const or not).
template <class T>
constexpr DType dtypeOfElement() {
  using U = std::remove_const_t<T>;
  static_assert(std::is_same_v<U, float> || std::is_same_v<U, double> || std::is_same_v<U, int32_t> ||
                    std::is_same_v<U, Bf16Bits>,
                "a buffer holds float, double, int32_t or Bf16Bits elements");
  return std::is_same_v<U, float>    ? DType::F32
         : std::is_same_v<U, double> ? DType::F64
         : std::is_same_v<U, int32_t> ? DType::I32
                                      : DType::BF16;
}

// An activation argument (op table kind ACT): an f32 or a bf16 buffer. T is float or const float. The CPU engine
// refuses bf16 activations when reading (engineComputesBf16()), so its ops use the implicit float view as before;
// the CUDA glue dispatches on `dtype`.
template <class T>
struct Act {
  using Raw = std::conditional_t<std::is_const_v<T>, const void, void>;
  Raw* ptr = nullptr;
  DType dtype = DType::F32;
  bool bf16() const { return dtype == DType::BF16; }
  operator T*() const { return static_cast<T*>(ptr); }  // the f32 view (only meaningful when dtype is F32)
  template <class U>
  U* as() const {
    return static_cast<U*>(const_cast<void*>(static_cast<const void*>(ptr)));
  }
};

// Engine hook: whether the engine's ops compute on bf16 activations (CUDA: yes; CPU: it only stores them).
bool engineComputesBf16();

// A validation (or device) failure; registerOp turns it into a JavaScript Error carrying the message.
struct OpError : std::runtime_error {
  explicit OpError(const std::string& m) : std::runtime_error(m) {}
};

// Throws the OpError "<op>: <msg>".
[[noreturn]] void opFail(const char* op, const std::string& msg);

// A JavaScript typed array argument (host memory).
struct TypedView {
  void* data = nullptr;
  int64_t length = 0;  // elements
  DType dtype = DType::F32;
};

struct Buf {
  void* ptr = nullptr;
  int64_t length = 0;  // elements
  DType dtype = DType::F32;
  size_t bytes = 0;     // what the engine allocated (padded)
  bool mapped = false;  // engine-specific: the CPU maps large buffers with mmap
  uint32_t generation = 0;
  bool live = false;
};

// The registry of live buffers. Handles encode (generation << 24) | slot, so a stale handle of a freed buffer is
// caught instead of silently reaching a newer buffer that reused the slot. The engine allocates `b.ptr`, then
// registers it; on removal it gets the buffer back to release its memory.
int64_t registryInsert(Buf b);  // throws OpError when 16M buffers are live (the caller then releases b)
const Buf& registryGet(int64_t handle, const char* op, const char* what);
Buf registryRemove(int64_t handle);
uint64_t registryBytes();
uint64_t registryPeakBytes();

// Engine hooks, defined by each engine.
int64_t registryAlloc(DType dtype, int64_t length);
void registryFree(int64_t handle);

// Reads the positional arguments of one op call. Buffers travel as two numbers: handle and element offset;
// a missing optional buffer has handle -1. Every failure names the op.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  const char* op() const { return op_; }
  void expectCount(size_t count) const;  // the call passes exactly `count` arguments
  double num(size_t i) const;
  int64_t i64(size_t i, const char* what) const;  // a non-negative integer
  bool flag(size_t i) const;
  TypedView host(size_t i) const;  // a Float32Array, Float64Array or Int32Array
  bool isNull(size_t i) const;     // the buffer at handle index i is absent
  // The dtype of the (required) buffer at handle index i.
  DType dtypeOf(size_t i, const char* what) const;
  // Elements from the offset to the end of the buffer (for tables whose row count is implied by the buffer).
  int64_t avail(size_t i, const char* what) const;
  // Pointer to `count` elements starting at the offset, after checking dtype and bounds.
  void* raw(size_t i, DType want, int64_t count, const char* what) const;
  template <class T>
  T* buffer(size_t i, int64_t count, const char* what) const {
    return static_cast<T*>(raw(i, dtypeOfElement<T>(), count, what));
  }
  // An activation: f32, or bf16 where the engine computes on it.
  template <class T>
  Act<T> activation(size_t i, int64_t count, const char* what) const {
    Act<T> a;
    a.dtype = dtypeOf(i, what);
    if (a.dtype == DType::BF16 && !engineComputesBf16())
      fail(std::string(what) + " is a bf16 buffer, but this engine computes in f32 only (it stores bf16 for "
                               "transfers and copies): copy it into an f32 buffer first, or use the CUDA engine");
    if (a.dtype != DType::BF16) a.dtype = DType::F32;  // raw() names the mismatch of any other dtype
    a.ptr = raw(i, a.dtype, count, what);
    return a;
  }
  [[noreturn]] void fail(const std::string& msg) const { opFail(op_, msg); }

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

// The dtype whose code (the DType value) is argument i.
DType dtypeFromCode(const Args& a, size_t i);

// Registers alloc, free, allocatedBytes and peakAllocatedBytes (the calls that are not ops of the table).
void registerBufferOps(Napi::Env env, Napi::Object exports);

// Registers `address(handle, offset, n)` -> BigInt: the raw address of elements [offset, offset + n) of a buffer,
// after a bounds check (host memory on the CPU, device memory on CUDA). The collectives of src/parallel take
// buffers as addresses, so they run on engine memory without copies; the address stays valid until the buffer is
// freed, which JavaScript controls. It returns a value, so it is not in the op table.
void registerAddress(Napi::Env env, Napi::Object exports);

// Registration of a function outside the op table: reading and validation errors become JavaScript Errors.
using OpFn = void (*)(const Args&);
void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

// Registration of an op of the table (op_args.h): its arguments are read into a P, then `run` computes or
// launches; any failure becomes a JavaScript Error.
template <class P>
void registerOp(Napi::Env env, Napi::Object exports, void (*run)(const P&)) {
  exports.Set(P::kOp, Napi::Function::New(
                          env,
                          [run](const Napi::CallbackInfo& info) -> Napi::Value {
                            try {
                              P p;
                              p.read(Args(info, P::kOp));
                              run(p);
                            } catch (const std::exception& e) {
                              Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
                            }
                            return info.Env().Undefined();
                          },
                          P::kOp));
}

}  // namespace lmf
