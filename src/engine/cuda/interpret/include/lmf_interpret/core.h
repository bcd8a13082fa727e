// The interpreted CUDA engine's core: the types the CUDA runtime API and the device language share, and the
// interpreter's own entry points (kernel launch, block barrier, warp collectives, faults). The toolkit-named
// headers beside this folder (cuda_runtime.h, cuda_bf16.h, cublasLt.h, cub/...) are thin layers over it.
//
// Execution model (interpret/block.cc, interpret/runtime.cc):
//   - work is queued per stream and runs when the host waits for it (or when 1024 operations are queued), so
//     asynchronous-API mistakes (reusing a buffer before its copy ran, reading results without a sync, event
//     queries) behave as on a GPU;
//   - a kernel runs its blocks one after another, in order; the threads of a block are fibers on one OS thread,
//     switched only at __syncthreads and warp-collective operations (shuffles, votes, __syncwarp, the tensor-core
//     models of ptx.cuh), which are barriers of their warp; by default one warp runs as far as it can before the
//     next starts, so a barrier missing between warps changes the results;
//   - shared memory (dynamic, and static in non-template functions) is poisoned with NaN bytes at each block's
//     start; device allocations are poisoned too and end at an inaccessible page, so reading uninitialised or
//     out-of-bounds memory shows up as NaN or as an illegal-address fault;
//   - a fault (a barrier some threads cannot reach, a shuffle from a lane that is not participating, an illegal
//     address, __trap) stops the kernel and becomes the sticky error cudaErrorLaunchFailure/IllegalAddress, as on
//     a GPU: every later runtime call returns it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

// ---- types shared by the host API and the device language ----

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// The numeric values are the CUDA runtime's.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorAssert = 710,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace lmf_interp {

// ---- the running thread and block, as the device language sees them ----
struct ThreadCtx {
  uint3 idx;  // threadIdx
  unsigned int linear;  // x + y * blockDim.x + z * blockDim.x * blockDim.y
  unsigned int lane, warp;
};
struct BlockCtx {
  uint3 index;      // blockIdx
  dim3 dim, grid;   // blockDim, gridDim
  char* dynamicShared = nullptr;
  size_t dynamicSharedBytes = 0;
  uint64_t serial = 0;  // counts blocks run: per-thread state of the models (cp.async) starts afresh with each
};
extern ThreadCtx* g_thread __attribute__((visibility("hidden")));
extern BlockCtx g_block __attribute__((visibility("hidden")));

// ---- launching ----
// Queues `body` (one CUDA thread's work: the kernel called with its arguments) as a grid on `stream`. Launch
// configuration errors are set as the runtime's last error, as a <<<>>> launch does; `kernel` identifies the
// kernel for cudaFuncSetAttribute's shared-memory opt-in.
void launch(const char* what, const void* kernel, dim3 grid, dim3 block, size_t dynamicSharedBytes,
            cudaStream_t stream, std::function<void()> body);

// ---- inside a kernel ----
// __syncthreads: every thread of the block must arrive (a thread that exited while others wait is a fault).
void syncthreads(const char* file, int line);

// A warp-collective operation: every lane named in `mask` (this lane included) posts `in`; when the last one
// arrives, `combine` runs once with every lane's input and output slot (index = lane; lanes outside the mask hold
// null) and the lanes continue. Lanes that meet at different operations, or a lane of the mask that has exited,
// are faults. `what` names the operation in diagnostics (it must be the same pointer for the same operation).
using WarpCombine = void (*)(const void* const in[32], void* const out[32], unsigned int mask);
void warpCollective(unsigned int mask, const char* what, const char* file, int line, const void* in, void* out,
                    WarpCombine combine);

// Stops the kernel with a fault that becomes the sticky `code` (cudaErrorLaunchFailure unless given).
[[noreturn]] void fault(const char* message, cudaError_t code = cudaErrorLaunchFailure);

// Atomics: the fibers of a block never run at the same time, so a plain read-modify-write is atomic; this only
// refuses addresses where a GPU atomic is not atomic (host memory mapped into the device's address space).
void checkAtomicAddress(const void* p, const char* what);

template <class T>
T* dynamicShared() {
  return reinterpret_cast<T*>(g_block.dynamicShared);
}

// ---- the model's own controls and counters (tests, lmforge's `interpret` export) ----
struct Stats {
  uint64_t launches = 0;        // kernels executed
  uint64_t blocks = 0;          // thread blocks executed
  uint64_t fiberSwitches = 0;   // context switches between threads of a block
  uint64_t hostWaits = 0;       // host calls that waited for queued work
  uint64_t drains = 0;          // ... of which left the device with nothing queued (the stream stalled)
  uint64_t queuedOps = 0;       // operations queued on streams
  uint64_t maxQueueDepth = 0;
};
Stats stats();
void resetStats();
// Options: "skip-sync" = "file.cu:line" drops that __syncthreads (a mutation for tests; "" restores it);
// "schedule" = "warps" (default), "warps-reverse" or "lockstep": the order a block's threads run in between
// barriers (also from LMFORGE_CUDA_INTERPRET_SCHEDULE).
void setOption(const char* name, const char* value);
// The detail of the last fault (which kernel, block, thread and why), or "".
const char* lastFaultDetail();
// Clears every error, buffer, stream and event: the interpreted device as after process start.
void reset();

// Memory the runtime tracks (for the cuBLASLt and CUB models).
bool isDeviceRange(const void* p, size_t bytes);
// Queues host work on a stream (a library call the model runs on the CPU: GEMM, sort). `what` names it in faults.
void enqueueHostTask(cudaStream_t stream, const char* what, std::function<void()> task);
// Sets the runtime's last error (non-sticky) and returns it.
cudaError_t setLastError(cudaError_t e);
// A fault raised by a host task (library model), e.g. a misaligned vector load: becomes sticky.
void hostTaskFault(const char* message, cudaError_t code);
// The sticky error, if any (cudaSuccess otherwise).
cudaError_t stickyError();

}  // namespace lmf_interp
