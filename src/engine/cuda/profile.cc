// Per-op device time (`lmforge bench --profile`): while profiling, NativeBackend records an event on the engine's
// stream before each op (`profileMark`). The stream runs the ops one after another, so the time between two
// consecutive events is the first op's work on the device, plus any gap in which the device waited for the host
// to queue the next op (a host-bound step shows as time spread over cheap ops). `profileCollect` records a last
// event, waits for it and returns the intervals in milliseconds. Interpret mode has no device clock: there the
// intervals are the interpreter's own time (see interpret/runtime.cc).
#include <napi.h>

#include <vector>

#include "common.h"

namespace lmf {
namespace {

std::vector<cudaEvent_t> g_events;  // created on first use, kept for the next profile
size_t g_marked = 0;                // events recorded since the last collect

void record() {
  if (g_marked == g_events.size()) {
    cudaEvent_t e = nullptr;
    cudaCheck(cudaEventCreate(&e), "profileMark");
    g_events.push_back(e);
  }
  cudaCheck(cudaEventRecord(g_events[g_marked], stream()), "profileMark");
  g_marked++;
}

void Mark(const Args& a) {
  a.expectCount(0);
  record();
}

Napi::Value Collect(const Napi::CallbackInfo& info) {
  try {
    Args(info, "profileCollect").expectCount(0);
    const size_t marks = g_marked;
    if (marks == 0) return Napi::Float64Array::New(info.Env(), 0);
    record();
    g_marked = 0;
    cudaCheck(cudaEventSynchronize(g_events[marks]), "profileCollect");
    Napi::Float64Array out = Napi::Float64Array::New(info.Env(), marks);
    for (size_t i = 0; i < marks; i++) {
      float ms = 0.f;
      cudaCheck(cudaEventElapsedTime(&ms, g_events[i], g_events[i + 1]), "profileCollect");
      out[i] = ms;
    }
    return out;
  } catch (const std::exception& e) {
    g_marked = 0;
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

}  // namespace

void registerProfile(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "profileMark", Mark);
  exports.Set("profileCollect", Napi::Function::New(env, Collect, "profileCollect"));
}

}  // namespace lmf
