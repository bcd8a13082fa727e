// Optimizer ops: the squared-norm reduction for global gradient clipping (fixed order), and one fused AdamW pass
// with the coefficients the shared reader derived.
#include "common.h"

namespace lmf {

void op::sumSquares(const SumSquaresArgs& p) {
  if (p.n == 0) return;
  cuda::sumSquares(p.out, p.x, p.n, scratchPartials(cuda::reducePartials(p.n)), stream());
}

namespace {

bool sameRanges(const AdamwRangeTable& a, const AdamwRangeTable& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (a[i].offset != b[i].offset || a[i].size != b[i].size || a[i].decay != b[i].decay) return false;
  return true;
}

// The table last staged to the device and where: a training run passes the same table every step, so it is
// uploaded once (the scratch area is only replaced when it grows, which the pointer check sees).
AdamwRangeTable g_stagedTable;
const void* g_stagedAt = nullptr;

}  // namespace

void op::adamwRanges(const AdamwRangesArgs& p) {
  if (p.table.empty()) return;
  AdamwRangeTable table = p.table;
  const int64_t chunks = cuda::adamwRangeChunks(table);
  const size_t bytes = table.size() * sizeof(AdamwRange);
  auto* dev = static_cast<AdamwRange*>(scratch(kScratchAdamwRanges, bytes));
  if (dev != g_stagedAt || !sameRanges(table, g_stagedTable)) {
    stagedUpload(dev, table.data(), bytes);  // queued: no host wait
    g_stagedTable = table;
    g_stagedAt = dev;
  }
  cuda::adamwRanges(p.param, p.grad, p.m, p.v, dev, static_cast<int64_t>(table.size()), chunks, p.coef,
                    p.coefNoDecay.decay, p.stepStats, p.clip, p.gradScale,
                    reinterpret_cast<cuda::bf16raw*>(p.paramBf16), stream());
}

void op::adamw(const AdamwArgs& p) {
  cuda::adamw(p.param, p.grad, p.m, p.v, p.n, p.coef, p.stepStats, p.clip, p.gradScale,
              reinterpret_cast<cuda::bf16raw*>(p.paramBf16), stream());
}

}  // namespace lmf
