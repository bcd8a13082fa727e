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
constexpr int64_t kParallelMin = kStreamParallelMin;
// Large buffers are mapped pages: the kernel hands them out zeroed and untouched, so allocating costs nothing up
// front and each page is first touched by the (parallel) op that writes it.
constexpr size_t kMapMin = size_t(1) << 20;

void releaseMemory(const Buf& b) {
  if (b.mapped) munmap(b.ptr, b.bytes);
  else std::free(b.ptr);
}
}  // namespace

int64_t registryAlloc(DType dtype, int64_t length) {
  Buf b;
  b.dtype = dtype;
  b.length = length;
  b.bytes = std::max<size_t>(64, (static_cast<size_t>(length) * dtypeSize(dtype) + 63) / 64 * 64);
  if (b.bytes >= kMapMin) {
    void* p = mmap(nullptr, b.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    b.ptr = p == MAP_FAILED ? nullptr : p;
    b.mapped = true;
  } else {
    b.ptr = std::aligned_alloc(64, b.bytes);
    if (b.ptr) std::memset(b.ptr, 0, b.bytes);
  }
  if (!b.ptr)
    throw OpError("alloc: out of memory allocating " + std::to_string(b.bytes) + " bytes (" + std::to_string(length) +
                  " " + dtypeName(dtype) + " elements): reduce the batch, sequence or model size");
  try {
    return registryInsert(b);
  } catch (...) {
    releaseMemory(b);
    throw;
  }
}

void registryFree(int64_t handle) { releaseMemory(registryRemove(handle)); }

// Host memory on both sides: plain copies.
void op::upload(const UploadArgs& p) { std::memcpy(p.buffer, p.host.data, p.host.length * dtypeSize(p.dtype)); }
void op::download(const DownloadArgs& p) { std::memcpy(p.host.data, p.buffer, p.host.length * dtypeSize(p.dtype)); }

namespace {


// address(handle, off, n) -> BigInt: the raw address of elements [off, off+n) after a bounds check. The MPI/NCCL
// addon (src/parallel/native) takes buffers as addresses so collectives run on engine memory without copies; the
// pointer stays valid until the buffer is freed, which JavaScript controls. A CPU-only call (it returns a value),
// so it is not in the op table.
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

void op::fill(const FillArgs& args) {
  const int64_t n = args.n;
  const double v = args.value;
  void* p = args.dst;
  if (args.dtype == DType::F32) {
    float* x = static_cast<float*>(p);
    float fv = static_cast<float>(v);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = fv;
  } else if (args.dtype == DType::F64) {
    double* x = static_cast<double*>(p);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = v;
  } else {
    int32_t* x = static_cast<int32_t*>(p);
    int32_t iv = static_cast<int32_t>(v);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = iv;
  }
}

// Overlapping ranges behave like memmove.
void op::copy(const CopyArgs& p) { std::memmove(p.dst, p.src, p.n * dtypeSize(p.dtype)); }

void op::add(const AddArgs& p) {
  const int64_t n = p.n;
  float* o = p.out;
  const float *x = p.a, *y = p.b;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
}

void op::scale(const ScaleArgs& p) {
  const int64_t n = p.n;
  float* x = p.x;
  const float s = static_cast<float>(p.s);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void registerAddress(Napi::Env env, Napi::Object exports) {
  exports.Set("address", Napi::Function::New(env, Address, "address"));
}

}  // namespace lmf
