// Shared plumbing of the native CPU engine: the buffer registry, argument decoding with bounds checks,
// and the error type every op throws before any parallel work starts (never from inside an OpenMP region).
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

// A validation failure; addon.cc turns it into a JavaScript Error carrying the message.
struct OpError : std::runtime_error {
  explicit OpError(const std::string& m) : std::runtime_error(m) {}
};

struct Buf {
  void* ptr = nullptr;
  int64_t length = 0;  // elements
  DType dtype = DType::F32;
  uint32_t generation = 0;
  bool live = false;
  bool mapped = false;  // large buffers come straight from mmap (already zero, released with munmap)
};

// Registry: handles encode (generation << 24) | slot so a stale handle of a freed buffer is caught
// instead of silently reaching a newer buffer that reused the slot.
int64_t registryAlloc(DType dtype, int64_t length);
void registryFree(int64_t handle);
const Buf& registryGet(int64_t handle, const char* op, const char* what);
uint64_t registryBytes();

// Decodes positional arguments of one op call. Buffers travel as two numbers: handle and element offset;
// a missing optional buffer has handle -1.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  const char* op() const { return op_; }
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

// Work (in elements) below which a kernel stays on the calling thread. Opening a parallel region costs a few
// microseconds on an idle machine but a whole scheduler slice (measured 12 ms) when the cores are shared with
// other processes, while a single core streams ~1M floats in well under a millisecond: so memory-bound ops
// need ~1M elements to go parallel, and exp/erf-heavy ones ~128K.
constexpr int64_t kStreamParallelMin = int64_t(1) << 20;
constexpr int64_t kComputeParallelMin = int64_t(1) << 17;

// Registration of one family's ops in addon.cc.
using OpFn = void (*)(const Args&);
void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

void registerMemory(Napi::Env env, Napi::Object exports);
void registerMatmul(Napi::Env env, Napi::Object exports);
void registerEmbedding(Napi::Env env, Napi::Object exports);
void registerNorm(Napi::Env env, Napi::Object exports);
void registerRope(Napi::Env env, Napi::Object exports);
void registerAttention(Napi::Env env, Napi::Object exports);
void registerActivation(Napi::Env env, Napi::Object exports);
void registerLoss(Napi::Env env, Napi::Object exports);
void registerOptim(Napi::Env env, Napi::Object exports);
void registerDecode(Napi::Env env, Napi::Object exports);

}  // namespace lmf
