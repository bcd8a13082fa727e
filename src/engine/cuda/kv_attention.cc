// Attention for generation with a KV cache: the forward kernel with queries at positions past.. over the
// past + seq cached keys, batch 1, no log-sum-exp.
#include "common.h"

namespace lmf {

void op::attentionDecode(const AttentionDecodeArgs& p) {
  requireAttentionKernel(p.kOp, p);
  if (p.seq == 0) return;
  cuda::attentionForward({p.out, false}, nullptr, {p.q, false}, {p.kCache, false}, {p.vCache, false}, p, nullptr,
                        stream());
}

}  // namespace lmf
