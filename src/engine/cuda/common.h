// Shared plumbing of the CUDA engine's Node-API glue (built by g++): the op structs both engines share
// (../native/op_args.h: every op's arguments read and checked before anything is queued), the one stream every
// op is queued on, reusable scratch areas, the device error flag and the precision mode. Each kernel family's
// .cc file defines its `op::<name>` functions (launches only), as the CPU engine's files do.
#pragma once
#include <cuda_runtime.h>

#include "../native/op_args.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "kernels.cuh"

namespace lmf {

// Throws an OpError naming the call when a CUDA runtime call fails.
void cudaCheck(cudaError_t e, const char* what);
// For a call whose failure is not an error here (a query answering "not yet", a best-effort statistic): the
// runtime also records the failure as its last error, which the next launch check would report as that
// launch's failure, so it is cleared. (A sticky error cannot be cleared and is reported at the next check.)
void tolerate(cudaError_t e);

// ---- the engine state ----
enum class Precision : int { BF16 = 0, FP32 = 1 };
Precision precision();
void setPrecision(Precision p);
cudaStream_t stream();
// The device-side error flag (an int in device memory): kernels set it when they meet bad input (token ids,
// targets); it travels to the host with the stream's synchronisation, so reading it costs no extra wait.
int* deviceErrorFlag();
// Waits for the stream (the engine's one synchronisation point), then reports kernel failures and flagged bad
// inputs (clearing the flag).
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
  kScratchAdamwRanges, // adamwRanges' range table
  kScratchCast,        // f32 staging of bf16 transfers and overlapping casts
  kScratchAF32,        // f32 copies of bf16 GEMM operands / output when the product runs in fp32
  kScratchBF32,
  kScratchCF32,
  kScratchCount
};
void* scratch(ScratchSlot slot, size_t bytes);
uint64_t scratchBytes();
// The reduction-partials area holding at least `count` doubles.
double* scratchPartials(int64_t count);

// The device view of an activation argument, and the check that an op's activations share one dtype.
inline cuda::DevAct dev(const Act<float>& a) { return {a.ptr, a.bf16()}; }
inline cuda::DevActIn dev(const Act<const float>& a) { return {a.ptr, a.bf16()}; }
void sameActDType(const char* op, std::initializer_list<DType> dtypes);
// Copies `bytes` of host memory to dst on the stream through pinned staging (memory.cc): queued, no host wait.
void stagedUpload(void* dst, const void* src, size_t bytes);

// The attention kernel's limits, beyond the arguments' validity (attention.cc).
void requireAttentionKernel(const char* op, const AttentionShape& s);

}  // namespace lmf
