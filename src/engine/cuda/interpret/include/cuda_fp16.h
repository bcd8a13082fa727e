// IEEE half precision for the interpreted CUDA engine: the toolkit's type names and conversions, rounding to
// nearest even with subnormals, infinities and NaN as on the GPU.
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

struct __half {
  unsigned short __x;
  __half() = default;
  explicit __half(float f);
  operator float() const;
};
struct alignas(4) __half2 {
  __half x, y;
};

inline unsigned short lmf_half_bits_rn_(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<unsigned short>(sign | 0x7fffu);  // NaN
  if (absu >= 0x477ff000u) return static_cast<unsigned short>(sign | 0x7c00u);  // rounds to infinity
  if (absu < 0x38800000u) {                                                     // subnormal half (or zero)
    if (absu < 0x33000000u) return static_cast<unsigned short>(sign);           // below half the smallest
    const int e = static_cast<int>(absu >> 23);
    const uint32_t mant = (absu & 0x7fffffu) | 0x800000u;
    const int shift = 126 - e;  // 14..24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) h++;
    return static_cast<unsigned short>(sign | h);
  }
  uint32_t h = ((absu - 0x38000000u) >> 13);
  const uint32_t rem = absu & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return static_cast<unsigned short>(sign | h);
}

inline float lmf_half_to_float_(unsigned short h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
  if (e == 0x1f) u = sign | 0x7f800000u | (m << 13);
  else if (e != 0) u = sign | ((e + 112u) << 23) | (m << 13);
  else if (m == 0) u = sign;
  else {
    e = 113;
    while (!(m & 0x400u)) {
      m <<= 1;
      e--;
    }
    u = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline __half __float2half_rn(float f) {
  __half h;
  h.__x = lmf_half_bits_rn_(f);
  return h;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return lmf_half_to_float_(h.__x); }
inline __half::__half(float f) : __x(lmf_half_bits_rn_(f)) {}
inline __half::operator float() const { return lmf_half_to_float_(__x); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
