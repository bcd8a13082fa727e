// The CPU engine's shared declarations: the op structs and the Node-API plumbing common to both engines
// (../native/op_args.h: every op's arguments read and checked, errors thrown before any parallel work starts,
// never from inside an OpenMP region), and parallelism thresholds. Each kernel family's file defines its
// `op::<name>` functions; registerOps (../native/op_args.cc) registers them all.
#pragma once
#include "../native/op_args.h"

namespace lmf {

// Work (in elements) below which a kernel stays on the calling thread. Opening a parallel region costs a few
// microseconds on an idle machine but a whole scheduler slice (measured 12 ms) when the cores are shared with
// other processes, while a single core streams ~1M floats in well under a millisecond: so memory-bound ops
// need ~1M elements to go parallel, and exp/erf-heavy ones ~128K.
constexpr int64_t kStreamParallelMin = int64_t(1) << 20;
constexpr int64_t kComputeParallelMin = int64_t(1) << 17;

// The CPU engine's calls beyond the op table: `address` (memory.cc), for the MPI collectives.
void registerAddress(Napi::Env env, Napi::Object exports);

}  // namespace lmf
