// Token embedding gather (forward) and its scatter-add (backward).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "common.h"

namespace lmf {

namespace {

// Checks every id against the table's row count before any work, so a bad token id is a clear error.
template <class P>
void checkIds(const P& p, const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= vocab)
      p.fail("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) + " is outside the table's " +
             std::to_string(vocab) + " rows: the data was tokenized for a larger vocabulary than the model's vocab_size");
  }
}

}  // namespace

void op::embeddingForward(const EmbeddingForwardArgs& p) {
  const int64_t n = p.n, d = p.d;
  const bool acc = p.accumulate;
  float* out = p.out;
  const int32_t* ids = p.ids;
  const float* table = p.table;
  checkIds(p, ids, n, p.vocab);
#pragma omp parallel for schedule(static) if (n * d > kStreamParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float* src = table + static_cast<int64_t>(ids[i]) * d;
    float* dst = out + i * d;
    if (acc) {
#pragma omp simd
      for (int64_t j = 0; j < d; j++) dst[j] += src[j];
    } else {
      std::copy(src, src + d, dst);
    }
  }
}

// Positions are grouped by id (stable sort), then each id's rows are summed in position order by one thread.
// No atomics, and the result does not depend on the thread count.
void op::embeddingBackward(const EmbeddingBackwardArgs& p) {
  const int64_t n = p.n, d = p.d;
  const int32_t* ids = p.ids;
  const float* dout = p.dout;
  float* dt = p.dtable;
  checkIds(p, ids, n, p.vocab);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [ids](int64_t x, int64_t y) { return ids[x] < ids[y]; });
  std::vector<int64_t> runStart;
  for (int64_t i = 0; i < n; i++)
    if (i == 0 || ids[order[i]] != ids[order[i - 1]]) runStart.push_back(i);
  runStart.push_back(n);
  int64_t runs = static_cast<int64_t>(runStart.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16) if (n * d > kStreamParallelMin)
  for (int64_t r = 0; r < runs; r++) {
    float* dst = dt + static_cast<int64_t>(ids[order[runStart[r]]]) * d;
    for (int64_t i = runStart[r]; i < runStart[r + 1]; i++) {
      const float* src = dout + order[i] * d;
#pragma omp simd
      for (int64_t j = 0; j < d; j++) dst[j] += src[j];
    }
  }
}

}  // namespace lmf
