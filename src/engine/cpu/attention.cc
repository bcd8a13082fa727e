// Causal attention with grouped-query heads, over rows of seq tokens or, with document masking, over the documents
// that cumulative sequence lengths mark (varlen: a token attends only within its document; no mask is built).
// Forward works per (segment, head) on blocks of query rows so the masked upper triangle beyond each block is
// never computed; the seq x seq probabilities are never kept: backward recomputes them from the saved
// log-sum-exp. Scratch is a block of query rows x the longest segment per thread, so memory grows linearly with
// seq. Backward works per (segment, kv head) group, so the query heads sharing a kv head add into dk/dv in a
// fixed order without atomics.
#include "blas.h"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "mathfn.h"

namespace lmf {

namespace {

constexpr int64_t kRowBlock = 64;

// The attention units: each row of seq tokens (causal attention), or the documents of cumulative sequence lengths
// cu (document masking: segment g is tokens [cu[g], cu[g+1]) of the flattened batch, never crossing a row).
struct Segments {
  const int32_t* cu;  // null: rows
  int64_t count, seq;
  int64_t start(int64_t g) const { return cu ? cu[g] : g * seq; }
  int64_t length(int64_t g) const { return cu ? cu[g + 1] - cu[g] : seq; }
  int64_t longest() const {
    if (!cu) return seq;
    int64_t m = 0;
    for (int64_t g = 0; g < count; g++) m = std::max<int64_t>(m, cu[g + 1] - cu[g]);
    return m;
  }
};

// Checks host-side what the decoder cannot: the boundaries run from 0 to n, increase, and include every row start.
template <class Op>
Segments segmentsOf(const Op& a, const AttentionShape& s, const int32_t* cu, int64_t count) {
  if (!cu) return {nullptr, s.batch, s.seq};
  const int64_t n = s.n();
  if (cu[0] != 0 || cu[count] != n)
    a.fail("cuSeqlens must start at 0 and end at batch*seq = " + std::to_string(n) + ", got " + std::to_string(cu[0]) +
           " .. " + std::to_string(cu[count]));
  int64_t nextRow = s.seq;
  for (int64_t g = 0; g < count; g++) {
    if (cu[g + 1] <= cu[g]) a.fail("cuSeqlens must be strictly increasing (at entry " + std::to_string(g + 1) + ")");
    if (cu[g + 1] > nextRow) a.fail("document " + std::to_string(g) + " crosses the start of row " + std::to_string(nextRow / s.seq) +
                                    "; every row start must be a boundary in cuSeqlens");
    if (cu[g + 1] == nextRow) nextRow += s.seq;
  }
  return {cu, count, s.seq};
}

// lse is [batch, heads, seq]: token t of head h; a segment's tokens are contiguous there (it stays in one row).
inline int64_t lseIndex(const AttentionShape& s, int64_t t, int64_t h) { return ((t / s.seq) * s.heads + h) * s.seq + t % s.seq; }

// Scaled scores of query rows [i0, i1) against keys [0, i1) into S (row stride ldS).
inline void scores(const AttentionShape& s, const float* Q, const float* K, int64_t i0, int64_t i1, float* S, int64_t ldS) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)(i1 - i0), (blasint)i1, (blasint)s.headDim, s.scale,
              Q + i0 * s.sq, (blasint)s.sq, K, (blasint)s.sk, 0.0f, S, (blasint)ldS);
}

}  // namespace

