// The CPU engine's shared declarations: the Node-API plumbing common to both engines (../native/glue.h: registry,
// argument decoding, errors thrown before any parallel work starts, never from inside an OpenMP region),
// parallelism thresholds, and each kernel family's registration.
#pragma once
#include "../native/glue.h"

namespace lmf {

// Work (in elements) below which a kernel stays on the calling thread. Opening a parallel region costs a few
// microseconds on an idle machine but a whole scheduler slice (measured 12 ms) when the cores are shared with
// other processes, while a single core streams ~1M floats in well under a millisecond: so memory-bound ops
// need ~1M elements to go parallel, and exp/erf-heavy ones ~128K.
constexpr int64_t kStreamParallelMin = int64_t(1) << 20;
constexpr int64_t kComputeParallelMin = int64_t(1) << 17;

// Registration of one family's ops in addon.cc.

void registerMemory(Napi::Env env, Napi::Object exports);
void registerMatmul(Napi::Env env, Napi::Object exports);
void registerEmbedding(Napi::Env env, Napi::Object exports);
void registerNorm(Napi::Env env, Napi::Object exports);
void registerRope(Napi::Env env, Napi::Object exports);
void registerAttention(Napi::Env env, Napi::Object exports);
void registerActivation(Napi::Env env, Napi::Object exports);
void registerLoss(Napi::Env env, Napi::Object exports);
void registerOptim(Napi::Env env, Napi::Object exports);
void registerDecode(Napi::Env env, Napi::Object exports);

}  // namespace lmf
