// The output head fused with cross-entropy: logits are produced for a chunk of rows at a time
// (never [N, V] at once), reduced to the loss, turned into dlogits in place, and consumed by the two
// gradient GEMMs before the next chunk. Rows with target -100 are ignored (zero loss, zero gradient).
// headLogprob is the same head for evaluation: per row, the target's log-probability and the argmax.
#include "blas.h"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "common.h"
#include "mathfn.h"

namespace lmf {

namespace {

// The logits chunk (up to ~128 MB), kept between calls so its pages are not re-faulted every step. It is
// engine scratch, not a buffer, so allocatedBytes() does not count it. JavaScript calls ops from one thread,
// so one scratch area suffices.
struct Scratch {
  float* ptr = nullptr;
  size_t floats = 0;
  float* get(size_t n) {
    if (n > floats) {
      std::free(ptr);
      ptr = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      floats = ptr ? n : 0;
    }
    return ptr;
  }
};
Scratch g_logits;

// Rows per chunk: large enough that the dW GEMM (inner dimension = rows) runs near peak and the [V, d]
// gradient is streamed few times, small enough that the chunk stays under ~128 MB (192 rows for a
// 151,936-token vocabulary). Measured on one core, N=512, d=256, V=151936: fwd+bwd at 93 / 101 / 114 GFLOP/s
// for 64 / 128 / 256 rows. LMFORGE_CE_CHUNK overrides it.
int64_t chunkRows(int64_t n, int64_t vocab) {
  const char* env = std::getenv("LMFORGE_CE_CHUNK");
  int64_t r = env ? std::atoll(env) : 0;
  if (r <= 0) {
    r = (int64_t(32) << 20) / std::max<int64_t>(vocab, 1);
    r = std::max<int64_t>(32, std::min<int64_t>(256, r / 32 * 32));
  }
  return std::max<int64_t>(1, std::min(r, n));
}

// Every target is -100 (ignored) or a vocabulary index.
template <typename OpArgs>
void checkTargets(const OpArgs& p, const int32_t* targets, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; i++) {
    if (targets[i] != kIgnoreTarget && (targets[i] < 0 || targets[i] >= V))
      p.fail("target " + std::to_string(targets[i]) + " at row " + std::to_string(i) + " is outside the vocabulary of " +
               std::to_string(V) + " (use -100 to ignore a position)");
  }
}

}  // namespace

void op::headCrossEntropy(const HeadCrossEntropyArgs& p) {
  const int64_t n = p.n, d = p.d, V = p.vocab;
  const float gradScale = p.gradScale;
  double* lossOut = p.lossOut;
  const float *h = p.h, *w = p.w;
  const int32_t* targets = p.targets;
  float *dh = p.dh, *dw = p.dw, *logitsOut = p.logitsOut;
  checkTargets(p, targets, n, V);
  if (n == 0) return;
  const bool grads = dh || dw;
  const int64_t R = chunkRows(n, V);
  float* L = g_logits.get(static_cast<size_t>(R * V));
  if (!L) p.fail("out of memory for the logits chunk (" + std::to_string(R) + " x " + std::to_string(V) + " floats)");
  std::vector<double> rowLoss(n, 0.0);
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)V, (blasint)d, 1.0f, h + r0 * d,
                (blasint)d, w, (blasint)d, 0.0f, L, (blasint)V);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
      float* row = L + i * V;
      if (logitsOut) std::copy(row, row + V, logitsOut + (r0 + i) * V);
      const int32_t t = targets[r0 + i];
      if (t == kIgnoreTarget) {
        if (grads) std::fill(row, row + V, 0.0f);
        continue;
      }
      float mx = row[0];
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < V; j++) mx = std::max(mx, row[j]);
      const float target = row[t];
      const double sum = expShiftSum(row, grads ? row : nullptr, V, mx);
      if (grads) {
        // dlogits = (softmax - onehot) * gradScale, in place over the exponentials.
        const float k = static_cast<float>(gradScale / sum);
#pragma omp simd
        for (int64_t j = 0; j < V; j++) row[j] *= k;
        row[t] -= gradScale;
      }
      rowLoss[r0 + i] = static_cast<double>(mx) + std::log(sum) - target;
    }
    if (dh)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)d, (blasint)V, 1.0f, L, (blasint)V,
                  w, (blasint)d, 0.0f, dh + r0 * d, (blasint)d);
    if (dw)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)V, (blasint)d, (blasint)m, 1.0f, L, (blasint)V,
                  h + r0 * d, (blasint)d, 1.0f, dw, (blasint)d);
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += rowLoss[i];
  lossOut[0] += total;
}

// Rows are scored in the same chunks as the loss. Per row: one pass for the maximum and its first index, one for
// the sum of exponentials (float blocks, double total, as the loss), then logprob = logit[t] - max - log(sum).
// A row of only -inf or NaN has no maximum: its argmax is 0 (the harness's models never produce one).
void op::headLogprob(const HeadLogprobArgs& p) {
  const int64_t n = p.n, d = p.d, V = p.vocab;
  checkTargets(p, p.targets, n, V);
  if (n == 0) return;
  const int64_t R = chunkRows(n, V);
  float* L = g_logits.get(static_cast<size_t>(R * V));
  if (!L) p.fail("out of memory for the logits chunk (" + std::to_string(R) + " x " + std::to_string(V) + " floats)");
  for (int64_t r0 = 0; r0 < n; r0 += R) {
    const int64_t m = std::min(R, n - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)V, (blasint)d, 1.0f, p.h + r0 * d,
                (blasint)d, p.w, (blasint)d, 0.0f, L, (blasint)V);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
      const float* row = L + i * V;
      const int32_t t = p.targets[r0 + i];
      if (t == kIgnoreTarget) {
        p.logprobOut[r0 + i] = 0.0;
        p.argmaxOut[r0 + i] = -1;
        continue;
      }
      // The maximum by vectorised blocks (the first block holding it wins), then its first index in that block.
      float mx = -INFINITY;
      int64_t block = 0;
      for (int64_t b = 0; b < V; b += 256) {
        const int64_t e = std::min<int64_t>(b + 256, V);
        float bm = -INFINITY;
#pragma omp simd reduction(max : bm)
        for (int64_t j = b; j < e; j++) bm = std::max(bm, row[j]);
        if (bm > mx) {
          mx = bm;
          block = b;
        }
      }
      int64_t best = block;
      while (best + 1 < V && row[best] != mx) best++;
      const double sum = expShiftSum(row, nullptr, V, mx);
      p.logprobOut[r0 + i] = static_cast<double>(row[t]) - static_cast<double>(mx) - std::log(sum);
      p.argmaxOut[r0 + i] = static_cast<int32_t>(best);
    }
  }
}

}  // namespace lmf
