// Node-API entry point of the CUDA engine: the engine state (device, stream, error flag, scratch, precision),
// describe/probe/synchronize, and registration (the ops of the table through the shared registerOps).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "gemm.h"
#if defined(LMF_CUDA_INTERPRET)
#include "interpret/selftest.h"
#endif

namespace lmf {

void tolerate(cudaError_t e) {
  if (e != cudaSuccess) cudaGetLastError();
}

void cudaCheck(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::string msg = std::string(what) + ": CUDA error: " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation)
    msg += " (the GPU is out of memory: reduce the micro-batch, the sequence length or the model size)";
  throw OpError(msg);
}

// ---- engine state ----
namespace {

struct Engine {
  bool ready = false;
  std::string failure;  // why the engine cannot run, when !ready
  int device = 0;
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  int* flagDevice = nullptr;  // the kernels' error flag, in device memory
  int* flagHost = nullptr;    // its pinned host copy, written by the copy queued at each synchronisation
  Precision precision = Precision::BF16;
  struct Area {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  Area areas[kScratchCount];
};

Engine g;

Precision precisionFromEnv() {
  const char* s = std::getenv("LMFORGE_CUDA_PRECISION");
  if (!s || !*s) return Precision::BF16;
  std::string v(s);
  if (v == "fp32" || v == "f32" || v == "float32") return Precision::FP32;
  if (v == "bf16" || v == "bfloat16") return Precision::BF16;
  throw OpError("LMFORGE_CUDA_PRECISION='" + v + "' is not a precision: use bf16 (default) or fp32");
}

// The device this process uses: LMFORGE_CUDA_DEVICE, else the local rank an MPI/Slurm launcher announces (one
// GPU per rank on a host, the same index NCCL is given), else 0. -1 when LMFORGE_CUDA_DEVICE names no device.
int pickDevice(int count, std::string& why) {
  const char* dev = std::getenv("LMFORGE_CUDA_DEVICE");
  if (dev && *dev) {
    const int d = std::atoi(dev);
    if (d < 0 || d >= count) {
      why = "LMFORGE_CUDA_DEVICE=" + std::string(dev) + " but only " + std::to_string(count) +
            " CUDA device(s) exist (numbered from 0)";
      return -1;
    }
    return d;
  }
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* v = std::getenv(var);
    if (v && *v) return std::atoi(v) % count;
  }
  return 0;
}

// Opens the device once; on failure records why, so the JavaScript side can report it or fall back.
void initEngine() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    g.failure = e != cudaSuccess ? std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")"
                                 : std::string("no CUDA device is present");
    cudaGetLastError();
    return;
  }
  g.device = pickDevice(count, g.failure);
  if (g.device < 0) return;
  try {
    g.precision = precisionFromEnv();
    cudaCheck(cudaSetDevice(g.device), "cudaSetDevice");
    cudaCheck(cudaGetDeviceProperties(&g.prop, g.device), "cudaGetDeviceProperties");
    cudaCheck(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaCheck(cudaMalloc(reinterpret_cast<void**>(&g.flagDevice), sizeof(int)), "cudaMalloc (error flag)");
    cudaCheck(cudaMemset(g.flagDevice, 0, sizeof(int)), "cudaMemset (error flag)");
    cudaCheck(cudaHostAlloc(reinterpret_cast<void**>(&g.flagHost), sizeof(int), cudaHostAllocDefault),
              "cudaHostAlloc (error flag)");
    *g.flagHost = 0;
    // Keep freed memory in the stream-ordered pool: activations are reallocated per shape without a sync.
    cudaMemPool_t pool;
    cudaCheck(cudaDeviceGetDefaultMemPool(&pool, g.device), "cudaDeviceGetDefaultMemPool");
    uint64_t threshold = UINT64_MAX;
    cudaCheck(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
    g.ready = true;
  } catch (const std::exception& ex) {
    g.failure = ex.what();
  }
}

void requireEngine() {
  if (!g.ready) throw OpError("the CUDA engine is not usable: " + g.failure);
}

}  // namespace

