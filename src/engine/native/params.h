// Plain parameter structs that the argument readers (op_args.h) fill and both engines' kernels take as they are:
// the CPU kernels (src/engine/cpu) and the CUDA launchers (src/engine/cuda/kernels.cuh, passed by value to
// kernels). No Node-API types here, so nvcc can include it.
#pragma once
#include <cstdint>

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

}  // namespace lmf
