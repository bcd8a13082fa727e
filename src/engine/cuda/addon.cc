// Node-API entry point of the CUDA engine: the engine state (device, stream, error flag, scratch, precision),
// describe/probe/synchronize, and registration (the ops of the table through the shared registerOps).
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "gemm.h"

namespace lmf {

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
  int* flagHost = nullptr;
  int* flagDevice = nullptr;
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
  const char* dev = std::getenv("LMFORGE_CUDA_DEVICE");
  g.device = dev && *dev ? std::atoi(dev) : 0;
  if (g.device < 0 || g.device >= count) {
    g.failure = "LMFORGE_CUDA_DEVICE=" + std::to_string(g.device) + " but only " + std::to_string(count) +
                " CUDA device(s) exist (numbered from 0)";
    return;
  }
  try {
    g.precision = precisionFromEnv();
    cudaCheck(cudaSetDevice(g.device), "cudaSetDevice");
    cudaCheck(cudaGetDeviceProperties(&g.prop, g.device), "cudaGetDeviceProperties");
    cudaCheck(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaCheck(cudaHostAlloc(reinterpret_cast<void**>(&g.flagHost), sizeof(int), cudaHostAllocMapped), "cudaHostAlloc");
    cudaCheck(cudaHostGetDevicePointer(reinterpret_cast<void**>(&g.flagDevice), g.flagHost, 0),
              "cudaHostGetDevicePointer");
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

void checkDeviceError(const char* op) {
  int code = *static_cast<volatile int*>(g.flagHost);
  if (code == cuda::kErrNone) return;
  *g.flagHost = 0;
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

void syncStream(const char* op) {
  cudaCheck(cudaStreamSynchronize(stream()), op);
  checkDeviceError(op);
}

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
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
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
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, g.device) == cudaSuccess) {
      uint64_t high = 0;
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &high);
      o.Set("poolReservedPeak", static_cast<double>(high));
    }
    size_t freeB = 0, total = 0;
    if (cudaMemGetInfo(&freeB, &total) == cudaSuccess) {
      o.Set("deviceFree", static_cast<double>(freeB));
      o.Set("deviceTotal", static_cast<double>(total));
    }
  }
  return o;
}

static void Synchronize(const Args& a) { syncStream(a.op()); }

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initEngine();
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("describe", Napi::Function::New(env, Describe, "describe"));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision, "setPrecision"));
  exports.Set("precision", Napi::Function::New(env, GetPrecision, "precision"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats, "memoryStats"));
  registerOp(env, exports, "synchronize", Synchronize);
  registerBufferOps(env, exports);
  registerOps(env, exports);
  return exports;
}

}  // namespace lmf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lmf::Init(env, exports); }

NODE_API_MODULE(lmforge_cuda, InitModule)
