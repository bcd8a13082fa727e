// Device-side helpers shared by the .cu files: launch geometry, the launch helper, warp/block reductions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace lmf {
namespace cuda {

constexpr int kWarp = 32;

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
// at once. Being the one launch site, it is where another way of running the kernels can take over.
template <typename... Params, typename... Args>
void launch(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            Args... args) {
  kernel<<<grid, block, smem, stream>>>(static_cast<Params>(args)...);
  checkLaunch(what);
}

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

}  // namespace cuda
}  // namespace lmf
