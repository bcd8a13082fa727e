// The interpreted CUDA engine's runtime: the CUDA runtime API (include/cuda_runtime.h) on the CPU. One modelled
// device of sm_90 semantics. Streams are queues whose operations run when the host waits for them (or when more
// than kMaxQueued are queued, as a GPU's launch queue fills), so the engine's asynchronous mistakes show up here:
// results read without a sync, host memory reused before its copy ran, cudaErrorNotReady left as the last error.
// Device memory is host memory, poisoned with NaN bytes when allocated and ending at an inaccessible page.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "block.h"
#include "cuda_runtime.h"

struct CUevent_st;

namespace {

using lmf_interp::Stats;

struct Op {
  enum Kind { kKernel, kWork, kEventDone } kind = kWork;
  const char* what = "";
  std::function<void()> work;  // copies, fills, frees, library models
  bool guarded = false;        // run it with illegal accesses trapped (library models)
  // kernel
  std::function<void()> body;
  dim3 grid, block;
  size_t smem = 0;
  CUevent_st* event = nullptr;
};

}  // namespace

struct CUstream_st {
  std::deque<Op> queue;
  unsigned flags = 0;
  bool legacy = false;
};

struct CUevent_st {
  int pending = 0;  // records queued but not yet reached
  CUstream_st* stream = nullptr;
  unsigned flags = 0;
  bool destroyed = false;
  // When the stream last reached it (host clock: the interpreter's own time to run the work before it).
  std::chrono::steady_clock::time_point reached{};
  bool everReached = false;
};

struct CUmemPoolHandle_st {
  uint64_t releaseThreshold = 0;
};

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMaxQueued = 1024;
constexpr size_t kStaticSharedLimit = size_t(48) << 10;
constexpr int kSharedOptInMax = 232448;  // an H100/H200's opt-in limit per block

struct DeviceAlloc {
  char* mapBase = nullptr;
  size_t mapBytes = 0;
  size_t bytes = 0;
  bool async = false;
  bool freeing = false;  // cudaFreeAsync was called: work queued before it may still use the memory
};

struct HostAlloc {
  size_t bytes = 0;
  bool mapped = false;
};

struct Runtime {
  cudaError_t last = cudaSuccess;
  cudaError_t sticky = cudaSuccess;
  std::string detail;  // why the error `detailCode` happened
  cudaError_t detailCode = cudaSuccess;
  CUstream_st legacy;
  std::vector<CUstream_st*> streams;
  std::map<uintptr_t, DeviceAlloc> device;  // by start address
  std::map<uintptr_t, HostAlloc> host;      // pinned host memory
  std::unordered_map<const void*, int> smemOptIn;
  CUmemPoolHandle_st pool;
  uint64_t reserved = 0, reservedHigh = 0, used = 0, usedHigh = 0;
  Stats stats;
  int currentDevice = 0;
  bool executing = false;  // an operation of a stream is running (it may use memory whose free is queued after it)
  Runtime() {
    legacy.legacy = true;
    if (const char* v = std::getenv("LMFORGE_CUDA_INTERPRET_SCHEDULE")) lmf_interp::setOption("schedule", v);
  }
};

Runtime& R() {
  static Runtime* r = new Runtime();  // never destroyed: kernels may still reference it at exit
  return *r;
}

cudaError_t fail(cudaError_t e, const std::string& detail = std::string()) {
  Runtime& r = R();
  r.last = e;
  r.detail = detail;
  r.detailCode = e;
  return e;
}

#define LMF_STICKY_GUARD() \
  do {                     \
    if (R().sticky != cudaSuccess) return fail(R().sticky, R().detail); \
  } while (0)

void makeSticky(cudaError_t code, const std::string& detail) {
  Runtime& r = R();
  if (r.sticky != cudaSuccess) return;
  r.sticky = code;
  r.last = code;
  r.detail = detail;
  r.detailCode = code;
  // The context is lost: nothing queued runs any more.
  r.legacy.queue.clear();
  for (CUstream_st* s : r.streams) s->queue.clear();
}

