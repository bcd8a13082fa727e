// The attention prologue (qkPrep): per-head RMSNorm of q and k (Qwen3's QK-norm) followed by half-split RoPE,
// fused in one pass that also packs q|k into a contiguous [N, (heads+kvHeads)*headDim] buffer.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace lmf {

namespace {

struct PrepShape {
  int64_t n, seq, heads, kvHeads, hd, stride;
  int64_t nh() const { return heads + kvHeads; }
};

PrepShape readShape(const Args& a, size_t first, int64_t stride) {
  PrepShape s{a.i64(first, "n"), a.i64(first + 1, "seq"), a.i64(first + 2, "heads"), a.i64(first + 3, "kvHeads"),
              a.i64(first + 4, "headDim"), stride};
  if (s.seq == 0) a.fail("seq must be positive");
  if (s.hd == 0) a.fail("headDim must be positive");
  if (s.stride < s.nh() * s.hd)
    a.fail("qkvStride " + std::to_string(s.stride) + " is smaller than the q and k columns (" +
           std::to_string(s.nh() * s.hd) + ")");
  return s;
}

struct Rope {
  const float* cos = nullptr;
  const float* sin = nullptr;
};

Rope readRope(const Args& a, size_t cosIdx, size_t sinIdx, const PrepShape& s) {
  if (a.isNull(cosIdx) != a.isNull(sinIdx)) a.fail("cos and sin must be given together (or both null)");
  if (a.isNull(cosIdx)) return {};
  if (s.hd % 2 != 0) a.fail("RoPE needs an even headDim, got " + std::to_string(s.hd));
  int64_t len = s.seq * (s.hd / 2);
  return {a.f32(cosIdx, len, "cos"), a.f32(sinIdx, len, "sin")};
}

// qkPrepForward(out, rstd, qkv, qkvStride, qNormW, kNormW, cos, sin, n, seq, heads, kvHeads, headDim, eps)
void opQkPrepForward(const Args& a) {
  PrepShape s = readShape(a, 15, a.i64(6, "qkvStride"));
  double eps = a.num(20);
  const int64_t nh = s.nh(), hd = s.hd, half = hd / 2;
  float* out = a.f32(0, s.n * nh * hd, "out");
  const float* qkv = a.f32(4, span2d(s.n, nh * hd, s.stride), "qkv");
  const float* qw = a.f32OrNull(7, hd, "qNormW");
  const float* kw = a.f32OrNull(9, hd, "kNormW");
  float* rstd = (qw || kw) ? a.f32(2, s.n * nh, "rstd") : nullptr;
  Rope rope = readRope(a, 11, 13, s);
#pragma omp parallel for schedule(static) if (s.n * nh * hd > kComputeParallelMin)
  for (int64_t t = 0; t < s.n; t++) {
    const int64_t p = t % s.seq;
    const float* cs = rope.cos ? rope.cos + p * half : nullptr;
    const float* sn = rope.sin ? rope.sin + p * half : nullptr;
    for (int64_t h = 0; h < nh; h++) {
      const float* x = qkv + t * s.stride + h * hd;
      float* o = out + (t * nh + h) * hd;
      const float* w = h < s.heads ? qw : kw;
      float r = 1.0f;
      if (w) {
        double ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int64_t i = 0; i < hd; i++) ss += static_cast<double>(x[i]) * x[i];
        r = static_cast<float>(1.0 / std::sqrt(ss / hd + eps));
      }
      if (rstd) rstd[t * nh + h] = r;
      if (cs) {
        if (w) {
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float y1 = x[i] * r * w[i], y2 = x[i + half] * r * w[i + half];
            o[i] = y1 * cs[i] - y2 * sn[i];
            o[i + half] = y2 * cs[i] + y1 * sn[i];
          }
        } else {
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float y1 = x[i], y2 = x[i + half];
            o[i] = y1 * cs[i] - y2 * sn[i];
            o[i + half] = y2 * cs[i] + y1 * sn[i];
          }
        }
      } else if (w) {
#pragma omp simd
        for (int64_t i = 0; i < hd; i++) o[i] = x[i] * r * w[i];
      } else {
        std::copy(x, x + hd, o);
      }
    }
  }
}

