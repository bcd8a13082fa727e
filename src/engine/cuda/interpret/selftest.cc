// Self-checks of the CUDA model the interpreted engine runs on (test/engine-cuda/interpret.test.ts calls each by
// name through the addon's interpretSelfTest): small kernels whose outcome CUDA's semantics fix, including the
// ones that must fault. Each returns "" when the model behaved as a GPU does, else what went wrong. The checks
// run on their own stream after the engine's work is drained, and the errors they provoke are cleared afterwards
// (on a GPU a sticky error would end the process; here it would end the test run).
#include "selftest.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../device.cuh"
#include "../ptx.cuh"

namespace lmf_interp {
void clearErrorsAfterSelfTest();
}

// The kernels live in lmf::cuda, as the engine's do (block.cc finds template kernels' static shared memory there).
namespace lmf {
namespace cuda {
namespace selftest {

// ---- kernels ----

__global__ void shuffleKernel(int* out) {
  const int lane = threadIdx.x % 32;
  int o = 0;
  out[o++ * 64 + threadIdx.x] = __shfl_sync(0xffffffffu, lane * 10, 31 - lane);
  out[o++ * 64 + threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane * 10, 5);
  out[o++ * 64 + threadIdx.x] = __shfl_up_sync(0xffffffffu, lane * 10, 3);
  out[o++ * 64 + threadIdx.x] = __shfl_down_sync(0xffffffffu, lane * 10, 3, 16);
  out[o++ * 64 + threadIdx.x] = static_cast<int>(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[o++ * 64 + threadIdx.x] = __any_sync(0xffffffffu, lane == 7) + 2 * __all_sync(0xffffffffu, lane < 40);
  if (lane < 16) out[o * 64 + threadIdx.x] = __shfl_sync(0x0000ffffu, lane, (lane + 1) % 16);
  __syncwarp();
}

// Each thread writes its slot of shared memory and reads its neighbour's, with or without the barrier between.
template <bool Barrier>
__global__ void neighbourKernel(float* out) {
  __shared__ float slots[128];
  slots[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (Barrier) __syncthreads();
  out[threadIdx.x] = slots[(threadIdx.x + 1) % blockDim.x];
}

// A non-template kernel: its static shared memory is in the poisoned section.
__global__ void uninitialisedSharedKernel(float* out) {
  __shared__ float never[64];
  out[threadIdx.x] = never[threadIdx.x];
}

__global__ void divergentBarrierKernel(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1.f;
}

__global__ void earlyExitBarrierKernel(float* out) {
  if (threadIdx.x >= 60) return;
  __syncthreads();
  out[threadIdx.x] = 1.f;
}

// Half the warp shuffles with a full mask, the other half never does: the GPU hangs, the model says so.
__global__ void divergentShuffleKernel(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);
  else out[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
}

__global__ void inactiveLaneKernel(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1, 20);
}

// Reads 32 bytes past the end of `in` (n floats, a multiple of 64).
__global__ void readPastEndKernel(float* out, const float* in, int n) { out[0] = in[n + 8]; }

__global__ void mappedAtomicKernel(int* flag) { atomicCAS(flag, 0, 1); }

__global__ void spinKernel(float* out) { out[threadIdx.x] += 1.f; }

__global__ void dynamicSharedKernel(float* out, int n) {
  LMF_DYNAMIC_SHARED(float, buf);
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = 1.f;
  __syncthreads();
  out[threadIdx.x] = buf[n - 1 - threadIdx.x];
}

__global__ void mmaKernel(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
  const int l = threadIdx.x;
  uint32_t af[4] = {a[l * 4], a[l * 4 + 1], a[l * 4 + 2], a[l * 4 + 3]};
  uint32_t bf[2] = {b[l * 2], b[l * 2 + 1]};
  float cf[4] = {c[l * 4], c[l * 4 + 1], c[l * 4 + 2], c[l * 4 + 3]};
  float df[4];
  lmf::cuda::ptx::mmaBf16m16n8k16(df, af, bf, cf);
  for (int h = 0; h < 4; h++) d[l * 4 + h] = df[h];
}

template <bool Trans>
__global__ void ldmatrixKernel(uint32_t* out, const uint16_t* tiles) {
  __shared__ __align__(16) uint16_t smem[4 * 64];
  for (int i = threadIdx.x; i < 256; i += 32) smem[i] = tiles[i];
  __syncwarp();
  uint32_t r[4];
  lmf::cuda::ptx::ldmatrixX4<Trans>(r, smem + threadIdx.x * 8);
  for (int i = 0; i < 4; i++) out[threadIdx.x * 4 + i] = r[i];
}

__global__ void cpAsyncKernel(float* early, float* late, const float* src) {
  __shared__ __align__(16) float buf[32 * 4];
  lmf::cuda::ptx::cpAsync16(buf + threadIdx.x * 4, src + threadIdx.x * 4);
  lmf::cuda::ptx::cpAsyncCommit();
  early[threadIdx.x] = buf[threadIdx.x * 4];  // before the wait: not there yet
  lmf::cuda::ptx::cpAsyncWait<0>();
  late[threadIdx.x] = buf[threadIdx.x * 4];
}

// Double buffering (flash_attention.cu): two groups in flight; wait_group 1 completes the older one only.
__global__ void cpAsyncGroupsKernel(float* seen, const float* src) {
  __shared__ __align__(16) float buf[2][32 * 4];
  for (int g = 0; g < 2; g++) {
    lmf::cuda::ptx::cpAsync16(buf[g] + threadIdx.x * 4, src + g * 128 + threadIdx.x * 4);
    lmf::cuda::ptx::cpAsyncCommit();
  }
  lmf::cuda::ptx::cpAsyncWait<1>();
  seen[threadIdx.x] = buf[0][threadIdx.x * 4];       // the older group: complete
  seen[32 + threadIdx.x] = buf[1][threadIdx.x * 4];  // the newest group: may still be in flight (the model holds it)
  lmf::cuda::ptx::cpAsyncWait<0>();
  seen[64 + threadIdx.x] = buf[1][threadIdx.x * 4];
}

}  // namespace selftest
}  // namespace cuda
}  // namespace lmf

namespace {

using lmf::cuda::launch;
using namespace lmf::cuda::selftest;

// ---- helpers ----

struct Check {
  std::string why;
  void expect(bool ok, const std::string& msg) {
    if (!ok && why.empty()) why = msg;
  }
};

template <class T>
T* deviceAlloc(size_t n) {
  void* p = nullptr;
  cudaMalloc(&p, n * sizeof(T));
  return static_cast<T*>(p);
}

template <class T>
std::vector<T> toHost(const T* d, size_t n, cudaStream_t s) {
  std::vector<T> h(n);
  cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, s);
  cudaStreamSynchronize(s);
  return h;
}

uint32_t packBf16(float lo, float hi) {
  return uint32_t(__float2bfloat16_rn(lo).__x) | (uint32_t(__float2bfloat16_rn(hi).__x) << 16);
}

// ---- checks ----

std::string shuffles(cudaStream_t s) {
  Check c;
  int* out = deviceAlloc<int>(7 * 64);
  launch("selftest shuffles", shuffleKernel, 1, 64, 0, s, out);
  auto h = toHost(out, 7 * 64, s);
  for (int t = 0; t < 64; t++) {
    const int lane = t % 32;
    c.expect(h[0 * 64 + t] == (31 - lane) * 10, "__shfl_sync reads the wrong lane");
    c.expect(h[1 * 64 + t] == (lane ^ 5) * 10, "__shfl_xor_sync reads the wrong lane");
    c.expect(h[2 * 64 + t] == (lane < 3 ? lane : lane - 3) * 10, "__shfl_up_sync: wrong lane or edge");
    c.expect(h[3 * 64 + t] == ((lane % 16) + 3 < 16 ? lane + 3 : lane) * 10, "__shfl_down_sync width 16: wrong lane or edge");
    c.expect(static_cast<unsigned>(h[4 * 64 + t]) == 0x49249249u, "__ballot_sync: wrong bits");
    c.expect(h[5 * 64 + t] == 3, "__any_sync / __all_sync: wrong vote");
    if (lane < 16) c.expect(h[6 * 64 + t] == (lane + 1) % 16, "__shfl_sync with a half-warp mask reads the wrong lane");
  }
  cudaFree(out);
  return c.why;
}

std::string barrierOrders(cudaStream_t s) {
  Check c;
  float* out = deviceAlloc<float>(128);
  launch("selftest neighbour", neighbourKernel<true>, 1, 128, 0, s, out);
  auto with = toHost(out, 128, s);
  for (int t = 0; t < 128; t++) c.expect(with[t] == float((t + 1) % 128), "with __syncthreads a thread must see its neighbour's write");
  launch("selftest neighbour", neighbourKernel<false>, 1, 128, 0, s, out);
  auto without = toHost(out, 128, s);
  int stale = 0;
  for (int t = 0; t < 128; t++) stale += std::isnan(without[t]) ? 1 : 0;
  c.expect(stale > 0, "without __syncthreads every thread read its neighbour's write: a missing barrier would go unseen");
  cudaFree(out);
  return c.why;
}

std::string sharedPoisoned(cudaStream_t s) {
  Check c;
  float* out = deviceAlloc<float>(64);
  launch("selftest uninitialised shared", uninitialisedSharedKernel, 1, 64, 0, s, out);
  auto h = toHost(out, 64, s);
  for (float v : h) c.expect(std::isnan(v), "static shared memory is not NaN at a block's start");
  float* dyn = deviceAlloc<float>(32);
  launch("selftest dynamic shared", dynamicSharedKernel, 1, 32, 200 * sizeof(float), s, dyn, 200);
  auto d = toHost(dyn, 32, s);
  for (float v : d) c.expect(v == 1.f, "dynamic shared memory written before a barrier is not read back");
  float* fresh = deviceAlloc<float>(4);
  auto f = toHost(fresh, 4, s);
  for (float v : f) c.expect(std::isnan(v), "a new device allocation is not poisoned with NaN");
  cudaFree(out);
  cudaFree(dyn);
  cudaFree(fresh);
  return c.why;
}

// Runs a kernel that must fault; returns "" when it did with `code` and a detail containing `words`.
template <class Launch>
std::string mustFault(cudaStream_t s, cudaError_t code, const char* words, Launch go) {
  go();
  const cudaError_t e = cudaStreamSynchronize(s);
  std::string why;
  if (e != code)
    why = std::string("expected ") + cudaGetErrorName(code) + " but the synchronisation returned " + cudaGetErrorName(e);
  else if (std::string(cudaGetErrorString(e)).find(words) == std::string::npos)
    why = std::string("the fault does not say '") + words + "': " + cudaGetErrorString(e);
  else {
    void* p = nullptr;
    if (cudaMalloc(&p, 8) != code) why = "the fault is not sticky: a later call succeeded";
  }
  lmf_interp::clearErrorsAfterSelfTest();
  return why;
}

std::string faults(cudaStream_t s) {
  float* out = deviceAlloc<float>(128);
  int* iout = deviceAlloc<int>(32);
  std::string why = mustFault(s, cudaErrorLaunchFailure, "must reach each __syncthreads",
                              [&] { launch("selftest divergent barrier", divergentBarrierKernel, 1, 64, 0, s, out); });
  if (why.empty())
    why = mustFault(s, cudaErrorLaunchFailure, "cannot continue",
                    [&] { launch("selftest shuffle in divergent code", divergentShuffleKernel, 1, 32, 0, s, iout); });
  if (why.empty())
    why = mustFault(s, cudaErrorLaunchFailure, "exited",
                    [&] { launch("selftest early exit", earlyExitBarrierKernel, 1, 64, 0, s, out); });
  if (why.empty())
    why = mustFault(s, cudaErrorLaunchFailure, "not in the mask",
                    [&] { launch("selftest inactive lane", inactiveLaneKernel, 1, 32, 0, s, iout); });
  if (why.empty())
    why = mustFault(s, cudaErrorIllegalAddress, "outside every allocation",
                    [&] { launch("selftest read past the end", readPastEndKernel, 1, 1, 0, s, out, out, 128); });
  if (why.empty()) {
    int* mapped = nullptr;
    int* dev = nullptr;
    cudaHostAlloc(reinterpret_cast<void**>(&mapped), sizeof(int), cudaHostAllocMapped);
    cudaHostGetDevicePointer(reinterpret_cast<void**>(&dev), mapped, 0);
    why = mustFault(s, cudaErrorLaunchFailure, "mapped into the device",
                    [&] { launch("selftest mapped atomic", mappedAtomicKernel, 1, 1, 0, s, dev); });
    cudaFreeHost(mapped);
  }
  cudaFree(out);
  cudaFree(iout);
  return why;
}

std::string launchErrors(cudaStream_t s) {
  Check c;
  float* out = deviceAlloc<float>(2048);
  lmf_interp::launch("selftest too many threads", reinterpret_cast<const void*>(&spinKernel), dim3(1), dim3(2048), 0, s,
                     [=] { spinKernel(out); });
  c.expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "a 2048-thread block is not an invalid configuration");
  c.expect(cudaGetLastError() == cudaSuccess, "a launch-configuration error is sticky (it must not be)");
  lmf_interp::launch("selftest big smem", reinterpret_cast<const void*>(&dynamicSharedKernel), dim3(1), dim3(32),
                     64 * 1024, s, [=] { dynamicSharedKernel(out, 64); });
  c.expect(cudaGetLastError() == cudaErrorInvalidValue, "64 KiB of dynamic shared memory without the opt-in was accepted");
  cudaFuncSetAttribute(dynamicSharedKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
  lmf_interp::launch("selftest big smem", reinterpret_cast<const void*>(&dynamicSharedKernel), dim3(1), dim3(32),
                     64 * 1024, s, [=] { dynamicSharedKernel(out, 64); });
  c.expect(cudaGetLastError() == cudaSuccess, "64 KiB of dynamic shared memory after the opt-in was refused");
  const cudaError_t e = cudaStreamSynchronize(s);
  c.expect(e == cudaSuccess, std::string("the opted-in kernel failed: ") + cudaGetErrorString(e));
  cudaFree(out);
  return c.why;
}

std::string streamSemantics(cudaStream_t s) {
  Check c;
  float* out = deviceAlloc<float>(32);
  cudaMemsetAsync(out, 0, 32 * sizeof(float), s);
  cudaEvent_t e;
  cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
  launch("selftest spin", spinKernel, 1, 32, 0, s, out);
  cudaEventRecord(e, s);
  c.expect(cudaEventQuery(e) == cudaErrorNotReady, "an event behind queued work is ready before the host waited");
  c.expect(cudaGetLastError() == cudaErrorNotReady, "cudaErrorNotReady from cudaEventQuery is not the last error");
  c.expect(cudaGetLastError() == cudaSuccess, "reading the last error did not clear it");
  c.expect(cudaEventSynchronize(e) == cudaSuccess && cudaEventQuery(e) == cudaSuccess, "the event is not ready after its wait");
  // Pinned memory is read when the device reaches the copy; pageable memory when the call is made.
  float* pinned = nullptr;
  cudaHostAlloc(reinterpret_cast<void**>(&pinned), sizeof(float), cudaHostAllocDefault);
  float pageable = 1.f;
  *pinned = 1.f;
  cudaMemcpyAsync(out, pinned, sizeof(float), cudaMemcpyHostToDevice, s);
  cudaMemcpyAsync(out + 1, &pageable, sizeof(float), cudaMemcpyHostToDevice, s);
  *pinned = 2.f;
  pageable = 2.f;
  auto h = toHost(out, 2, s);
  c.expect(h[0] == 2.f, "a copy from pinned memory read the host memory before the device reached it");
  c.expect(h[1] == 1.f, "a copy from pageable memory was not staged when the call was made");
  // A device-to-host copy into pinned memory is done only after a wait.
  *pinned = -1.f;
  launch("selftest spin", spinKernel, 1, 1, 0, s, out);
  cudaMemcpyAsync(pinned, out, sizeof(float), cudaMemcpyDeviceToHost, s);
  c.expect(*pinned == -1.f, "a queued copy into pinned memory landed before the host waited");
  cudaStreamSynchronize(s);
  c.expect(*pinned == 3.f, "a copy into pinned memory did not land by the stream's synchronisation");
  c.expect(cudaMemcpyAsync(out, out + 1, 8, cudaMemcpyDeviceToDevice, s) == cudaErrorInvalidValue,
           "an overlapping device-to-device copy was accepted");
  cudaGetLastError();
  cudaFreeHost(pinned);
  cudaEventDestroy(e);
  cudaFree(out);
  return c.why;
}

std::string mma(cudaStream_t s) {
  Check c;
  float A[16][16], B[16][8], C[16][8];
  for (int i = 0; i < 16; i++)
    for (int k = 0; k < 16; k++) A[i][k] = float(((i * 7 + k * 3) % 11) - 5) / 4;
  for (int k = 0; k < 16; k++)
    for (int j = 0; j < 8; j++) B[k][j] = float(((k * 5 + j * 2) % 9) - 4) / 8;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 8; j++) C[i][j] = float(i - j) / 16;
  std::vector<uint32_t> a(32 * 4), b(32 * 2);
  std::vector<float> cf(32 * 4);
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    a[l * 4 + 0] = packBf16(A[g][2 * t], A[g][2 * t + 1]);
    a[l * 4 + 1] = packBf16(A[g + 8][2 * t], A[g + 8][2 * t + 1]);
    a[l * 4 + 2] = packBf16(A[g][2 * t + 8], A[g][2 * t + 9]);
    a[l * 4 + 3] = packBf16(A[g + 8][2 * t + 8], A[g + 8][2 * t + 9]);
    b[l * 2 + 0] = packBf16(B[2 * t][g], B[2 * t + 1][g]);
    b[l * 2 + 1] = packBf16(B[2 * t + 8][g], B[2 * t + 9][g]);
    cf[l * 4 + 0] = C[g][2 * t];
    cf[l * 4 + 1] = C[g][2 * t + 1];
    cf[l * 4 + 2] = C[g + 8][2 * t];
    cf[l * 4 + 3] = C[g + 8][2 * t + 1];
  }
  uint32_t* da = deviceAlloc<uint32_t>(a.size());
  uint32_t* db = deviceAlloc<uint32_t>(b.size());
  float* dc = deviceAlloc<float>(cf.size());
  float* dd = deviceAlloc<float>(cf.size());
  cudaMemcpy(da, a.data(), a.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b.data(), b.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dc, cf.data(), cf.size() * 4, cudaMemcpyHostToDevice);
  launch("selftest mma", mmaKernel, 1, 32, 0, s, dd, da, db, dc);
  auto d = toHost(dd, cf.size(), s);
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 4; h++) {
      const int row = g + (h >> 1) * 8, col = 2 * t + (h & 1);
      double ref = C[row][col];
      for (int k = 0; k < 16; k++) ref += double(A[row][k]) * B[k][col];  // the values are exact in bf16
      c.expect(std::fabs(d[l * 4 + h] - ref) < 1e-5, "mma: D(" + std::to_string(row) + "," + std::to_string(col) + ") is wrong");
    }
  }
  for (void* p : {static_cast<void*>(da), static_cast<void*>(db), static_cast<void*>(dc), static_cast<void*>(dd)}) cudaFree(p);
  return c.why;
}

