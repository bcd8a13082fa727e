// Token embedding gather (forward) and its scatter-add (backward). The ids live on the device, so their range is
// checked by the kernels, which raise the device error flag (reported at the next download or synchronize).
#include "common.h"

namespace lmf {

void op::embeddingForward(const EmbeddingForwardArgs& p) {
  cuda::embeddingForward(p.out, p.ids, p.table, p.n, p.d, p.vocab, p.accumulate, deviceErrorFlag(), stream());
}

void op::embeddingBackward(const EmbeddingBackwardArgs& p) {
  if (p.n == 0) return;
  const size_t bytes = cuda::embeddingBackwardScratch(p.n);
  void* sortScratch = scratch(kScratchSort, bytes);
  cuda::embeddingBackward(p.dtable, p.ids, p.dout, p.n, p.d, p.vocab, sortScratch, bytes, deviceErrorFlag(), stream());
}

}  // namespace lmf
