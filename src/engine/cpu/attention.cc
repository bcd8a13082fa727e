// Causal attention with grouped-query heads. Forward works per (batch, head) on blocks of query rows so the
// masked upper triangle beyond each block is never computed; the seq x seq probabilities are never kept:
// backward recomputes them from the saved log-sum-exp. Backward works per (batch, kv head) group, so the
// query heads sharing a kv head add into dk/dv in a fixed order without atomics.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "mathfn.h"

namespace lmf {

namespace {

constexpr int64_t kRowBlock = 64;

// Scaled scores of query rows [i0, i1) against keys [0, i1) into S (row stride ldS).
inline void scores(const AttentionShape& s, const float* Q, const float* K, int64_t i0, int64_t i1, float* S, int64_t ldS) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)(i1 - i0), (blasint)i1, (blasint)s.headDim, s.scale,
              Q + i0 * s.sq, (blasint)s.sq, K, (blasint)s.sk, 0.0f, S, (blasint)ldS);
}

}  // namespace

void op::attentionForward(const AttentionForwardArgs& p) {
  const AttentionShape& s = p;
  const int64_t n = s.n(), T = s.seq, hd = s.headDim, group = s.group();
  float *out = p.out, *lse = p.lse;
  const float *q = p.q, *k = p.k, *v = p.v;
  if (n == 0) return;
  const int64_t tasks = s.batch * s.heads;
#pragma omp parallel
  {
    std::vector<float> S(std::min(kRowBlock, T) * T);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; task++) {
      const int64_t b = task / s.heads, h = task % s.heads, kh = h / group;
      const float* Q = q + b * T * s.sq + h * hd;
      const float* K = k + b * T * s.sk + kh * hd;
      const float* V = v + b * T * s.sv + kh * hd;
      float* O = out + b * T * s.od() + h * hd;
      float* L = lse + (b * s.heads + h) * T;
      for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
        const int64_t i1 = std::min(T, i0 + kRowBlock), ld = i1;
        scores(s, Q, K, i0, i1, S.data(), ld);
        for (int64_t i = i0; i < i1; i++) {
          float* row = S.data() + (i - i0) * ld;
          float mx = row[0];
          for (int64_t j = 1; j <= i; j++) mx = std::max(mx, row[j]);
          const double sum = expShiftSum(row, row, i + 1, mx);
          const float inv = static_cast<float>(1.0 / sum);
#pragma omp simd
          for (int64_t j = 0; j <= i; j++) row[j] *= inv;
          std::fill(row + i + 1, row + i1, 0.0f);
          L[i] = mx + static_cast<float>(std::log(sum));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)(i1 - i0), (blasint)hd, (blasint)i1, 1.0f,
                    S.data(), (blasint)ld, V, (blasint)s.sv, 0.0f, O + i0 * s.od(), (blasint)s.od());
      }
    }
  }
}

namespace {

// Backward of one (batch, head): writes dQ, adds this head's share into dK/dV (row strides ldk/ldv).
// P and dS are per-thread scratch of kRowBlock x seq floats.
void backwardHead(const AttentionBackwardArgs& in, int64_t b, int64_t h, float* dK, int64_t ldk, float* dV,
                  int64_t ldv, float* P, float* dS) {
  const AttentionShape& s = in;
  const int64_t T = s.seq, hd = s.headDim, od = s.od(), kh = h / s.group();
  const float* K = in.k + b * T * s.sk + kh * hd;
  const float* V = in.v + b * T * s.sv + kh * hd;
  const float* Q = in.q + b * T * s.sq + h * hd;
  const float* O = in.out + b * T * od + h * hd;
  const float* dO = in.dout + b * T * od + h * hd;
  float* dQ = in.dq + b * T * s.sq + h * hd;
  const float* L = in.lse + (b * s.heads + h) * T;
  for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
    const int64_t i1 = std::min(T, i0 + kRowBlock), m = i1 - i0, ld = i1;
    scores(s, Q, K, i0, i1, P, ld);
    // dP = dO V^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)i1, (blasint)hd, 1.0f, dO + i0 * od,
                (blasint)od, V, (blasint)s.sv, 0.0f, dS, (blasint)ld);
    for (int64_t i = i0; i < i1; i++) {
      const float* o = O + i * od;
      const float* g = dO + i * od;
      const float Di = static_cast<float>(blockSum(hd, [o, g](int64_t c) { return o[c] * g[c]; }));
      const float li = L[i];
      float* p = P + (i - i0) * ld;
      float* ds = dS + (i - i0) * ld;
#pragma omp simd
      for (int64_t j = 0; j <= i; j++) {
        float pj = fastExp(p[j] - li);
        p[j] = pj;
        ds[j] = pj * (ds[j] - Di) * s.scale;
      }
      std::fill(p + i + 1, p + i1, 0.0f);
      std::fill(ds + i + 1, ds + i1, 0.0f);
    }
    // dQ = dS K (written), dK += dS^T Q, dV += P^T dO
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)hd, (blasint)i1, 1.0f, dS,
                (blasint)ld, K, (blasint)s.sk, 0.0f, dQ + i0 * s.sq, (blasint)s.sq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)i1, (blasint)hd, (blasint)m, 1.0f, dS, (blasint)ld,
                Q + i0 * s.sq, (blasint)s.sq, 1.0f, dK, (blasint)ldk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)i1, (blasint)hd, (blasint)m, 1.0f, P, (blasint)ld,
                dO + i0 * od, (blasint)od, 1.0f, dV, (blasint)ldv);
  }
}

