// bfloat16 <-> float on the host (both engines' transfers and casts): bf16 is the top 16 bits of an IEEE float.
// float -> bf16 rounds to nearest, ties to even (as __float2bfloat16_rn); a NaN stays a NaN of the same sign
// (quiet, since rounding its payload could turn it into an infinity); infinities and signed zeros are kept.
#pragma once
#include <cstdint>
#include <cstring>

namespace lmf {

inline uint16_t floatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN: quiet it
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7fffu + lsb) >> 16);
}

inline float bf16ToFloat(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace lmf
