// The Node-API plumbing both engines share (CPU: src/engine/cpu, CUDA: src/engine/cuda): dtypes, the error type
// every op throws before any work starts, the buffer-handle registry, positional argument decoding with dtype
// and bounds checks, typed-array views, and op registration. Each engine adds its own memory allocation.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace lmf {

enum class DType : int { F32 = 0, F64 = 1, I32 = 2 };

const char* dtypeName(DType t);
size_t dtypeSize(DType t);

// A validation (or device) failure; registerOp turns it into a JavaScript Error carrying the message.
struct OpError : std::runtime_error {
  explicit OpError(const std::string& m) : std::runtime_error(m) {}
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

// Decodes positional arguments of one op call. Buffers travel as two numbers: handle and element offset;
// a missing optional buffer has handle -1.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  const char* op() const { return op_; }
  const Napi::CallbackInfo& info() const { return info_; }
  double num(size_t i) const;
  int64_t i64(size_t i, const char* what) const;  // a non-negative integer
  bool flag(size_t i) const;
  bool isNull(size_t i) const;  // the buffer at handle index i is absent
  // Elements from the offset to the end of the buffer (for tables whose row count is implied by the buffer).
  int64_t avail(size_t i, const char* what) const;
  // Pointer to `count` elements starting at the offset, after checking dtype and bounds.
  void* raw(size_t i, DType want, int64_t count, const char* what) const;
  float* f32(size_t i, int64_t count, const char* what) const {
    return static_cast<float*>(raw(i, DType::F32, count, what));
  }
  double* f64(size_t i, int64_t count, const char* what) const {
    return static_cast<double*>(raw(i, DType::F64, count, what));
  }
  int32_t* i32(size_t i, int64_t count, const char* what) const {
    return static_cast<int32_t*>(raw(i, DType::I32, count, what));
  }
  float* f32OrNull(size_t i, int64_t count, const char* what) const {
    return isNull(i) ? nullptr : f32(i, count, what);
  }
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

// Elements a strided 2-D view of `rows` rows of width `cols` with row stride `ld` spans (0 when empty).
inline int64_t span2d(int64_t rows, int64_t cols, int64_t ld) {
  return (rows <= 0 || cols <= 0) ? 0 : (rows - 1) * ld + cols;
}

// A JavaScript typed array argument (host memory), after checking its element type matches `want`.
struct TypedView {
  void* data;
  int64_t length;
};
TypedView typedArg(const Args& a, size_t i, DType want);

// The dtype whose code (the DType value) is argument i.
DType dtypeFromCode(const Args& a, size_t i);

// Registers alloc, free, allocatedBytes, upload and download. The engine supplies the copy between one of its
// buffers and host memory (`upload` true: host -> buffer); download must have completed when it returns.
using TransferFn = void (*)(void* buffer, void* host, size_t bytes, bool upload, const char* op);
void registerBufferOps(Napi::Env env, Napi::Object exports, TransferFn transfer);

// Registration of one op: decoding and validation errors become JavaScript Errors.
using OpFn = void (*)(const Args&);
void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

}  // namespace lmf
