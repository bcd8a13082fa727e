// Node-API entry point of the CPU engine: thread control, describe, and module registration.
#include "blas.h"
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>

#include "common.h"

namespace lmf {

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
  registerBufferOps(env, exports);
  registerOps(env, exports);
  registerAddress(env, exports);
  return exports;
}

}  // namespace lmf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lmf::Init(env, exports); }

NODE_API_MODULE(lmforge_cpu, InitModule)
