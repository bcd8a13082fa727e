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

enum class DType : int { F32 = 0, F64 = 1, I32 = 2 };

const char* dtypeName(DType t);
size_t dtypeSize(DType t);

// The dtype of a buffer of element type T (const or not).
template <class T>
constexpr DType dtypeOfElement() {
  using U = std::remove_const_t<T>;
  static_assert(std::is_same_v<U, float> || std::is_same_v<U, double> || std::is_same_v<U, int32_t>,
                "a buffer holds float, double or int32_t elements");
  return std::is_same_v<U, float> ? DType::F32 : std::is_same_v<U, double> ? DType::F64 : DType::I32;
}

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
  [[noreturn]] void fail(const std::string& msg) const { opFail(op_, msg); }

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

// The dtype whose code (the DType value) is argument i.
DType dtypeFromCode(const Args& a, size_t i);

// Registers alloc, free, allocatedBytes and peakAllocatedBytes (the calls that are not ops of the table).
void registerBufferOps(Napi::Env env, Napi::Object exports);

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
