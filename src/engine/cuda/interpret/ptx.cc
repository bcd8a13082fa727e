// Models of the GPU-only instructions of src/engine/cuda/ptx.cuh for the interpreted engine: the tensor-core mma
// and ldmatrix with their PTX fragment layouts (as warp-collective operations), and cp.async with its groups.
#include "lmf_interpret/ptx.h"

#include <cstring>
#include <string>
#include <vector>

#include "lmf_interpret/device.h"

namespace lmf_interp {

namespace {

float bf16Low(uint32_t v) {
  const uint32_t u = v << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16High(uint32_t v) {
  const uint32_t u = v & 0xffff0000u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct MmaIn {
  uint32_t a[4], b[2];
  float c[4];
};

const char kMma[] = "mma.sync.m16n8k16 (bf16)";
const char kLdmatrix[] = "ldmatrix.x4";
const char kLdmatrixTrans[] = "ldmatrix.x4.trans";

// Gathers A (16x16), B (16x8) and C (16x8) from the 32 lanes' fragments, then hands each lane its part of D.
void mmaCombine(const void* const in[32], void* const out[32], unsigned) {
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; l++) {
    const auto* f = static_cast<const MmaIn*>(in[l]);
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 4; h++) {
      const int row = g + (h & 1) * 8, col = 2 * t + (h >> 1) * 8;
      A[row][col] = bf16Low(f->a[h]);
      A[row][col + 1] = bf16High(f->a[h]);
    }
    for (int h = 0; h < 2; h++) {
      const int k = 2 * t + h * 8;
      B[k][g] = bf16Low(f->b[h]);
      B[k + 1][g] = bf16High(f->b[h]);
    }
    for (int h = 0; h < 4; h++) C[g + (h >> 1) * 8][2 * t + (h & 1)] = f->c[h];
  }
  for (int l = 0; l < 32; l++) {
    auto* d = static_cast<float*>(out[l]);
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 4; h++) {
      const int row = g + (h >> 1) * 8, col = 2 * t + (h & 1);
      double acc = 0;  // bf16 products are exact in fp32; the sum is rounded once
      for (int k = 0; k < 16; k++) acc += double(A[row][k]) * B[k][col];
      d[h] = static_cast<float>(acc + C[row][col]);
    }
  }
}

struct LdIn {
  const void* row;
};

template <bool Trans>
void ldmatrixCombine(const void* const in[32], void* const out[32], unsigned) {
  for (int l = 0; l < 32; l++) {
    const auto* addr = static_cast<const LdIn*>(in[l])->row;
    if (reinterpret_cast<uintptr_t>(addr) % 16)
      fault("ldmatrix: a row address is not 16-byte aligned", cudaErrorMisalignedAddress);
  }
  uint16_t tile[4][8][8];
  for (int l = 0; l < 32; l++) std::memcpy(tile[l / 8][l % 8], static_cast<const LdIn*>(in[l])->row, 16);
  for (int l = 0; l < 32; l++) {
    auto* r = static_cast<uint32_t*>(out[l]);
    for (int i = 0; i < 4; i++) {
      uint16_t lo, hi;
      if (Trans) {
        lo = tile[i][(l % 4) * 2][l / 4];
        hi = tile[i][(l % 4) * 2 + 1][l / 4];
      } else {
        lo = tile[i][l / 4][(l % 4) * 2];
        hi = tile[i][l / 4][(l % 4) * 2 + 1];
      }
      r[i] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
}

// cp.async per thread: committed groups (oldest first) and the open group; reset for each block.
struct Copy {
  void* dst;
  const void* src;
  int bytes;
};
struct CpState {
  uint64_t serial = 0;
  std::vector<std::vector<Copy>> committed;
  std::vector<Copy> open;
};
CpState g_cp[1024];

CpState& cpState() {
  CpState& s = g_cp[g_thread->linear];
  if (s.serial != g_block.serial) {
    s.serial = g_block.serial;
    s.committed.clear();
    s.open.clear();
  }
  return s;
}

}  // namespace

void mmaBf16m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file, int line) {
  MmaIn in;
  std::memcpy(in.a, a, sizeof in.a);
  std::memcpy(in.b, b, sizeof in.b);
  std::memcpy(in.c, c, sizeof in.c);
  float r[4];
  warpCollective(0xffffffffu, kMma, file, line, &in, r, mmaCombine);
  std::memcpy(d, r, sizeof r);
}

void ldmatrixX4(uint32_t r[4], const void* row, bool trans, const char* file, int line) {
  LdIn in{row};
  uint32_t out[4];
  if (trans) warpCollective(0xffffffffu, kLdmatrixTrans, file, line, &in, out, ldmatrixCombine<true>);
  else warpCollective(0xffffffffu, kLdmatrix, file, line, &in, out, ldmatrixCombine<false>);
  std::memcpy(r, out, sizeof out);
}

void cpAsync(void* dst, const void* src, int bytes) {
  if (reinterpret_cast<uintptr_t>(dst) % bytes || reinterpret_cast<uintptr_t>(src) % bytes)
    fault("cp.async: source and destination must be aligned to the copy size", cudaErrorMisalignedAddress);
  // Until a wait covers it the copy may land at any moment: the destination holds neither the old nor surely the
  // new bytes, so it is poisoned now (a thread still reading the old tile, or reading before its wait, sees NaN).
  std::memset(dst, 0xff, static_cast<size_t>(bytes));
  cpState().open.push_back(Copy{dst, src, bytes});
}

void cpAsyncCommit() {
  CpState& s = cpState();
  s.committed.push_back(std::move(s.open));
  s.open.clear();
}

void cpAsyncWait(int groupsLeft) {
  CpState& s = cpState();
  while (static_cast<int>(s.committed.size()) > groupsLeft) {
    for (const Copy& c : s.committed.front()) std::memcpy(c.dst, c.src, c.bytes);
    s.committed.erase(s.committed.begin());
  }
}

}  // namespace lmf_interp
