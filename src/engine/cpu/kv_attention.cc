// Attention for generation with a KV cache: n new queries at positions past..past+n-1 of one sequence attend to
// cached keys/values 0..past+i. Work per token is a few dot products per head, so plain loops (vectorised over
// head_dim) beat a GEMM call here; heads and queries run in parallel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "mathfn.h"

namespace lmf {

// attentionDecode: the shape's seq queries attend to keys() = past + seq cached keys/values.
void op::attentionDecode(const AttentionDecodeArgs& args) {
  const int64_t sq = args.sq, sk = args.sk, sv = args.sv, n = args.seq, past = args.past, H = args.heads;
  const int64_t hd = args.headDim, total = args.keys(), group = args.group();
  const float scale = args.scale;
  float* out = args.out;
  const float *q = args.q, *k = args.kCache, *v = args.vCache;
  if (n == 0) return;
#pragma omp parallel
  {
    std::vector<float> p(total);
    std::vector<float> acc(hd);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n * H; task++) {
      const int64_t i = task / H, h = task % H, kh = h / group, last = past + i;
      const float* Q = q + i * sq + h * hd;
      float mx = -INFINITY;
      for (int64_t j = 0; j <= last; j++) {
        const float* Kj = k + j * sk + kh * hd;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < hd; d++) dot += Q[d] * Kj[d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= last; j++) {
        p[j] = fastExp(p[j] - mx);
        sum += p[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j <= last; j++) {
        const float w = p[j] * inv;
        const float* Vj = v + j * sv + kh * hd;
#pragma omp simd
        for (int64_t d = 0; d < hd; d++) acc[d] += w * Vj[d];
      }
      std::copy(acc.begin(), acc.end(), out + i * H * hd + h * hd);
    }
  }
}

}  // namespace lmf
