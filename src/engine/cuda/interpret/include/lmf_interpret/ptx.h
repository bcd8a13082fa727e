// Functional models of the GPU-only instructions behind src/engine/cuda/ptx.cuh (interpret/ptx.cc). mma and
// ldmatrix are warp-collective: every lane of the warp must call them together (a warp barrier, as on the GPU).
#pragma once
#include <cstdint>

namespace lmf_interp {

void mmaBf16m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file, int line);
void ldmatrixX4(uint32_t r[4], const void* row, bool trans, const char* file, int line);
// cp.async: the destination is NaN-poisoned at the issue and written when a wait covers its group, so reading it
// in between (before the wait, or a tile another warp is still using when the next copy into it is issued) sees NaN.
void cpAsync(void* dst, const void* src, int bytes);
void cpAsyncCommit();
void cpAsyncWait(int groupsLeft);

}  // namespace lmf_interp
