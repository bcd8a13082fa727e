// Vectorisable float math shared by the softmax-style kernels. GCC does not vectorise expf without
// -ffast-math, and the exponentials of the 151,936-wide softmax rows are a visible cost, so this is a
// branch-free Cephes-style exp (about 1-2 ulp on the normal range) that `#pragma omp simd` loops inline.
#pragma once
#include <cmath>
#include <cstdint>

namespace lmf {

inline float fastExp(float x) {
  // Below -87.3 the result would be denormal; clamp (the value ~1e-38 is negligible next to any softmax sum).
  // A ternary clamp (std::fmin/fmax must honour NaNs and block GCC's vectoriser), the 1.5*2^23 rounding
  // trick and a bit_cast (not memcpy) keep calling loops vectorisable.
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  float n = (x * 1.44269504088896341f + shifter) - shifter;
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
  return y * __builtin_bit_cast(float, bits);  // memcpy-punning blocks GCC's vectoriser
}

// row[j] = exp(row[j] - shift) for j < n (in place when out == row); returns the sum in double. Sums run in
// float over blocks of 256 (a float reduction vectorises, a double one does not) and the blocks add in double.
inline double expShiftSum(const float* row, float* out, int64_t n, float shift) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 256) {
    const int64_t e = b + 256 < n ? b + 256 : n;
    float s = 0;
    if (out) {
#pragma omp simd reduction(+ : s)
      for (int64_t j = b; j < e; j++) {
        float v = fastExp(row[j] - shift);
        out[j] = v;
        s += v;
      }
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t j = b; j < e; j++) s += fastExp(row[j] - shift);
    }
    total += s;
  }
  return total;
}

// tanh(z) = 1 - 2 / (exp(2z) + 1): absolute error ~1e-7, exact +-1 in the tails; std::tanh does not vectorise.
inline float fastTanh(float z) { return 1.0f - 2.0f / (fastExp(2.0f * z) + 1.0f); }

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, about 2 float ulps of 1), vectorisable.
inline float fastErf(float x) {
  const float ax = x < 0 ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * fastExp(-ax * ax);
  return x < 0 ? -y : y;
}

// sum over j < n of f(j) in double, computed as float sums over blocks of 256 (vectorisable) added in double.
template <class F>
inline double blockSum(int64_t n, F f) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 256) {
    const int64_t e = b + 256 < n ? b + 256 : n;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = b; j < e; j++) s += f(j);
    total += s;
  }
  return total;
}

}  // namespace lmf