std::string ldmatrix(cudaStream_t s) {
  Check c;
  std::vector<uint16_t> tiles(256);
  for (int i = 0; i < 256; i++) tiles[i] = static_cast<uint16_t>(i);  // tile i / 64, row (i / 8) % 8, column i % 8
  uint16_t* dt = deviceAlloc<uint16_t>(256);
  uint32_t* out = deviceAlloc<uint32_t>(128);
  cudaMemcpy(dt, tiles.data(), 512, cudaMemcpyHostToDevice);
  for (int trans = 0; trans < 2; trans++) {
    if (trans) launch("selftest ldmatrix.trans", ldmatrixKernel<true>, 1, 32, 0, s, out, dt);
    else launch("selftest ldmatrix", ldmatrixKernel<false>, 1, 32, 0, s, out, dt);
    auto h = toHost(out, 128, s);
    for (int l = 0; l < 32; l++)
      for (int i = 0; i < 4; i++) {
        const int r0 = trans ? (l % 4) * 2 : l / 4, c0 = trans ? l / 4 : (l % 4) * 2;
        const uint32_t lo = uint32_t(i * 64 + r0 * 8 + c0);
        const uint32_t hi = trans ? uint32_t(i * 64 + (r0 + 1) * 8 + c0) : lo + 1;
        c.expect(h[l * 4 + i] == (lo | (hi << 16)), std::string(trans ? "ldmatrix.trans" : "ldmatrix") + ": lane " +
                                                       std::to_string(l) + " got the wrong elements of tile " + std::to_string(i));
      }
  }
  cudaFree(dt);
  cudaFree(out);
  return c.why;
}

