// Plain parameter structs that the argument readers (op_args.h) fill and both engines' kernels take as they are:
// the CPU kernels (src/engine/cpu) and the CUDA launchers (src/engine/cuda/kernels.cuh, passed by value to
// kernels). No Node-API types here, so nvcc can include it.
#pragma once
#include <math.h>

#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define LMF_HOST_DEVICE __host__ __device__
#else
#define LMF_HOST_DEVICE
#endif

namespace lmf {

// Elements a strided 2-D view of `rows` rows of width `cols` with row stride `ld` spans (0 when empty).
inline int64_t span2d(int64_t rows, int64_t cols, int64_t ld) {
  return (rows <= 0 || cols <= 0) ? 0 : (rows - 1) * ld + cols;
}

// The attention prologue (qkPrep) over n tokens of sequences of seq tokens: q and k heads are the first
// (heads + kvHeads) * headDim columns of rows with stride qkvStride.
struct QkPrepShape {
  int64_t n = 0, seq = 0, heads = 0, kvHeads = 0, headDim = 0, qkvStride = 0;
  LMF_HOST_DEVICE int64_t nh() const { return heads + kvHeads; }  // heads normalised and rotated per token
};

struct QkPrepForwardShape : QkPrepShape {
  double eps = 0;  // of the per-head RMSNorm
};

// Causal attention with grouped-query heads over batch sequences of seq query rows. Query row i sits at position
// past + i and sees keys 0..past+i of its sequence, so each sequence has keys() = past + seq key rows: past is 0
// in training, the cached length when decoding with a KV cache. q/k/v (and dq/dk/dv) rows have strides sq/sk/sv;
// out/dout are packed [rows, heads * headDim].
// With document masking (training only) `segments` documents split the rows (their bounds travel beside the shape).
struct AttentionShape {
  int64_t sq = 0, sk = 0, sv = 0, batch = 0, seq = 0, past = 0, heads = 0, kvHeads = 0, headDim = 0;
  float scale = 0;
  int64_t segments = 0;
  LMF_HOST_DEVICE int64_t n() const { return batch * seq; }         // query rows
  LMF_HOST_DEVICE int64_t keys() const { return past + seq; }       // key rows per sequence
  LMF_HOST_DEVICE int64_t od() const { return heads * headDim; }    // packed width of out / dout
  LMF_HOST_DEVICE int64_t group() const { return heads / kvHeads; }  // query heads per kv head
};

// The element functions of activationForward/Backward (the codes native.ts sends).
enum ActivationKind : int { kGelu = 0, kGeluTanh = 1, kSilu = 2 };

// A cross-entropy target that contributes no loss and no gradient.
constexpr int32_t kIgnoreTarget = -100;

// One AdamW step's coefficients, derived in double from the hyperparameters and rounded once to float, so both
// engines apply the same values: p = p * decay - stepSize * m / (sqrt(v) / bc2Sqrt + eps) after
// m += (g * gradScale - m) * oneMinusBeta1 and v = v * beta2 + oneMinusBeta2 * (g * gradScale)^2.
struct AdamwCoefficients {
  float decay = 0;          // 1 - lr * weightDecay
  float beta2 = 0;
  float oneMinusBeta1 = 0;  // 1 - beta1
  float oneMinusBeta2 = 0;  // 1 - beta2
  float eps = 0, gradScale = 0;
  float stepSize = 0;  // lr / (1 - beta1^step)
  float bc2Sqrt = 0;   // sqrt(1 - beta2^step)
};

// One parameter's AdamW update, the one place both engines' kernels (adamw, adamwRanges) compute it; `decay` is
// a.decay, or 1 for a parameter without weight decay. Returns the new parameter value (also stored in p).
LMF_HOST_DEVICE inline float adamwElement(float& p, float g, float& m, float& v, float decay, const AdamwCoefficients& a,
                                          float gradScale) {
  const float gr = g * gradScale;
  const float pd = p * decay;
  const float mi = m + (gr - m) * a.oneMinusBeta1;
  const float vi = v * a.beta2 + a.oneMinusBeta2 * gr * gr;
  m = mi;
  v = vi;
  p = pd - a.stepSize * mi / (sqrtf(vi) / a.bc2Sqrt + a.eps);
  return p;
}

// A range of the flat parameter layout for adamwRanges: elements [offset, offset + size) of its spans, with weight
// decay or without. `firstChunk` is the CUDA launch's bookkeeping (the range's first chunk of elements).
struct AdamwRange {
  int64_t offset = 0, size = 0, firstChunk = 0;
  int32_t decay = 0;
};
using AdamwRangeTable = std::vector<AdamwRange>;

// The gradient scale of an AdamW step from its statistics (loss sum, gradient sum of squares): gradScale times
// PyTorch's clip_grad_norm_ coefficient min(1, clip / (norm + 1e-6)) (1 when clip <= 0), computed in double as the
// trainer did on the host, or -1 when the loss or the norm is not finite: the step is skipped.
LMF_HOST_DEVICE inline double adamwStepScale(double lossSum, double sumSquares, double clip, double gradScale) {
  // x - x is 0 exactly when x is finite (no fast-math in either engine's build).
  if (!(lossSum - lossSum == 0.0) || !(sumSquares - sumSquares == 0.0)) return -1.0;
  double coef = 1.0;
  if (clip > 0) {
    coef = clip / (sqrt(sumSquares) + 1e-6);
    if (coef > 1.0) coef = 1.0;
  }
  return gradScale * coef;
}

}  // namespace lmf
