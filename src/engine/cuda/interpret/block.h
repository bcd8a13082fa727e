// Between the interpreted runtime (runtime.cc) and its block scheduler (block.cc).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "lmf_interpret/core.h"

namespace lmf_interp {

// Runs every block of a grid in order. On a fault returns false with the kernel/block/thread and the reason.
bool runGrid(const char* what, const std::function<void()>& body, dim3 grid, dim3 block, size_t dynamicBytes,
             std::string& faultOut, cudaError_t& codeOut, uint64_t& blocksRun);
// Runs host work of a library model (GEMM, sort) with illegal accesses turned into a fault instead of a crash.
bool runGuarded(const std::function<void()>& task, std::string& faultOut);
uint64_t fiberSwitches();
// "file.cu:line" makes that __syncthreads do nothing; "" restores every barrier.
void setSkipSync(const std::string& site);

// The order threads of a block run in between barriers (all deterministic):
//   kWarps (default): each warp in turn runs as far as it can; kWarpsReverse: the same from the last warp;
//   kLockstep: every thread advances one barrier or warp operation at a time, in thread order.
enum class Schedule { kWarps, kWarpsReverse, kLockstep };
void setSchedule(Schedule s);

}  // namespace lmf_interp