size_t hostMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? size_t(pages) * size_t(size) : size_t(64) << 30;
}

CUstream_st* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &R().legacy;
  for (CUstream_st* k : R().streams)
    if (k == s) return k;
  return nullptr;
}

size_t queuedTotal() {
  size_t n = R().legacy.queue.size();
  for (CUstream_st* s : R().streams) n += s->queue.size();
  return n;
}

bool allIdle() { return queuedTotal() == 0; }

// Runs the oldest operation of `s`. Returns false when there was none.
bool runOne(CUstream_st* s) {
  Runtime& r = R();
  if (s->queue.empty()) return false;
  Op op = std::move(s->queue.front());
  s->queue.pop_front();
  if (r.sticky != cudaSuccess) return true;
  struct Executing {
    bool& flag;
    bool was;
    explicit Executing(bool& f) : flag(f), was(f) { flag = true; }
    ~Executing() { flag = was; }
  } executing(r.executing);
  switch (op.kind) {
    case Op::kKernel: {
      std::string why;
      cudaError_t code = cudaErrorLaunchFailure;
      r.stats.launches++;
      if (!lmf_interp::runGrid(op.what, op.body, op.grid, op.block, op.smem, why, code, r.stats.blocks))
        makeSticky(code, "kernel " + why);
      break;
    }
    case Op::kWork: {
      if (op.guarded) {
        std::string why;
        if (!lmf_interp::runGuarded(op.work, why)) makeSticky(cudaErrorIllegalAddress, std::string(op.what) + ": " + why);
      } else {
        op.work();
      }
      break;
    }
    case Op::kEventDone: {
      CUevent_st* e = op.event;
      e->reached = std::chrono::steady_clock::now();
      e->everReached = true;
      e->pending--;
      if (e->destroyed && e->pending == 0) delete e;
      break;
    }
  }
  return true;
}

void enqueue(CUstream_st* s, Op op) {
  Runtime& r = R();
  s->queue.push_back(std::move(op));
  r.stats.queuedOps++;
  const size_t total = queuedTotal();
  if (total > r.stats.maxQueueDepth) r.stats.maxQueueDepth = total;
  // A full launch queue: the device catches up on the oldest work before the host may queue more.
  if (s->queue.size() > kMaxQueued) runOne(s);
}

// The host waits for `s` until `done` holds (or its queue is empty).
template <class Done>
void waitFor(CUstream_st* s, Done done) {
  Runtime& r = R();
  r.stats.hostWaits++;
  bool ran = false;
  while (!done() && runOne(s)) ran = true;
  if (ran && allIdle()) r.stats.drains++;
}

void drainAll() {
  Runtime& r = R();
  r.stats.hostWaits++;
  bool ran = false;
  while (runOne(&r.legacy)) ran = true;
  for (CUstream_st* s : r.streams)
    while (runOne(s)) ran = true;
  if (ran) r.stats.drains++;
}

// The legacy default stream waits for every blocking stream (streams created without cudaStreamNonBlocking).
void drainLegacy() {
  Runtime& r = R();
  r.stats.hostWaits++;
  bool ran = false;
  while (runOne(&r.legacy)) ran = true;
  for (CUstream_st* s : r.streams)
    if (!(s->flags & cudaStreamNonBlocking))
      while (runOne(s)) ran = true;
  if (ran && allIdle()) r.stats.drains++;
}

const DeviceAlloc* findDevice(const void* p, size_t bytes, uintptr_t* startOut = nullptr) {
  const auto& m = R().device;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return nullptr;
  --it;
  if (a + bytes > it->first + it->second.bytes) return nullptr;
  // Memory whose stream-ordered free is queued exists only for the work queued before that free.
  if (it->second.freeing && !R().executing) return nullptr;
  if (startOut) *startOut = it->first;
  return &it->second;
}