void op::attentionForward(const AttentionForwardArgs& p) {
  const AttentionShape& s = p;
  const int64_t n = s.n(), hd = s.headDim, group = s.heads / s.kvHeads;
  float *out = p.out, *lse = p.lse;
  const float *q = p.q, *k = p.k, *v = p.v;
  if (n == 0) return;
  const Segments seg = segmentsOf(p, s, p.cuSeqlens, s.segments);
  const int64_t longest = seg.longest();
  const int64_t tasks = seg.count * s.heads;
#pragma omp parallel
  {
    std::vector<float> S(std::min(kRowBlock, longest) * longest);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; task++) {
      const int64_t g = task / s.heads, h = task % s.heads, kh = h / group;
      const int64_t t0 = seg.start(g), T = seg.length(g);
      const float* Q = q + t0 * s.sq + h * hd;
      const float* K = k + t0 * s.sk + kh * hd;
      const float* V = v + t0 * s.sv + kh * hd;
      float* O = out + t0 * s.od() + h * hd;
      float* L = lse + lseIndex(s, t0, h);
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

// Backward of one (segment, head): writes dQ, adds this head's share into dK/dV (the segment's rows, strides
// ldk/ldv). P and dS are per-thread scratch of kRowBlock x (longest segment) floats.
struct BackwardIn {
  const float *q, *k, *v, *out, *dout, *lse;
  float* dq;
};

void backwardHead(const AttentionShape& s, const BackwardIn& in, int64_t t0, int64_t T, int64_t h, float* dK, int64_t ldk,
                  float* dV, int64_t ldv, float* P, float* dS) {
  const int64_t hd = s.headDim, od = s.od(), kh = h / (s.heads / s.kvHeads);
  const float* K = in.k + t0 * s.sk + kh * hd;
  const float* V = in.v + t0 * s.sv + kh * hd;
  const float* Q = in.q + t0 * s.sq + h * hd;
  const float* O = in.out + t0 * od + h * hd;
  const float* dO = in.dout + t0 * od + h * hd;
  float* dQ = in.dq + t0 * s.sq + h * hd;
  const float* L = in.lse + lseIndex(s, t0, h);
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
// With enough (segment, kv head) groups for the threads, each group is one task and its query heads add into
// dk/dv in order. With fewer groups than threads (small batch, MQA), each (segment, head) is a task with private
// dk/dv partials, summed per group afterwards in head order. Both are deterministic for a given thread count.
void op::attentionBackward(const AttentionBackwardArgs& p) {
  const AttentionShape& s = p;
  const int64_t n = s.n(), hd = s.headDim, group = s.heads / s.kvHeads;
  float *dk = p.dk, *dv = p.dv;
  BackwardIn in{};
  in.dout = p.dout;
  in.q = p.q;
  in.k = p.k;
  in.v = p.v;
  in.out = p.out;
  in.lse = p.lse;
  in.dq = p.dq;
  if (n == 0) return;
  const Segments seg = segmentsOf(p, s, p.cuSeqlens, s.segments);
  const int64_t longest = seg.longest();
  const int64_t groups = seg.count * s.kvHeads;
  const bool splitHeads = group > 1 && groups < omp_get_max_threads();
  // Partials of every query head over all tokens: [heads][n][hd] for dk, then the same for dv.
  std::vector<float> partial(splitHeads ? s.heads * n * hd * 2 : 0);
  float* pk0 = partial.data();
  float* pv0 = partial.data() + (splitHeads ? s.heads * n * hd : 0);
#pragma omp parallel
  {
    const int64_t rb = std::min(kRowBlock, longest);
    std::vector<float> P(rb * longest), dS(rb * longest);
    if (!splitHeads) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < groups; task++) {
        const int64_t g = task / s.kvHeads, kh = task % s.kvHeads;
        const int64_t t0 = seg.start(g), T = seg.length(g);
        float* dK = dk + t0 * s.sk + kh * hd;
        float* dV = dv + t0 * s.sv + kh * hd;
        zeroRows(dK, T, hd, s.sk);
        zeroRows(dV, T, hd, s.sv);
        for (int64_t h = kh * group; h < (kh + 1) * group; h++)
          backwardHead(s, in, t0, T, h, dK, s.sk, dV, s.sv, P.data(), dS.data());
      }
    } else {
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < seg.count * s.heads; task++) {
        const int64_t g = task / s.heads, h = task % s.heads;
        const int64_t t0 = seg.start(g), T = seg.length(g);
        float* pk = pk0 + (h * n + t0) * hd;
        float* pv = pv0 + (h * n + t0) * hd;
        zeroRows(pk, T, hd, hd);
        zeroRows(pv, T, hd, hd);
        backwardHead(s, in, t0, T, h, pk, hd, pv, hd, P.data(), dS.data());
      }
      // dk/dv rows of each kv head = sum of its query heads' partials, in head order.
#pragma omp for schedule(static)
      for (int64_t row = 0; row < s.kvHeads * n; row++) {
        const int64_t kh = row / n, t = row % n;
        float* dK = dk + t * s.sk + kh * hd;
        float* dV = dv + t * s.sv + kh * hd;
        for (int64_t c = 0; c < hd; c++) dK[c] = dV[c] = 0.0f;
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          const float* pk = pk0 + (h * n + t) * hd;
          const float* pv = pv0 + (h * n + t) * hd;
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
