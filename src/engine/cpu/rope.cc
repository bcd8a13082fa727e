// The attention prologue (qkPrep): per-head RMSNorm of q and k (Qwen3's QK-norm) followed by half-split RoPE,
// fused in one pass that also packs q|k into a contiguous [N, (heads+kvHeads)*headDim] buffer.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common.h"

namespace lmf {

namespace {

// Positions index the cos/sin tables, which have seq rows: checked on the host before any is used.
template <class Op>
void checkPositions(const Op& p, const int32_t* positions, const QkPrepShape& s) {
  if (!positions) return;
  for (int64_t t = 0; t < s.n; t++)
    if (positions[t] < 0 || positions[t] >= s.seq)
      p.fail("positions[" + std::to_string(t) + "] = " + std::to_string(positions[t]) + " is outside the RoPE table [0, " +
             std::to_string(s.seq) + ")");
}

}  // namespace

void op::qkPrepForward(const QkPrepForwardArgs& p) {
  const QkPrepShape& s = p;
  checkPositions(p, p.positions, s);
  const double eps = p.eps;
  const int64_t nh = s.nh(), hd = s.headDim, half = hd / 2;
  float* out = p.out;
  float* rstd = p.rstd;
  const float *qkv = p.qkv, *qw = p.qNormW, *kw = p.kNormW;
#pragma omp parallel for schedule(static) if (s.n * nh * hd > kComputeParallelMin)
  for (int64_t t = 0; t < s.n; t++) {
    const int64_t pos = p.positions ? p.positions[t] : t % s.seq;
    const float* cs = p.cos ? p.cos + pos * half : nullptr;
    const float* sn = p.sin ? p.sin + pos * half : nullptr;
    for (int64_t h = 0; h < nh; h++) {
      const float* x = qkv + t * s.qkvStride + h * hd;
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

// Norm-weight gradients are summed per fixed block of tokens, then the blocks in order: deterministic
// for any thread count.
void op::qkPrepBackward(const QkPrepBackwardArgs& args) {
  const QkPrepShape& s = args;
  const int64_t nh = s.nh(), hd = s.headDim, half = hd / 2;
  float *dqkv = args.dqkv, *dqw = args.dqNormW, *dkw = args.dkNormW;
  const float *dout = args.dout, *qkv = args.qkv, *rstd = args.rstd, *qw = args.qNormW, *kw = args.kNormW;
  const float *ropeCos = args.cos, *ropeSin = args.sin;
  const int32_t* positions = args.positions;
  checkPositions(args, positions, s);
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
        const int64_t p = positions ? positions[t] : t % s.seq;
        for (int64_t h = 0; h < nh; h++) {
          const float* go = dout + (t * nh + h) * hd;
          const float* x = qkv + t * s.qkvStride + h * hd;
          float* dx = dqkv + t * s.qkvStride + h * hd;
          const bool isQ = h < s.heads;
          const float* w = isQ ? qw : kw;
          float* g = w ? dy.data() : dx;  // without a norm the un-rotated gradient is the answer
          if (ropeCos) {
            const float* cs = ropeCos + p * half;
            const float* sn = ropeSin + p * half;
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

}  // namespace lmf