std::string cpAsync(cudaStream_t s) {
  Check c;
  std::vector<float> src(128);
  for (int i = 0; i < 128; i++) src[i] = float(i);
  float* ds = deviceAlloc<float>(128);
  float* early = deviceAlloc<float>(32);
  float* late = deviceAlloc<float>(32);
  cudaMemcpy(ds, src.data(), 512, cudaMemcpyHostToDevice);
  launch("selftest cp.async", cpAsyncKernel, 1, 32, 0, s, early, late, ds);
  auto e = toHost(early, 32, s), l = toHost(late, 32, s);
  for (int t = 0; t < 32; t++) {
    c.expect(std::isnan(e[t]), "cp.async data was visible before cp.async.wait_group");
    c.expect(l[t] == float(t * 4), "cp.async data is wrong after cp.async.wait_group");
  }
  cudaFree(ds);
  cudaFree(early);
  cudaFree(late);
  return c.why;
}

std::string cpAsyncGroups(cudaStream_t s) {
  Check c;
  std::vector<float> src(256);
  for (int i = 0; i < 256; i++) src[i] = float(i);
  float* ds = deviceAlloc<float>(256);
  float* seen = deviceAlloc<float>(96);
  cudaMemcpy(ds, src.data(), 1024, cudaMemcpyHostToDevice);
  launch("selftest cp.async groups", cpAsyncGroupsKernel, 1, 32, 0, s, seen, ds);
  auto h = toHost(seen, 96, s);
  for (int t = 0; t < 32; t++) {
    c.expect(h[t] == float(t * 4), "cp.async.wait_group 1 did not complete the older group");
    c.expect(std::isnan(h[32 + t]), "cp.async.wait_group 1 completed the newest group too (the model must hold it)");
    c.expect(h[64 + t] == float(128 + t * 4), "cp.async.wait_group 0 did not complete every group");
  }
  cudaFree(ds);
  cudaFree(seen);
  return c.why;
}

