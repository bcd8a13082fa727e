// Device-side helpers shared by the .cu files: launch geometry, the launch helper, warp/block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace lmf {
namespace cuda {

constexpr int kWarp = 32;

// Activations are f32 or bf16 (the op table's ACT arguments): kernels are templated on the element type, compute
// in fp32, and convert on load (ldf) and store (stf, round to nearest even).
__device__ __forceinline__ float ldf(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ldf(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void stf(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void stf(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Calls f with a value of the element type an activation flag names (bf16 or float): f(T{}) picks the template.
template <typename F>
void withAct(bool bf16, F&& f) {
  if (bf16) f(__nv_bfloat16{});
  else f(float{});
}
template <typename T>
T* actPtr(void* p) {
  return static_cast<T*>(p);
}
template <typename T>
const T* actPtr(const void* p) {
  return static_cast<const T*>(p);
}

// Grid size for a grid-stride loop over n elements with `threads` per block (capped: the loop covers the rest).
inline unsigned gridFor(int64_t n, int threads, int64_t cap = 65535LL * 8) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g > cap ? cap : g);
}

// A launch error (bad configuration, no kernel image for this GPU) is reported at once, without a sync.
inline void checkLaunch(const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(kernel) + ": kernel launch failed: " + cudaGetErrorString(e) +
                             (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction
                                  ? " (the addon was built for other GPU architectures: rebuild with "
                                    "LMFORGE_CUDA_ARCH set to this GPU's compute capability, e.g. 90)"
                                  : ""));
}

// Every kernel launch of the engine goes through here: enqueues `kernel` on `stream`, then reports a launch error
// at once. Being the one launch site, it is where the interpreted engine (LMF_CUDA_INTERPRET: the same sources
// built with g++, see interpret/include/lmf_interpret/core.h) takes over: the kernel, called with the arguments,
// becomes one CUDA thread's work.
template <typename... Params, typename... Args>
void launch(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            Args... args) {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::launch(what, reinterpret_cast<const void*>(kernel), grid, block, smem, stream,
                       [=]() { kernel(static_cast<Params>(args)...); });
#else
  kernel<<<grid, block, smem, stream>>>(static_cast<Params>(args)...);
#endif
  checkLaunch(what);
}

// The block's dynamic shared memory as a T* named `name` (`extern __shared__ T name[]`, which g++ cannot express).
#if defined(LMF_CUDA_INTERPRET)
#define LMF_DYNAMIC_SHARED(T, name) T* name = ::lmf_interp::dynamicShared<T>()
#else
#define LMF_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

template <typename T>
__device__ __forceinline__ T warpSum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` holds 32 elements. Deterministic: fixed tree order.
template <typename T>
__device__ T blockSum(T v, T* shared) {
  const int lane = threadIdx.x % kWarp, wid = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  v = warpSum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  T r = lane < nw ? shared[lane] : T(0);
  return warpSum(r);
}

__device__ __forceinline__ float blockMax(float v, float* shared) {
  const int lane = threadIdx.x % kWarp, wid = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  float r = lane < nw ? shared[lane] : -INFINITY;
  return warpMax(r);
}

// Kernels above 48 KB of dynamic shared memory must opt in once per kernel.
template <typename Kernel>
void allowSmem(Kernel kernel, size_t bytes, const char* what) {
  if (bytes <= 48 * 1024) return;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": cannot reserve " + std::to_string(bytes) +
                             " bytes of shared memory: " + cudaGetErrorString(e));
}

}  // namespace cuda
}  // namespace lmf
