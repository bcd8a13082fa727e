// NCCL collectives for CUDA buffers (src/parallel/nccl.ts). Compiled in only when the build finds nccl.h and
// cuda_runtime.h (LMFORGE_HAVE_NCCL); otherwise `available()` is false and no NCCL ops are exported.
#pragma once
#include <napi.h>

namespace lmf_nccl {
bool available();
void registerOps(Napi::Env env, Napi::Object exports);
// Called by MPI abort/finalize so a communicator never outlives MPI.
void abortAll();
void destroyAll();
}  // namespace lmf_nccl