const HostAlloc* findHost(const void* p, size_t bytes) {
  const auto& m = R().host;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return nullptr;
  --it;
  if (a + bytes > it->first + it->second.bytes) return nullptr;
  return &it->second;
}

bool deviceAccessible(const void* p, size_t bytes) {
  if (findDevice(p, bytes)) return true;
  const HostAlloc* h = findHost(p, bytes);
  return h && h->mapped;
}

std::string ptrText(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

cudaError_t badRange(const char* call, const char* which, const void* p, size_t bytes) {
  return fail(cudaErrorInvalidValue, std::string(call) + ": the " + which + " range [" + ptrText(p) + ", +" +
                                         std::to_string(bytes) + " bytes) is not inside one device allocation");
}

cudaError_t allocDevice(void** ptr, size_t bytes, bool async) {
  Runtime& r = R();
  if (!ptr) return fail(cudaErrorInvalidValue);
  if (bytes == 0) {
    *ptr = nullptr;
    return cudaSuccess;
  }
  const size_t rounded = (bytes + 255) / 256 * 256;
  const size_t mapBytes = (rounded + kPage - 1) / kPage * kPage + kPage;
  void* base = mmap(nullptr, mapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return fail(cudaErrorMemoryAllocation);
  char* guard = static_cast<char*>(base) + mapBytes - kPage;
  mprotect(guard, kPage, PROT_NONE);
  char* start = guard - rounded;  // 256-aligned: the allocation ends where the inaccessible page starts
  std::memset(start, 0xff, rounded);
  r.device[reinterpret_cast<uintptr_t>(start)] = DeviceAlloc{static_cast<char*>(base), mapBytes, rounded, async};
  r.used += rounded;
  r.usedHigh = std::max(r.usedHigh, r.used);
  if (async) {
    r.reserved += rounded;
    r.reservedHigh = std::max(r.reservedHigh, r.reserved);
  }
  *ptr = start;
  return cudaSuccess;
}

void releaseDevice(const DeviceAlloc& a) {
  Runtime& r = R();
  r.used -= a.bytes;
  if (a.async) r.reserved -= a.bytes;
  munmap(a.mapBase, a.mapBytes);
}

}  // namespace

// ---- errors ----

cudaError_t cudaGetLastError() {
  Runtime& r = R();
  if (r.sticky != cudaSuccess) return r.sticky;
  const cudaError_t e = r.last;
  r.last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  Runtime& r = R();
  return r.sticky != cudaSuccess ? r.sticky : r.last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define LMF_NAME(x) \
  case x: return #x;
    LMF_NAME(cudaSuccess) LMF_NAME(cudaErrorInvalidValue) LMF_NAME(cudaErrorMemoryAllocation)
    LMF_NAME(cudaErrorInitializationError) LMF_NAME(cudaErrorInvalidConfiguration) LMF_NAME(cudaErrorInvalidMemcpyDirection)
    LMF_NAME(cudaErrorInvalidDeviceFunction) LMF_NAME(cudaErrorNoDevice) LMF_NAME(cudaErrorInvalidDevice)
    LMF_NAME(cudaErrorNoKernelImageForDevice) LMF_NAME(cudaErrorInvalidResourceHandle) LMF_NAME(cudaErrorNotReady)
    LMF_NAME(cudaErrorIllegalAddress) LMF_NAME(cudaErrorLaunchOutOfResources) LMF_NAME(cudaErrorAssert)
    LMF_NAME(cudaErrorIllegalInstruction) LMF_NAME(cudaErrorMisalignedAddress) LMF_NAME(cudaErrorLaunchFailure)
    LMF_NAME(cudaErrorUnknown)
#undef LMF_NAME
  }
  return "cudaErrorUnknown";
}

static const char* baseErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

// The toolkit's string; in this model followed by what exactly went wrong, when the runtime knows.
const char* cudaGetErrorString(cudaError_t e) {
  static std::string text;
  const Runtime& r = R();
  text = baseErrorString(e);
  if (e != cudaSuccess && e == r.detailCode && !r.detail.empty()) text += " [cuda-interpret: " + r.detail + "]";
  return text.c_str();
}