// qkPrepBackward(dqkv, qkvStride, dqNormW, dkNormW, dout, qkv, rstd, qNormW, kNormW, cos, sin,
//                n, seq, heads, kvHeads, headDim)
// Norm-weight gradients are summed per fixed block of tokens, then the blocks in order: deterministic
// for any thread count.
void opQkPrepBackward(const Args& a) {
  PrepShape s = readShape(a, 21, a.i64(2, "qkvStride"));
  const int64_t nh = s.nh(), hd = s.hd, half = hd / 2;
  float* dqkv = a.f32(0, span2d(s.n, nh * hd, s.stride), "dqkv");
  const float* dout = a.f32(7, s.n * nh * hd, "dout");
  const float* qkv = a.f32(9, span2d(s.n, nh * hd, s.stride), "qkv");
  const float* qw = a.f32OrNull(13, hd, "qNormW");
  const float* kw = a.f32OrNull(15, hd, "kNormW");
  float* dqw = qw ? a.f32(3, hd, "dqNormW") : nullptr;
  float* dkw = kw ? a.f32(5, hd, "dkNormW") : nullptr;
  const float* rstd = (qw || kw) ? a.f32(11, s.n * nh, "rstd") : nullptr;
  Rope rope = readRope(a, 17, 19, s);
  constexpr int64_t kTokBlock = 32;
  const int64_t blocks = (s.n + kTokBlock - 1) / kTokBlock;
  const bool needDw = qw || kw;
  std::vector<double> partial(needDw ? blocks * 2 * hd : 0, 0.0);
#pragma omp parallel if (s.n * nh * hd > kComputeParallelMin)
  {
    std::vector<float> dy(hd);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
      double* pq = needDw ? partial.data() + b * 2 * hd : nullptr;
      double* pk = needDw ? pq + hd : nullptr;
      for (int64_t t = b * kTokBlock; t < std::min(s.n, (b + 1) * kTokBlock); t++) {
        const int64_t p = t % s.seq;
        for (int64_t h = 0; h < nh; h++) {
          const float* go = dout + (t * nh + h) * hd;
          const float* x = qkv + t * s.stride + h * hd;
          float* dx = dqkv + t * s.stride + h * hd;
          const bool isQ = h < s.heads;
          const float* w = isQ ? qw : kw;
          float* g = w ? dy.data() : dx;  // without a norm the un-rotated gradient is the answer
          if (rope.cos) {
            const float* cs = rope.cos + p * half;
            const float* sn = rope.sin + p * half;
#pragma omp simd
            for (int64_t i = 0; i < half; i++) {
              float g1 = go[i], g2 = go[i + half];
              g[i] = g1 * cs[i] + g2 * sn[i];
              g[i + half] = g2 * cs[i] - g1 * sn[i];
            }
          } else {
            std::copy(go, go + hd, g);
          }
          if (!w) continue;
          const float r = rstd[t * nh + h];
          double dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t i = 0; i < hd; i++) dot += static_cast<double>(g[i]) * w[i] * x[i];
          const float c = static_cast<float>(dot * r * r * r / hd);
          double* pw = isQ ? pq : pk;
#pragma omp simd
          for (int64_t i = 0; i < hd; i++) {
            dx[i] = r * g[i] * w[i] - x[i] * c;
            pw[i] += static_cast<double>(g[i]) * x[i] * r;
          }
        }
      }
    }
  }
  if (!needDw) return;
  for (int64_t i = 0; i < hd; i++) {
    double sq = 0, sk = 0;
    for (int64_t b = 0; b < blocks; b++) {
      sq += partial[b * 2 * hd + i];
      sk += partial[b * 2 * hd + hd + i];
    }
    if (dqw) dqw[i] += static_cast<float>(sq);
    if (dkw) dkw[i] += static_cast<float>(sk);
  }
}

}  // namespace

void registerRope(Napi::Env env, Napi::Object exports) {
  registerOp(env, exports, "qkPrepForward", opQkPrepForward);
  registerOp(env, exports, "qkPrepBackward", opQkPrepBackward);
}

}  // namespace lmf
