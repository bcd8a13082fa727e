// Device buffers: the handle registry (stream-ordered cudaMallocAsync, zero-filled like the CPU engine),
// transfers to and from JavaScript typed arrays, fill/copy and the elementwise add/scale.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../native/bf16.h"
#include "common.h"

namespace lmf {

// The CUDA engine computes on bf16 activations (the ACT arguments of the op table).
bool engineComputesBf16() { return true; }

void sameActDType(const char* op, std::initializer_list<DType> dtypes) {
  const DType first = *dtypes.begin();
  for (DType d : dtypes)
    if (d != first)
      opFail(op, std::string("its activations mix ") + dtypeName(first) + " and " + dtypeName(d) +
                     " buffers: give them one dtype (the model's activation dtype)");
}


int64_t registryAlloc(DType dtype, int64_t length) {
  Buf b;
  b.dtype = dtype;
  b.length = length;
  b.bytes = std::max<size_t>(256, (static_cast<size_t>(length) * dtypeSize(dtype) + 255) / 256 * 256);
  cudaStream_t s = stream();
  cudaError_t e = cudaMallocAsync(&b.ptr, b.bytes, s);
  if (e != cudaSuccess && e != cudaErrorMemoryAllocation) cudaCheck(e, "alloc");
  if (e != cudaSuccess) {
    tolerate(e);
    size_t freeB = 0, total = 0;
    tolerate(cudaMemGetInfo(&freeB, &total));
    throw OpError("alloc: out of GPU memory allocating " + std::to_string(b.bytes) + " bytes (" + std::to_string(length) +
                  " " + dtypeName(dtype) + " elements; " + std::to_string(freeB >> 20) + " MiB free of " +
                  std::to_string(total >> 20) + " MiB): reduce the micro-batch, sequence length or model size");
  }
  cudaCheck(cudaMemsetAsync(b.ptr, 0, b.bytes, s), "alloc");
  try {
    return registryInsert(b);
  } catch (...) {
    tolerate(cudaFreeAsync(b.ptr, s));
    throw;
  }
}

void registryFree(int64_t handle) {
  // Stream-ordered: kernels already queued that use the buffer complete before the memory is reused.
  cudaCheck(cudaFreeAsync(registryRemove(handle).ptr, stream()), "free");
}

namespace {

// Pinned staging for uploads: a copy from pageable memory makes CUDA wait for the whole stream first, which
// would stall the host at every micro-batch's token upload. Small uploads are copied into a pinned buffer
// and queued; a buffer is reused once the event recorded after its copy has completed.
struct Staging {
  void* host = nullptr;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
};
std::vector<Staging> g_staging;
constexpr size_t kStagingMax = size_t(64) << 20;  // larger uploads (weights) take the plain path
constexpr size_t kStagingSlots = 8;

}  // namespace

void stagedUpload(void* dst, const void* src, size_t bytes) {
  Staging* pick = nullptr;
  for (auto& st : g_staging) {
    if (st.bytes < bytes) continue;
    // "Not ready" is an answer here, not a failure: tolerate() keeps it from failing the next launch check.
    const cudaError_t q = cudaEventQuery(st.done);
    if (q == cudaSuccess) {
      pick = &st;
      break;
    }
    if (q != cudaErrorNotReady) cudaCheck(q, "upload");
    tolerate(q);
  }
  if (!pick) {
    if (g_staging.size() >= kStagingSlots) {
      // All slots are in flight or small: recycle the first one after its copy finished.
      Staging& st = g_staging.front();
      cudaCheck(cudaEventSynchronize(st.done), "upload");
      cudaCheck(cudaFreeHost(st.host), "upload");
      cudaCheck(cudaEventDestroy(st.done), "upload");
      g_staging.erase(g_staging.begin());
    }
    Staging st;
    st.bytes = bytes < 4096 ? 4096 : bytes;
    cudaCheck(cudaHostAlloc(&st.host, st.bytes, cudaHostAllocDefault), "upload (pinned staging)");
    cudaCheck(cudaEventCreateWithFlags(&st.done, cudaEventDisableTiming), "upload");
    g_staging.push_back(st);
    pick = &g_staging.back();
  }
  std::memcpy(pick->host, src, bytes);
  cudaCheck(cudaMemcpyAsync(dst, pick->host, bytes, cudaMemcpyHostToDevice, stream()), "upload");
  cudaCheck(cudaEventRecord(pick->done, stream()), "upload");
}

// Uploads are queued (small ones through pinned staging); downloads wait for the stream, which is the engine's
// only synchronisation point.
void op::upload(const UploadArgs& p) {
  if (p.dtype == DType::BF16) {
    // The f32 values go to device scratch as they are, then one kernel rounds them into the buffer.
    const int64_t n = p.host.length;
    if (!n) return;
    const size_t bytes = size_t(n) * 4;
    void* f32 = scratch(kScratchCast, bytes);
    if (bytes <= kStagingMax) stagedUpload(f32, p.host.data, bytes);
    else cudaCheck(cudaMemcpyAsync(f32, p.host.data, bytes, cudaMemcpyHostToDevice, stream()), p.kOp);
    cuda::convertRows({p.buffer, true}, n, {f32, false}, n, 1, n, stream());
    return;
  }
  const size_t bytes = p.host.length * dtypeSize(p.dtype);
  if (bytes && bytes <= kStagingMax) stagedUpload(p.buffer, p.host.data, bytes);
  else if (bytes) cudaCheck(cudaMemcpyAsync(p.buffer, p.host.data, bytes, cudaMemcpyHostToDevice, stream()), p.kOp);
}

void op::download(const DownloadArgs& p) {
  if (p.dtype == DType::BF16) {
    const int64_t n = p.host.length;
    if (n) {
      void* f32 = scratch(kScratchCast, size_t(n) * 4);
      cuda::convertRows({f32, false}, n, {p.buffer, true}, n, 1, n, stream());
      cudaCheck(cudaMemcpyAsync(p.host.data, f32, size_t(n) * 4, cudaMemcpyDeviceToHost, stream()), p.kOp);
    }
    syncStream(p.kOp);
    return;
  }
  const size_t bytes = p.host.length * dtypeSize(p.dtype);
  if (bytes) cudaCheck(cudaMemcpyAsync(p.host.data, p.buffer, bytes, cudaMemcpyDeviceToHost, stream()), p.kOp);
  syncStream(p.kOp);
}

void op::fill(const FillArgs& args) {
  const int64_t n = args.n;
  const double v = args.value;
  void* p = args.dst;
  if (args.dtype == DType::F32) {
    cuda::fillF32(static_cast<float*>(p), n, static_cast<float>(v), stream());
  } else if (args.dtype == DType::F64) {
    cuda::fillF64(static_cast<double*>(p), n, v, stream());
  } else if (args.dtype == DType::BF16) {
    cuda::fillBf16(static_cast<cuda::bf16raw*>(p), n, floatToBf16(static_cast<float>(v)), stream());
  } else {
    cuda::fillI32(static_cast<int32_t*>(p), n, static_cast<int32_t>(v), stream());
  }
}

// Overlapping ranges behave like memmove (cudaMemcpy on one buffer region is not defined for overlap, so an
// overlapping copy goes through a scratch area).
void op::copy(const CopyArgs& args) {
  if (args.dtype != args.srcDtype) {
    // The cast (f32 <-> bf16); an overlapping source is copied aside first.
    const bool toBf16 = args.dtype == DType::BF16;
    const void* src = args.src;
    const size_t sb = args.n * dtypeSize(args.srcDtype), db = args.n * dtypeSize(args.dtype);
    const char *s = static_cast<const char*>(src), *d = static_cast<const char*>(args.dst);
    if (args.n && d < s + sb && s < d + db) {
      void* tmp = scratch(kScratchCast, sb);
      cudaCheck(cudaMemcpyAsync(tmp, src, sb, cudaMemcpyDeviceToDevice, stream()), "copy");
      src = tmp;
    }
    cuda::convertRows({args.dst, toBf16}, args.n, {src, !toBf16}, args.n, 1, args.n, stream());
    return;
  }
  char* d = static_cast<char*>(args.dst);
  const char* s = static_cast<const char*>(args.src);
  const size_t bytes = args.n * dtypeSize(args.dtype);
  if (!bytes || d == s) return;
  const bool overlap = d < s + bytes && s < d + bytes;
  if (overlap) {
    void* tmp = scratch(kScratchA, bytes);
    cudaCheck(cudaMemcpyAsync(tmp, s, bytes, cudaMemcpyDeviceToDevice, stream()), "copy");
    cudaCheck(cudaMemcpyAsync(d, tmp, bytes, cudaMemcpyDeviceToDevice, stream()), "copy");
  } else {
    cudaCheck(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, stream()), "copy");
  }
}

void op::add(const AddArgs& p) { cuda::addF32(p.out, p.a, p.b, p.n, stream()); }

void op::scale(const ScaleArgs& p) { cuda::scaleF32(p.x, p.n, static_cast<float>(p.s), stream()); }

}  // namespace lmf