// ---- device ----

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  LMF_STICKY_GUARD();
  if (device != 0) return fail(cudaErrorInvalidDevice);
  R().currentDevice = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = R().currentDevice;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cuda-interpret (CPU model of an sm_90 GPU)");
  p->totalGlobalMem = hostMemoryBytes();
  p->sharedMemPerBlock = kStaticSharedLimit;
  p->sharedMemPerBlockOptin = kSharedOptInMax;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  LMF_STICKY_GUARD();
  drainAll();
  LMF_STICKY_GUARD();
  return cudaSuccess;
}

cudaError_t cudaDeviceReset() {
  lmf_interp::reset();
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) { return cudaRuntimeGetVersion(v); }

cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes) {
  LMF_STICKY_GUARD();
  const size_t total = hostMemoryBytes();
  if (freeBytes) *freeBytes = total > R().used ? total - R().used : 0;
  if (totalBytes) *totalBytes = total;
  return cudaSuccess;
}

// ---- streams and events ----

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  LMF_STICKY_GUARD();
  if (!stream) return fail(cudaErrorInvalidValue);
  auto* s = new CUstream_st();
  s->flags = flags;
  R().streams.push_back(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s || s->legacy) return fail(cudaErrorInvalidResourceHandle);
  // Work already queued still completes.
  while (runOne(s)) {
  }
  auto& v = R().streams;
  v.erase(std::find(v.begin(), v.end(), s));
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (s->legacy) drainLegacy();
  else waitFor(s, [] { return false; });
  LMF_STICKY_GUARD();
  return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  return s->queue.empty() ? cudaSuccess : fail(cudaErrorNotReady);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  LMF_STICKY_GUARD();
  if (!event) return fail(cudaErrorInvalidValue);
  auto* e = new CUevent_st();
  e->flags = flags;
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  LMF_STICKY_GUARD();
  if (!e || e->destroyed) return fail(cudaErrorInvalidResourceHandle);
  // A recorded event is released once the device reaches it.
  if (e->pending > 0) e->destroyed = true;
  else delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!e || e->destroyed || !s) return fail(cudaErrorInvalidResourceHandle);
  e->pending++;
  e->stream = s;
  Op op;
  op.kind = Op::kEventDone;
  op.what = "cudaEventRecord";
  op.event = e;
  enqueue(s, std::move(op));
  return cudaSuccess;
}

// cudaErrorNotReady is returned AND becomes the last error, as the runtime does: a caller that polls must clear it.
cudaError_t cudaEventQuery(cudaEvent_t e) {
  LMF_STICKY_GUARD();
  if (!e || e->destroyed) return fail(cudaErrorInvalidResourceHandle);
  return e->pending > 0 ? fail(cudaErrorNotReady) : cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  LMF_STICKY_GUARD();
  if (!e || e->destroyed) return fail(cudaErrorInvalidResourceHandle);
  if (e->pending > 0) waitFor(e->stream, [e] { return e->pending == 0; });
  LMF_STICKY_GUARD();
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  LMF_STICKY_GUARD();
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue);
  if ((start->flags | end->flags) & cudaEventDisableTiming) return fail(cudaErrorInvalidResourceHandle);
  if (start->pending > 0 || end->pending > 0) return fail(cudaErrorNotReady);
  if (!start->everReached || !end->everReached) return fail(cudaErrorInvalidResourceHandle);  // never recorded
  // The model has no device clock: the interval is the host time the interpreter spent running the work between.
  *ms = std::chrono::duration<float, std::milli>(end->reached - start->reached).count();
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned int) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s || !e || e->destroyed) return fail(cudaErrorInvalidResourceHandle);
  if (e->pending == 0 || e->stream == s) return cudaSuccess;
  CUstream_st* other = e->stream;
  Op op;
  op.what = "cudaStreamWaitEvent";
  op.work = [other, e] {
    while (e->pending > 0 && runOne(other)) {
    }
  };
  enqueue(s, std::move(op));
  return cudaSuccess;
}

