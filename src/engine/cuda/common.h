// Shared plumbing of the CUDA engine's Node-API glue (built by g++): the device buffer registry, argument
// decoding with bounds checks (the same conventions and messages as the CPU engine), the one stream every op
// is queued on, reusable scratch areas, the device error flag and the precision mode.
#pragma once
#include <cuda_runtime.h>
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.cuh"

namespace lmf {

enum class DType : int { F32 = 0, F64 = 1, I32 = 2 };

const char* dtypeName(DType t);
size_t dtypeSize(DType t);

// A validation or CUDA failure; the glue turns it into a JavaScript Error carrying the message.
struct OpError : std::runtime_error {
  explicit OpError(const std::string& m) : std::runtime_error(m) {}
};

// Throws an OpError naming the call when a CUDA runtime call fails.
void cudaCheck(cudaError_t e, const char* what);

struct Buf {
  void* ptr = nullptr;  // device memory
  int64_t length = 0;   // elements
  DType dtype = DType::F32;
  uint32_t generation = 0;
  bool live = false;
};

// Handles encode (generation << 24) | slot, as on the CPU: a stale handle of a freed buffer is caught.
int64_t registryAlloc(DType dtype, int64_t length);
void registryFree(int64_t handle);
const Buf& registryGet(int64_t handle, const char* op, const char* what);
uint64_t registryBytes();
uint64_t registryPeakBytes();

// ---- the engine state ----
enum class Precision : int { BF16 = 0, FP32 = 1 };
Precision precision();
void setPrecision(Precision p);
cudaStream_t stream();
// The device-side error flag (mapped host memory): kernels set it, `checkDeviceError` reads it after a sync.
int* deviceErrorFlag();
// Throws (and clears the flag) if a kernel reported bad input since the last check. Call after a sync.
void checkDeviceError(const char* op);
// Waits for the stream, then reports kernel failures and flagged bad inputs.
void syncStream(const char* op);

// Reusable device scratch areas, one per purpose, grown on demand (stream-ordered, so no host sync).
enum ScratchSlot : int {
  kScratchA = 0,       // bf16 copy of a GEMM's A operand
  kScratchB,           // bf16 copy of a GEMM's B operand
  kScratchGemm,        // cuBLASLt workspace
  kScratchLogits,      // the head's logits chunk
  kScratchHeadW,       // bf16 copy of the head weight
  kScratchPartials,    // reduction partials (double)
  kScratchSort,        // embedding backward sort
  kScratchAttn,        // attention backward row dots
  kScratchRowLoss,     // per-row losses of the head (double)
  kScratchCount
};
void* scratch(ScratchSlot slot, size_t bytes);
uint64_t scratchBytes();

// Decodes positional arguments of one op call: buffers travel as (handle, element offset); a missing
// optional buffer has handle -1.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  const char* op() const { return op_; }
  double num(size_t i) const;
  int64_t i64(size_t i, const char* what) const;  // a non-negative integer
  bool flag(size_t i) const;
  bool isNull(size_t i) const;
  int64_t avail(size_t i, const char* what) const;
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

inline int64_t span2d(int64_t rows, int64_t cols, int64_t ld) {
  return (rows <= 0 || cols <= 0) ? 0 : (rows - 1) * ld + cols;
}

using OpFn = void (*)(const Args&);
void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

void registerMemory(Napi::Env env, Napi::Object exports);
void registerMatmul(Napi::Env env, Napi::Object exports);
void registerOps(Napi::Env env, Napi::Object exports);
void registerLoss(Napi::Env env, Napi::Object exports);

}  // namespace lmf
