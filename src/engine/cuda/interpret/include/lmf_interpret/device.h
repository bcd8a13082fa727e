// The CUDA device language for g++ (interpreted CUDA engine): qualifiers, built-in indices, __syncthreads, warp
// shuffles/votes/__syncwarp (warp barriers), atomics, the device math functions and vector types the kernels
// use. See core.h for the execution model.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core.h"

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one copy per program, which is one per block because blocks run one at a time. Each block's
// start fills it with NaN bytes: the section below for non-template functions; GCC ignores the section for static
// locals of template functions, which block.cc finds in the symbol table (kernels live in namespace lmf::cuda).
#define __shared__ static __attribute__((section("lmf_cuda_shared")))

// ---- built-in indices ----
#define threadIdx (::lmf_interp::g_thread->idx)
#define blockIdx (::lmf_interp::g_block.index)
#define blockDim (::lmf_interp::g_block.dim)
#define gridDim (::lmf_interp::g_block.grid)
constexpr int warpSize = 32;

// ---- barriers ----
#define __syncthreads() ::lmf_interp::syncthreads(__FILE__, __LINE__)
// __syncwarp() and __syncwarp(mask): a call on an object that knows where it was written.
#define __syncwarp ::lmf_interp::SyncWarpAt{__FILE__, __LINE__}
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
[[noreturn]] inline void __trap() { ::lmf_interp::fault("__trap() was called", cudaErrorIllegalInstruction); }

namespace lmf_interp {

inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) {
  static const char kWhat[] = "__syncwarp";
  warpCollective(mask, kWhat, file, line, nullptr, nullptr, [](const void* const*, void* const*, unsigned) {});
}
struct SyncWarpAt {
  const char* file;
  int line;
  void operator()(unsigned mask = 0xffffffffu) const { syncwarp(file, line, mask); }
};

// ---- shuffles: every participating lane posts its value and the lane it reads from ----
struct ShuffleIn {
  uint64_t value;
  int src;  // lane to read, or -1: keep this lane's own value (shfl_up/down past the segment's edge)
};

void shuffleCombine(const void* const in[32], void* const out[32], unsigned mask);

template <class T>
T shuffle(unsigned mask, T v, int src, const char* what, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "__shfl_sync moves values of at most 8 bytes");
  ShuffleIn in{0, src};
  std::memcpy(&in.value, &v, sizeof(T));
  uint64_t r = 0;
  warpCollective(mask, what, file, line, &in, &r, shuffleCombine);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

inline int segmentBase(int width) { return static_cast<int>(g_thread->lane) & ~(width - 1); }

extern const char kShflIdx[], kShflXor[], kShflUp[], kShflDown[], kBallot[], kAny[], kAll[];

template <class T>
T shflIdx(unsigned mask, T v, int srcLane, int width, const char* file, int line) {
  return shuffle(mask, v, segmentBase(width) + (srcLane & (width - 1)), kShflIdx, file, line);
}
template <class T>
T shflXor(unsigned mask, T v, int laneMask, int width, const char* file, int line) {
  const int src = static_cast<int>(g_thread->lane) ^ laneMask;
  return shuffle(mask, v, src >= segmentBase(width) + width ? -1 : src, kShflXor, file, line);
}
template <class T>
T shflUp(unsigned mask, T v, unsigned delta, int width, const char* file, int line) {
  const int src = static_cast<int>(g_thread->lane) - static_cast<int>(delta);
  return shuffle(mask, v, src < segmentBase(width) ? -1 : src, kShflUp, file, line);
}
template <class T>
T shflDown(unsigned mask, T v, unsigned delta, int width, const char* file, int line) {
  const int src = static_cast<int>(g_thread->lane) + static_cast<int>(delta);
  return shuffle(mask, v, src >= segmentBase(width) + width ? -1 : src, kShflDown, file, line);
}

// ---- votes ----
void ballotCombine(const void* const in[32], void* const out[32], unsigned mask);
inline unsigned vote(unsigned mask, int pred, const char* what, const char* file, int line) {
  const int p = pred != 0;
  unsigned r = 0;
  warpCollective(mask, what, file, line, &p, &r, ballotCombine);
  return r;
}

}  // namespace lmf_interp

#define __shfl_sync(mask, v, src, ...) ::lmf_interp::shflIdx(mask, v, src, lmf_width_(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...) ::lmf_interp::shflXor(mask, v, m, lmf_width_(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) ::lmf_interp::shflUp(mask, v, d, lmf_width_(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...) ::lmf_interp::shflDown(mask, v, d, lmf_width_(__VA_ARGS__), __FILE__, __LINE__)
inline int lmf_width_(int w = 32) { return w; }
#define __ballot_sync(mask, pred) ::lmf_interp::vote(mask, pred, ::lmf_interp::kBallot, __FILE__, __LINE__)
#define __any_sync(mask, pred) (::lmf_interp::vote(mask, pred, ::lmf_interp::kAny, __FILE__, __LINE__) != 0u)
#define __all_sync(mask, pred) (::lmf_interp::vote(mask, pred, ::lmf_interp::kAll, __FILE__, __LINE__) == (mask))
inline unsigned __activemask() { return 0xffffffffu; }

// ---- atomics (return the old value; the operand converts to the pointee type, as CUDA's overloads do) ----
template <class T>
struct lmf_same_ {
  using type = T;
};
#define LMF_ATOMIC_RMW(name, expr)                                   \
  template <class T>                                                 \
  inline T name(T* p, typename lmf_same_<T>::type v) {               \
    ::lmf_interp::checkAtomicAddress(p, #name);                      \
    const T old = *p;                                                \
    *p = (expr);                                                     \
    return old;                                                      \
  }
LMF_ATOMIC_RMW(atomicAdd, old + v)
LMF_ATOMIC_RMW(atomicSub, old - v)
LMF_ATOMIC_RMW(atomicExch, v)
LMF_ATOMIC_RMW(atomicMin, v < old ? v : old)
LMF_ATOMIC_RMW(atomicMax, v > old ? v : old)
LMF_ATOMIC_RMW(atomicAnd, old & v)
LMF_ATOMIC_RMW(atomicOr, old | v)
LMF_ATOMIC_RMW(atomicXor, old ^ v)
#undef LMF_ATOMIC_RMW
template <class T>
inline T atomicCAS(T* p, typename lmf_same_<T>::type compare, typename lmf_same_<T>::type v) {
  ::lmf_interp::checkAtomicAddress(p, "atomicCAS");
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}

// ---- device math beyond <cmath> ----
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
template <class T>
inline T __ldg(const T* p) { return *p; }

// min/max over mixed integer and floating types, as CUDA's math headers provide in the global namespace.
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
constexpr std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
constexpr std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

// ---- vector types ----
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
