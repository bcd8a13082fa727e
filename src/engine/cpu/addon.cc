// Node-API entry point: argument decoding, error conversion, thread control and module registration.
#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>

#include "common.h"

namespace lmf {

const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
  }
  return "?";
}

size_t dtypeSize(DType t) { return t == DType::F64 ? 8 : 4; }

void Args::fail(const std::string& msg) const { throw OpError(std::string(op_) + ": " + msg); }

double Args::num(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

int64_t Args::i64(size_t i, const char* what) const {
  double v = num(i);
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0)
    fail(std::string(what) + " must be a non-negative integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

bool Args::flag(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsBoolean()) fail("argument " + std::to_string(i) + " must be a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

bool Args::isNull(size_t i) const { return num(i) < 0; }

int64_t Args::avail(size_t i, const char* what) const {
  double h = num(i);
  if (h < 0) fail(std::string(what) + " is required but was null");
  const Buf& b = registryGet(static_cast<int64_t>(h), op_, what);
  int64_t off = i64(i + 1, "offset");
  return off > b.length ? 0 : b.length - off;
}

void* Args::raw(size_t i, DType want, int64_t count, const char* what) const {
  double h = num(i);
  if (h < 0) fail(std::string(what) + " is required but was null");
  const Buf& b = registryGet(static_cast<int64_t>(h), op_, what);
  if (b.dtype != want)
    fail(std::string(what) + " must be a " + dtypeName(want) + " buffer but is " + dtypeName(b.dtype));
  int64_t off = i64(i + 1, "offset");
  if (count < 0) fail(std::string(what) + ": negative element count (check the shape arguments)");
  if (off + count > b.length)
    fail(std::string(what) + " needs elements [" + std::to_string(off) + ", " + std::to_string(off + count) +
         ") but its buffer has " + std::to_string(b.length) +
         " elements: check the shape/stride arguments and the offset, or allocate a larger buffer");
  return static_cast<char*>(b.ptr) + off * dtypeSize(b.dtype);
}

void registerOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [fn, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            fn(Args(info, name));
                          } catch (const std::exception& e) {
                            Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
                          }
                          return info.Env().Undefined();
                        },
                        name));
}

static int defaultThreads() {
  for (const char* var : {"LMFORGE_THREADS", "OMP_NUM_THREADS"}) {
    const char* s = std::getenv(var);
    if (s && *s) {
      int n = std::atoi(s);
      if (n > 0) return n;
    }
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

static int g_threads = 1;

static void applyThreads(int n) {
  g_threads = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "setThreads: expected a thread count").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1) || n != std::floor(n) || n > 4096) {
    Napi::RangeError::New(info.Env(), "setThreads: the thread count must be an integer >= 1, got " + std::to_string(n))
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  applyThreads(static_cast<int>(n));
  return info.Env().Undefined();
}

static Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), g_threads); }

static Napi::Value Describe(const Napi::CallbackInfo& info) {
  // openblas_get_config() reads "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."; keep the name and version.
  std::string cfg = openblas_get_config();
  size_t cut = cfg.find(' ', cfg.find(' ') + 1);
  std::string s = "cpu: " + std::to_string(g_threads) + " threads (OpenMP) of " +
                  std::to_string(std::thread::hardware_concurrency()) + " cores, " + cfg.substr(0, cut) + " (" +
                  openblas_get_corename() + " kernels)";
  return Napi::String::New(info.Env(), s);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  applyThreads(defaultThreads());
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("describe", Napi::Function::New(env, Describe, "describe"));
  registerMemory(env, exports);
  registerMatmul(env, exports);
  registerEmbedding(env, exports);
  registerNorm(env, exports);
  registerRope(env, exports);
  registerAttention(env, exports);
  registerActivation(env, exports);
  registerLoss(env, exports);
  registerOptim(env, exports);
  registerDecode(env, exports);
  return exports;
}

}  // namespace lmf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lmf::Init(env, exports); }

NODE_API_MODULE(lmforge_cpu, InitModule)
