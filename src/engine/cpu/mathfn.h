// Vectorisable float math shared by the softmax-style kernels. GCC does not vectorise expf without
// -ffast-math, and the exponentials of the 151,936-wide softmax rows are a visible cost, so this is a
// branch-free Cephes-style exp (about 1-2 ulp on the normal range) that `#pragma omp simd` loops inline.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace lmf {

#pragma omp declare simd notinbranch
inline float fastExp(float x) {
  // Below -87.3 the result would be denormal; clamp (the value ~1e-38 is negligible next to any softmax sum).
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;  // ln2 split in two parts for an exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

}  // namespace lmf