Precision precision() { return g.precision; }
void setPrecision(Precision p) { g.precision = p; }
cudaStream_t stream() {
  requireEngine();
  return g.stream;
}
int* deviceErrorFlag() { return g.flagDevice; }

namespace {

// Throws the message of a flag value a kernel raised.
void throwDeviceError(const char* op, int code) {
  if (code == cuda::kErrTokenId)
    throw OpError(std::string(op) +
                  ": an embedding id was outside the table's rows (a kernel reported it; the rows read as zeros): "
                  "the data was tokenized for a larger vocabulary than the model's vocab_size");
  if (code == cuda::kErrTarget)
    throw OpError(std::string(op) +
                  ": a cross-entropy target was outside the vocabulary (it was treated as ignored): use -100 to "
                  "ignore a position and check that the data matches the model's vocab_size");
  throw OpError(std::string(op) + ": a kernel reported error code " + std::to_string(code));
}

// After a wait that covered the flag's copy: reports a raised flag once, clearing it on the device.
void reportFlag(const char* op, int code) {
  if (code == cuda::kErrNone) return;
  cudaCheck(cudaMemsetAsync(g.flagDevice, 0, sizeof(int), g.stream), op);
  throwDeviceError(op, code);
}

}  // namespace

void syncStream(const char* op) {
  cudaStream_t s = stream();
  cudaCheck(cudaMemcpyAsync(g.flagHost, g.flagDevice, sizeof(int), cudaMemcpyDeviceToHost, s), op);
  cudaCheck(cudaStreamSynchronize(s), op);
  const int code = *g.flagHost;
  *g.flagHost = 0;
  reportFlag(op, code);
}

// ---- reads that do not stall the stream (readLater): the copy and an event are queued now, the host waits for
// that event only when it needs the values, while the work queued after it keeps the device busy ----
namespace {

struct PendingRead {
  void* host = nullptr;  // pinned: [flag (int, padded to 8 bytes)][the elements]
  size_t capacity = 0;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
  bool busy = false;
};
std::vector<PendingRead> g_reads;

Napi::Value StartRead(const Napi::CallbackInfo& info) {
  try {
    Args a(info, "readLater");
    a.expectCount(3);
    const DType dtype = a.dtypeOf(0, "buffer");
    const int64_t n = a.i64(2, "n");
    const void* src = a.raw(0, dtype, n, "buffer");
    const size_t bytes = size_t(n) * dtypeSize(dtype);
    size_t slot = 0;
    while (slot < g_reads.size() && g_reads[slot].busy) slot++;
    if (slot == g_reads.size()) g_reads.emplace_back();
    PendingRead& r = g_reads[slot];
    if (r.capacity < bytes + 8) {
      if (r.host) cudaCheck(cudaFreeHost(r.host), "readLater");
      r.capacity = bytes + 8 < 256 ? 256 : bytes + 8;
      cudaCheck(cudaHostAlloc(&r.host, r.capacity, cudaHostAllocDefault), "readLater (pinned staging)");
    }
    if (!r.done) cudaCheck(cudaEventCreateWithFlags(&r.done, cudaEventDisableTiming), "readLater");
    cudaStream_t s = stream();
    cudaCheck(cudaMemcpyAsync(r.host, g.flagDevice, sizeof(int), cudaMemcpyDeviceToHost, s), "readLater");
    if (bytes) cudaCheck(cudaMemcpyAsync(static_cast<char*>(r.host) + 8, src, bytes, cudaMemcpyDeviceToHost, s), "readLater");
    cudaCheck(cudaEventRecord(r.done, s), "readLater");
    r.bytes = bytes;
    r.busy = true;
    return Napi::Number::New(info.Env(), static_cast<double>(slot));
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

void FinishRead(const Args& a) {
  a.expectCount(2);
  const int64_t slot = a.i64(0, "ticket");
  if (slot >= static_cast<int64_t>(g_reads.size()) || !g_reads[slot].busy) a.fail("this read was already finished");
  PendingRead& r = g_reads[slot];
  r.busy = false;
  const TypedView into = a.host(1);
  if (size_t(into.length) * dtypeSize(into.dtype) != r.bytes)
    a.fail("the typed array holds " + std::to_string(into.length * dtypeSize(into.dtype)) + " bytes but " +
           std::to_string(r.bytes) + " were read");
  cudaCheck(cudaEventSynchronize(r.done), "readLater");
  std::memcpy(into.data, static_cast<char*>(r.host) + 8, r.bytes);
  const int code = *static_cast<int*>(r.host);
  reportFlag("readLater", code);
}

}  // namespace

void* scratch(ScratchSlot slot, size_t bytes) {
  Engine::Area& a = g.areas[slot];
  if (bytes <= a.bytes && a.ptr) return a.ptr;
  // Stream-ordered free/alloc: work already queued that reads the old area finishes first.
  if (a.ptr) cudaCheck(cudaFreeAsync(a.ptr, stream()), "scratch free");
  a.ptr = nullptr;
  a.bytes = 0;
  size_t want = bytes < 256 ? 256 : bytes;
  want = want + want / 8;  // headroom so slowly growing shapes do not reallocate every call
  cudaCheck(cudaMallocAsync(&a.ptr, want, stream()), "scratch alloc");
  a.bytes = want;
  return a.ptr;
}

double* scratchPartials(int64_t count) {
  return static_cast<double*>(scratch(kScratchPartials, size_t(count < 1 ? 1 : count) * sizeof(double)));
}

uint64_t scratchBytes() {
  uint64_t s = 0;
  for (const auto& a : g.areas) s += a.bytes;
  return s;
}

static Napi::Value Probe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), g.ready ? "" : g.failure);
}

