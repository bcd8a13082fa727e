// The GPU-only instructions kernels may use, each behind one named device function: inline PTX when nvcc builds
// the engine, a functional model when the interpreted engine does (LMF_CUDA_INTERPRET: interpret/ptx.cc, with the
// same fragment layouts and the same rule that every lane of the warp takes part). A kernel that uses only these
// names, never `asm` itself, is tested on the CPU like any other.
//   mmaBf16m16n8k16   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80+): D = A·B + C, one warp
//   ldmatrixX4        ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: four 8x8 b16 tiles from shared memory
//   cpAsync16         cp.async.cg.shared.global (16 bytes), with cpAsyncCommit / cpAsyncWait<N> (sm_80+)
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"): lane l has group g = l / 4 and t = l % 4.
//   A (16x16, row-major), a[0..3] each two bf16 (low half = lower column): a[0] (g, 2t..2t+1), a[1] (g+8, 2t..),
//     a[2] (g, 2t+8..), a[3] (g+8, 2t+8..);
//   B (16x8, column-major), b[0] (rows 2t..2t+1, column g), b[1] (rows 2t+8..2t+9, column g);
//   C, D (16x8 f32): c[0], c[1] (g, 2t..2t+1), c[2], c[3] (g+8, 2t..2t+1).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#if defined(LMF_CUDA_INTERPRET)
#include "lmf_interpret/ptx.h"
#endif

namespace lmf {
namespace cuda {
namespace ptx {

__device__ __forceinline__ void mmaBf16m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::mmaBf16m16n8k16(d, a, b, c, __FILE__, __LINE__);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// Lane l gives the shared-memory address of row l % 8 of tile l / 8 (16 bytes, 16-byte aligned); r[i] receives
// tile i's elements (l / 4, 2 (l % 4) .. +1), or with `Trans` those of the transposed tile.
template <bool Trans = false>
__device__ __forceinline__ void ldmatrixX4(uint32_t r[4], const void* smemRow) {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::ldmatrixX4(r, smemRow, Trans, __FILE__, __LINE__);
#else
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smemRow));
  if constexpr (Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  }
#endif
}

// 16 bytes from global to shared memory, asynchronously: visible only after the cpAsyncWait that covers its group.
__device__ __forceinline__ void cpAsync16(void* smemDst, const void* globalSrc) {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::cpAsync(smemDst, globalSrc, 16);
#else
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smemDst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(globalSrc));
#endif
}

// Closes the group of the cp.async calls issued since the last commit.
__device__ __forceinline__ void cpAsyncCommit() {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::cpAsyncCommit();
#else
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most N of this thread's committed groups are still in flight (the newest ones).
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
#if defined(LMF_CUDA_INTERPRET)
  ::lmf_interp::cpAsyncWait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

}  // namespace ptx
}  // namespace cuda
}  // namespace lmf