std::string conversions(cudaStream_t) {
  Check c;
  c.expect(__float2bfloat16_rn(1.00390625f).__x == 0x3f80, "bf16: a tie does not round to even (down)");
  c.expect(__float2bfloat16_rn(1.01171875f).__x == 0x3f82, "bf16: a tie does not round to even (up)");
  c.expect(__float2bfloat16_rn(NAN).__x == 0x7fff, "bf16: NaN is not the canonical NaN");
  c.expect(__float2bfloat16_rn(3.4e38f).__x == 0x7f80, "bf16: overflow does not round to infinity");
  c.expect(__bfloat162float(__float2bfloat16_rn(-2.5f)) == -2.5f, "bf16: -2.5 does not round-trip");
  c.expect(__float2half_rn(65504.f).__x == 0x7bff, "half: 65504 is not the largest finite half");
  c.expect(__float2half_rn(65520.f).__x == 0x7c00, "half: 65520 does not round to infinity");
  c.expect(__float2half_rn(5.960464477539063e-08f).__x == 0x0001, "half: the smallest subnormal is wrong");
  c.expect(__float2half_rn(2.98023223876953125e-08f).__x == 0x0000, "half: half the smallest subnormal does not round to 0 (even)");
  c.expect(__half2float(__float2half_rn(0.333333f)) == 0.333251953125f, "half: 1/3 rounds wrong");
  c.expect(__half2float(__float2half_rn(6.1035156e-05f)) == 6.1035156e-05f, "half: the smallest normal does not round-trip");
  return c.why;
}

