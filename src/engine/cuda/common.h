// Shared plumbing of the CUDA engine's Node-API glue (built by g++): the op structs both engines share
// (../native/op_args.h: every op's arguments read and checked before anything is queued), the one stream every
// op is queued on, reusable scratch areas, the device error flag and the precision mode. Each kernel family's
// .cc file defines its `op::<name>` functions (launches only), as the CPU engine's files do.
#pragma once
#include <cuda_runtime.h>

#include "../native/op_args.h"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.cuh"

namespace lmf {

// Throws an OpError naming the call when a CUDA runtime call fails.
void cudaCheck(cudaError_t e, const char* what);

// ---- the engine state ----
enum class Precision : int { BF16 = 0, FP32 = 1 };
Precision precision();
void setPrecision(Precision p);
cudaStream_t stream();
// The device-side error flag (mapped host memory): kernels set it, `checkDeviceError` reads it after a sync.
int* deviceErrorFlag();
// Throws (and clears the flag) if a kernel reported bad input since the last check. Call after a sync.
void checkDeviceError(const char* op);
// Waits for the stream, then reports kernel failures and flagged bad inputs.
void syncStream(const char* op);

// Reusable device scratch areas, one per purpose, grown on demand (stream-ordered, so no host sync).
enum ScratchSlot : int {
  kScratchA = 0,       // bf16 copy of a GEMM's A operand
  kScratchB,           // bf16 copy of a GEMM's B operand
  kScratchGemm,        // cuBLASLt workspace
  kScratchLogits,      // the head's logits chunk
  kScratchHeadW,       // bf16 copy of the head weight
  kScratchPartials,    // reduction partials (double)
  kScratchSort,        // embedding backward sort
  kScratchAttn,        // attention backward row dots
  kScratchRowLoss,     // per-row losses of the head (double)
  kScratchCount
};
void* scratch(ScratchSlot slot, size_t bytes);
uint64_t scratchBytes();
// The reduction-partials area holding at least `count` doubles.
double* scratchPartials(int64_t count);

// The attention kernel's limits, beyond the arguments' validity (attention.cc).
void requireAttentionKernel(const char* op, const AttentionShape& s);

}  // namespace lmf