// ---- memory ----

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  LMF_STICKY_GUARD();
  return allocDevice(ptr, bytes, false);
}

cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream) {
  LMF_STICKY_GUARD();
  if (!resolve(stream)) return fail(cudaErrorInvalidResourceHandle);
  return allocDevice(ptr, bytes, true);
}

// cudaFree waits for the device first (the runtime synchronises there).
cudaError_t cudaFree(void* ptr) {
  LMF_STICKY_GUARD();
  if (!ptr) return cudaSuccess;
  auto it = R().device.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == R().device.end() || it->second.freeing)
    return fail(cudaErrorInvalidValue, "cudaFree: " + ptrText(ptr) + " is not a live device allocation");
  drainAll();
  it = R().device.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == R().device.end()) return fail(cudaErrorInvalidValue);
  releaseDevice(it->second);
  R().device.erase(it);
  return cudaSuccess;
}

// Stream-ordered: the memory stays valid for the work queued before; later work must not use it (it is unmapped
// when the device reaches this point, so a kernel that still does faults with an illegal address).
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (!ptr) return cudaSuccess;
  auto it = R().device.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == R().device.end() || it->second.freeing)
    return fail(cudaErrorInvalidValue, "cudaFreeAsync: " + ptrText(ptr) + " is not a live device allocation (freed twice?)");
  it->second.freeing = true;
  const uintptr_t key = it->first;
  Op op;
  op.what = "cudaFreeAsync";
  op.work = [key] {
    auto found = R().device.find(key);
    if (found == R().device.end()) return;
    releaseDevice(found->second);
    R().device.erase(found);
  };
  enqueue(s, std::move(op));
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags) {
  LMF_STICKY_GUARD();
  if (!ptr) return fail(cudaErrorInvalidValue);
  void* p = nullptr;
  if (posix_memalign(&p, kPage, bytes ? bytes : 1)) return fail(cudaErrorMemoryAllocation);
  R().host[reinterpret_cast<uintptr_t>(p)] = HostAlloc{bytes, (flags & cudaHostAllocMapped) != 0};
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void* ptr) {
  LMF_STICKY_GUARD();
  if (!ptr) return cudaSuccess;
  auto it = R().host.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == R().host.end()) return fail(cudaErrorInvalidValue, "cudaFreeHost: " + ptrText(ptr) + " is not pinned host memory");
  drainAll();
  R().host.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int) {
  LMF_STICKY_GUARD();
  const HostAlloc* h = findHost(host, 1);
  if (!device || !h || !h->mapped)
    return fail(cudaErrorInvalidValue, "cudaHostGetDevicePointer: the pointer is not host memory allocated with cudaHostAllocMapped");
  *device = host;
  return cudaSuccess;
}

namespace {

cudaMemcpyKind inferKind(void* dst, const void* src, cudaMemcpyKind kind) {
  if (kind != cudaMemcpyDefault) return kind;
  const bool d = deviceAccessible(dst, 1) && !findHost(dst, 1), s = deviceAccessible(src, 1) && !findHost(src, 1);
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice) : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}