struct Named {
  const char* name;
  std::string (*run)(cudaStream_t);
};
const Named kChecks[] = {
    {"shuffles and votes", shuffles},
    {"a missing __syncthreads is visible", barrierOrders},
    {"shared memory and new allocations are NaN-poisoned", sharedPoisoned},
    {"faults: divergent barrier, early exit, inactive lane, illegal address, mapped atomic", faults},
    {"launch configuration errors are reported and not sticky", launchErrors},
    {"stream semantics: events, cudaErrorNotReady, pinned and pageable copies", streamSemantics},
    {"mma.sync m16n8k16 bf16 model", mma},
    {"ldmatrix x4 model, with .trans", ldmatrix},
    {"cp.async model", cpAsync},
    {"cp.async.wait_group 1 keeps the newest group in flight", cpAsyncGroups},
    {"bf16 and half conversions", conversions},
};

}  // namespace

namespace lmf_interp {

std::vector<std::string> selfTestNames() {
  std::vector<std::string> names;
  for (const Named& n : kChecks) names.push_back(n.name);
  return names;
}

std::string runSelfTest(const std::string& name) {
  for (const Named& n : kChecks) {
    if (name != n.name) continue;
    cudaDeviceSynchronize();  // the engine's queued work first: a provoked fault must not drop it
    if (stickyError() != cudaSuccess) return "the device already has a sticky error";
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    std::string why = n.run(s);
    cudaStreamSynchronize(s);
    cudaStreamDestroy(s);
    clearErrorsAfterSelfTest();
    return why;
  }
  return "no self-test is named '" + name + "'";
}

}  // namespace lmf_interp