void zeroRows(float* x, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t t = 0; t < rows; t++) std::fill(x + t * ld, x + t * ld + cols, 0.0f);
}

}  // namespace

// dq/dk/dv use the q/k/v strides (they may be the columns of one dqkv buffer).
// With enough (batch, kv head) groups for the threads, each group is one task and its query heads add into
// dk/dv in order. With fewer groups than threads (small batch, MQA), each (batch, head) is a task with private
// dk/dv partials, summed per group afterwards in head order. Both are deterministic for a given thread count.
void op::attentionBackward(const AttentionBackwardArgs& p) {
  const AttentionShape& s = p;
  const int64_t n = s.n(), T = s.seq, hd = s.headDim, group = s.group();
  float *dk = p.dk, *dv = p.dv;
  if (n == 0) return;
  const int64_t groups = s.batch * s.kvHeads;
  const bool splitHeads = group > 1 && groups < omp_get_max_threads();
  std::vector<float> partial(splitHeads ? s.batch * s.heads * T * hd * 2 : 0);
#pragma omp parallel
  {
    const int64_t rb = std::min(kRowBlock, T);
    std::vector<float> P(rb * T), dS(rb * T);
    if (!splitHeads) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < groups; task++) {
        const int64_t b = task / s.kvHeads, kh = task % s.kvHeads;
        float* dK = dk + b * T * s.sk + kh * hd;
        float* dV = dv + b * T * s.sv + kh * hd;
        zeroRows(dK, T, hd, s.sk);
        zeroRows(dV, T, hd, s.sv);
        for (int64_t h = kh * group; h < (kh + 1) * group; h++)
          backwardHead(p, b, h, dK, s.sk, dV, s.sv, P.data(), dS.data());
      }
    } else {
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < s.batch * s.heads; task++) {
        float* pk = partial.data() + task * T * hd * 2;
        float* pv = pk + T * hd;
        backwardHead(p, task / s.heads, task % s.heads, pk, hd, pv, hd, P.data(), dS.data());
      }
      // dk/dv rows of each (batch, kv head) = sum of its query heads' partials, in head order.
#pragma omp for schedule(static)
      for (int64_t row = 0; row < groups * T; row++) {
        const int64_t g = row / T, t = row % T, b = g / s.kvHeads, kh = g % s.kvHeads;
        float* dK = dk + (b * T + t) * s.sk + kh * hd;
        float* dV = dv + (b * T + t) * s.sv + kh * hd;
        for (int64_t c = 0; c < hd; c++) dK[c] = dV[c] = 0.0f;
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          const float* pk = partial.data() + (b * s.heads + h) * T * hd * 2 + t * hd;
          const float* pv = pk + T * hd;
#pragma omp simd
          for (int64_t c = 0; c < hd; c++) {
            dK[c] += pk[c];
            dV[c] += pv[c];
          }
        }
      }
    }
  }
}

}  // namespace lmf