cudaError_t memcpyImpl(const char* call, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                       CUstream_st* s, bool synchronous) {
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  kind = inferKind(dst, src, kind);
  Op op;
  op.what = call;
  switch (kind) {
    case cudaMemcpyHostToDevice: {
      if (!deviceAccessible(dst, bytes)) return badRange(call, "destination", dst, bytes);
      if (findHost(src, bytes)) {
        // Pinned: the device reads the host memory when it reaches the copy, so the caller must not reuse it before.
        op.work = [dst, src, bytes] { std::memcpy(dst, src, bytes); };
      } else {
        // Pageable: staged at once, the caller may reuse its memory when the call returns.
        auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
        op.work = [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); };
      }
      break;
    }
    case cudaMemcpyDeviceToHost: {
      if (!deviceAccessible(src, bytes)) return badRange(call, "source", src, bytes);
      op.work = [dst, src, bytes] { std::memcpy(dst, src, bytes); };
      // Into pageable memory the call returns only once the copy is done.
      if (!findHost(dst, bytes)) synchronous = true;
      break;
    }
    case cudaMemcpyDeviceToDevice: {
      if (!deviceAccessible(dst, bytes)) return badRange(call, "destination", dst, bytes);
      if (!deviceAccessible(src, bytes)) return badRange(call, "source", src, bytes);
      const auto d = reinterpret_cast<uintptr_t>(dst), sp = reinterpret_cast<uintptr_t>(src);
      if (d < sp + bytes && sp < d + bytes)
        return fail(cudaErrorInvalidValue, std::string(call) + ": overlapping device-to-device ranges (undefined on the GPU)");
      op.work = [dst, src, bytes] { std::memcpy(dst, src, bytes); };
      break;
    }
    case cudaMemcpyHostToHost: {
      auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
      op.work = [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); };
      break;
    }
    default:
      return fail(cudaErrorInvalidMemcpyDirection);
  }
  if (synchronous && s->legacy) {
    drainLegacy();
    LMF_STICKY_GUARD();
    op.work();
    return cudaSuccess;
  }
  auto done = std::make_shared<bool>(false);
  if (synchronous) {
    op.work = [work = std::move(op.work), done] {
      work();
      *done = true;
    };
  }
  enqueue(s, std::move(op));
  if (synchronous) waitFor(s, [done] { return *done; });  // everything queued before, then this copy
  LMF_STICKY_GUARD();
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  return memcpyImpl("cudaMemcpyAsync", dst, src, bytes, kind, s, false);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  LMF_STICKY_GUARD();
  return memcpyImpl("cudaMemcpy", dst, src, bytes, kind, &R().legacy, true);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  LMF_STICKY_GUARD();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!deviceAccessible(dst, bytes)) return badRange("cudaMemsetAsync", "destination", dst, bytes);
  Op op;
  op.what = "cudaMemsetAsync";
  op.work = [dst, value, bytes] { std::memset(dst, value, bytes); };
  enqueue(s, std::move(op));
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  LMF_STICKY_GUARD();
  if (bytes == 0) return cudaSuccess;
  if (!deviceAccessible(dst, bytes)) return badRange("cudaMemset", "destination", dst, bytes);
  drainLegacy();
  LMF_STICKY_GUARD();
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  LMF_STICKY_GUARD();
  if (!pool) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *pool = &R().pool;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  LMF_STICKY_GUARD();
  if (!pool || !value) return fail(cudaErrorInvalidValue);
  if (attr == cudaMemPoolAttrReleaseThreshold) pool->releaseThreshold = *static_cast<uint64_t*>(value);
  else if (attr == cudaMemPoolAttrReservedMemHigh) R().reservedHigh = 0;  // only resetting to 0 is allowed
  else if (attr == cudaMemPoolAttrUsedMemHigh) R().usedHigh = 0;
  return cudaSuccess;
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  LMF_STICKY_GUARD();
  if (!pool || !value) return fail(cudaErrorInvalidValue);
  auto* out = static_cast<uint64_t*>(value);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: *out = pool->releaseThreshold; break;
    case cudaMemPoolAttrReservedMemCurrent: *out = R().reserved; break;
    case cudaMemPoolAttrReservedMemHigh: *out = R().reservedHigh; break;
    case cudaMemPoolAttrUsedMemCurrent: *out = R().used; break;
    case cudaMemPoolAttrUsedMemHigh: *out = R().usedHigh; break;
    default: *static_cast<int*>(value) = 1; break;
  }
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  LMF_STICKY_GUARD();
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > kSharedOptInMax) return fail(cudaErrorInvalidValue);
    R().smemOptIn[func] = value;
  }
  return cudaSuccess;
}