static Napi::Value Describe(const Napi::CallbackInfo& info) {
  if (!g.ready) return Napi::String::New(info.Env(), "cuda: unavailable (" + g.failure + ")");
#if defined(LMF_CUDA_INTERPRET)
  return Napi::String::New(info.Env(), std::string("cuda-interpret: the CUDA kernels run on the CPU (a model of CUDA's "
                                                   "semantics; thread blocks as fibers), a reference GEMM for cuBLASLt, "
                                                   "precision ") +
                                           (g.precision == Precision::BF16 ? "bf16 (fp32 accumulate)" : "fp32"));
#endif
  int rt = 0;
  tolerate(cudaRuntimeGetVersion(&rt));
  char buf[512];
  std::snprintf(buf, sizeof buf, "cuda: %s (sm_%d%d, %.1f GiB), device %d, CUDA runtime %d.%d, %s, precision %s",
                g.prop.name, g.prop.major, g.prop.minor, g.prop.totalGlobalMem / 1073741824.0, g.device, rt / 1000,
                (rt % 1000) / 10, gemmLibrary(), g.precision == Precision::BF16 ? "bf16 (fp32 accumulate)" : "fp32");
  return Napi::String::New(info.Env(), buf);
}

static Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(info.Env(), "setPrecision: expected 'bf16' or 'fp32'").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  std::string v = info[0].As<Napi::String>().Utf8Value();
  if (v == "bf16") setPrecision(Precision::BF16);
  else if (v == "fp32") setPrecision(Precision::FP32);
  else Napi::RangeError::New(info.Env(), "setPrecision: '" + v + "' is not a precision: use bf16 or fp32")
      .ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

static Napi::Value GetPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), g.precision == Precision::BF16 ? "bf16" : "fp32");
}

static Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocated", static_cast<double>(registryBytes()));
  o.Set("peakAllocated", static_cast<double>(registryPeakBytes()));
  o.Set("scratch", static_cast<double>(scratchBytes()));
  if (g.ready) {
    // Best effort: a statistic that cannot be read is left out (and its failure cleared).
    cudaMemPool_t pool;
    cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, g.device);
    uint64_t high = 0;
    if (e == cudaSuccess) e = cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &high);
    if (e == cudaSuccess) o.Set("poolReservedPeak", static_cast<double>(high));
    tolerate(e);
    size_t freeB = 0, total = 0;
    e = cudaMemGetInfo(&freeB, &total);
    if (e == cudaSuccess) {
      o.Set("deviceFree", static_cast<double>(freeB));
      o.Set("deviceTotal", static_cast<double>(total));
    }
    tolerate(e);
  }
  return o;
}

static void Synchronize(const Args& a) { syncStream(a.op()); }

// The engine's stream and device, for NCCL (src/parallel/nccl.ts): collectives are queued on the same stream.
static Napi::Value StreamAddress(const Napi::CallbackInfo& info) {
  if (!g.ready) return Napi::BigInt::New(info.Env(), uint64_t(0));
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(g.stream)));
}
static Napi::Value DeviceIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), g.device); }

#if defined(LMF_CUDA_INTERPRET)
// The interpreter's counters and options (tests): stats() -> { launches, blocks, ... }; option(name, value).
static Napi::Value InterpretStats(const Napi::CallbackInfo& info) {
  const lmf_interp::Stats s = lmf_interp::stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("launches", static_cast<double>(s.launches));
  o.Set("blocks", static_cast<double>(s.blocks));
  o.Set("fiberSwitches", static_cast<double>(s.fiberSwitches));
  o.Set("hostWaits", static_cast<double>(s.hostWaits));
  o.Set("drains", static_cast<double>(s.drains));
  o.Set("queuedOps", static_cast<double>(s.queuedOps));
  o.Set("maxQueueDepth", static_cast<double>(s.maxQueueDepth));
  o.Set("fault", lmf_interp::lastFaultDetail());
  return o;
}
static Napi::Value InterpretSelfTests(const Napi::CallbackInfo& info) {
  const std::vector<std::string> names = lmf_interp::selfTestNames();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}
static Napi::Value InterpretSelfTest(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsString()) {
    Napi::TypeError::New(info.Env(), "interpretSelfTest(name): a string").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::String::New(info.Env(), lmf_interp::runSelfTest(info[0].As<Napi::String>().Utf8Value()));
}
static Napi::Value InterpretOption(const Napi::CallbackInfo& info) {
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(info.Env(), "interpretOption(name, value): two strings").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  lmf_interp::setOption(info[0].As<Napi::String>().Utf8Value().c_str(), info[1].As<Napi::String>().Utf8Value().c_str());
  return info.Env().Undefined();
}
#endif

void registerProfile(Napi::Env env, Napi::Object exports);  // profile.cc

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initEngine();
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("describe", Napi::Function::New(env, Describe, "describe"));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision, "setPrecision"));
  exports.Set("precision", Napi::Function::New(env, GetPrecision, "precision"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats, "memoryStats"));
  registerOp(env, exports, "synchronize", Synchronize);
  exports.Set("startRead", Napi::Function::New(env, StartRead, "startRead"));
  registerOp(env, exports, "finishRead", FinishRead);
  exports.Set("stream", Napi::Function::New(env, StreamAddress, "stream"));
  exports.Set("device", Napi::Function::New(env, DeviceIndex, "device"));
#if defined(LMF_CUDA_INTERPRET)
  exports.Set("interpretStats", Napi::Function::New(env, InterpretStats, "interpretStats"));
  exports.Set("interpretOption", Napi::Function::New(env, InterpretOption, "interpretOption"));
  exports.Set("interpretSelfTests", Napi::Function::New(env, InterpretSelfTests, "interpretSelfTests"));
  exports.Set("interpretSelfTest", Napi::Function::New(env, InterpretSelfTest, "interpretSelfTest"));
#endif
  registerProfile(env, exports);
  registerBufferOps(env, exports);
  registerAddress(env, exports);
  registerOps(env, exports);
  return exports;
}

}  // namespace lmf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lmf::Init(env, exports); }

NODE_API_MODULE(lmforge_cuda, InitModule)
