// Buffers: the handle registry, transfers to and from JavaScript typed arrays, fill/copy and the two
// elementwise ops (add, scale).
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/bf16.h"
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

// The CPU engine stores bf16 buffers (transfers, fill, copy and the f32 <-> bf16 cast) so that the conversions
// are testable here; its compute ops read f32 only (Args::activation refuses bf16).
bool engineComputesBf16() { return false; }

namespace {
void castToBf16(uint16_t* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] = floatToBf16(src[i]);
}
void castToF32(float* dst, const uint16_t* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] = bf16ToFloat(src[i]);
}
}  // namespace

// Host memory on both sides: plain copies, converted for bf16 buffers (which travel as Float32Array).
void op::upload(const UploadArgs& p) {
  if (p.dtype == DType::BF16) castToBf16(static_cast<uint16_t*>(p.buffer), static_cast<const float*>(p.host.data), p.host.length);
  else std::memcpy(p.buffer, p.host.data, p.host.length * dtypeSize(p.dtype));
}
void op::download(const DownloadArgs& p) {
  if (p.dtype == DType::BF16) castToF32(static_cast<float*>(p.host.data), static_cast<const uint16_t*>(p.buffer), p.host.length);
  else std::memcpy(p.host.data, p.buffer, p.host.length * dtypeSize(p.dtype));
}


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
  } else if (args.dtype == DType::BF16) {
    uint16_t* x = static_cast<uint16_t*>(p);
    const uint16_t bv = floatToBf16(static_cast<float>(v));
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = bv;
  } else {
    int32_t* x = static_cast<int32_t*>(p);
    int32_t iv = static_cast<int32_t>(v);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) x[i] = iv;
  }
}

// Overlapping ranges behave like memmove; a cast (f32 <-> bf16) needs distinct buffers' ranges to not overlap
// (the cast reads 4 bytes where it writes 2, or the reverse), so an overlapping cast goes through a copy.
void op::copy(const CopyArgs& p) {
  if (p.dtype == p.srcDtype) {
    std::memmove(p.dst, p.src, p.n * dtypeSize(p.dtype));
    return;
  }
  const char* s = static_cast<const char*>(p.src);
  const char* d = static_cast<const char*>(p.dst);
  const size_t sb = p.n * dtypeSize(p.srcDtype), db = p.n * dtypeSize(p.dtype);
  std::vector<char> tmp;
  if (d < s + sb && s < d + db) {
    tmp.assign(s, s + sb);
    s = tmp.data();
  }
  if (p.dtype == DType::BF16) castToBf16(static_cast<uint16_t*>(p.dst), reinterpret_cast<const float*>(s), p.n);
  else castToF32(static_cast<float*>(p.dst), reinterpret_cast<const uint16_t*>(s), p.n);
}

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

}  // namespace lmf