// ---- the interpreter's own entry points ----

namespace lmf_interp {

void launch(const char* what, const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            std::function<void()> body) {
  Runtime& r = R();
  if (r.sticky != cudaSuccess) {
    fail(r.sticky, r.detail);
    return;
  }
  CUstream_st* s = resolve(stream);
  if (!s) {
    fail(cudaErrorInvalidResourceHandle);
    return;
  }
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
      grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration,
         std::string(what) + ": grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
             std::to_string(grid.z) + ") x block (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," +
             std::to_string(block.z) + ") is outside the device's limits");
    return;
  }
  if (smem > kStaticSharedLimit) {
    auto it = r.smemOptIn.find(kernel);
    if (it == r.smemOptIn.end() || smem > static_cast<size_t>(it->second)) {
      fail(cudaErrorInvalidValue, std::string(what) + ": " + std::to_string(smem) +
                                      " bytes of dynamic shared memory need cudaFuncSetAttribute("
                                      "cudaFuncAttributeMaxDynamicSharedMemorySize) first (the default limit is 48 KiB)");
      return;
    }
  }
  Op op;
  op.kind = Op::kKernel;
  op.what = what;
  op.body = std::move(body);
  op.grid = grid;
  op.block = block;
  op.smem = smem;
  enqueue(s, std::move(op));
}

void checkAtomicAddress(const void* p, const char* what) {
  const HostAlloc* h = findHost(p, 1);
  if (h && h->mapped)
    fault((std::string(what) + " on host memory mapped into the device (cudaHostAllocMapped): a GPU atomic on mapped "
                               "host memory is not atomic across PCIe; keep the value in device memory")
              .c_str());
}

bool isDeviceRange(const void* p, size_t bytes) { return deviceAccessible(p, bytes); }

void enqueueHostTask(cudaStream_t stream, const char* what, std::function<void()> task) {
  CUstream_st* s = resolve(stream);
  if (!s) {
    fail(cudaErrorInvalidResourceHandle);
    return;
  }
  Op op;
  op.what = what;
  op.work = std::move(task);
  op.guarded = true;
  enqueue(s, std::move(op));
}

cudaError_t setLastError(cudaError_t e) { return fail(e); }

void hostTaskFault(const char* message, cudaError_t code) { makeSticky(code, message); }

cudaError_t stickyError() { return R().sticky; }

// Only for the self-checks (selftest.cc), which provoke faults on purpose after draining the engine's work.
void clearErrorsAfterSelfTest() {
  Runtime& r = R();
  r.sticky = r.last = r.detailCode = cudaSuccess;
  r.detail.clear();
}

Stats stats() {
  Stats s = R().stats;
  s.fiberSwitches = fiberSwitches();
  return s;
}

void resetStats() { R().stats = Stats{}; }

void setOption(const char* name, const char* value) {
  const std::string n(name ? name : ""), v(value ? value : "");
  if (n == "skip-sync") setSkipSync(v);
  if (n == "schedule") setSchedule(v == "lockstep" ? Schedule::kLockstep : v == "warps-reverse" ? Schedule::kWarpsReverse : Schedule::kWarps);
}

const char* lastFaultDetail() { return R().sticky != cudaSuccess ? R().detail.c_str() : ""; }

void reset() {
  Runtime& r = R();
  r.legacy.queue.clear();
  for (CUstream_st* s : r.streams) {
    s->queue.clear();
    delete s;
  }
  r.streams.clear();
  for (auto& [start, a] : r.device) releaseDevice(a);
  r.device.clear();
  for (auto& [start, h] : r.host) std::free(reinterpret_cast<void*>(start));
  r.host.clear();
  r.smemOptIn.clear();
  r.last = r.sticky = r.detailCode = cudaSuccess;
  r.detail.clear();
  r.reserved = r.reservedHigh = r.used = r.usedHigh = 0;
  r.stats = Stats{};
  setSkipSync("");
}

}  // namespace lmf_interp
