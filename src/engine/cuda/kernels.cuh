// Launchers of the CUDA kernels: plain C++ declarations (no CUDA or Node types beyond cudaStream_t), so the
// Node-API glue (.cc, built by g++) and the kernels (.cu, built by nvcc) share one contract. Every launcher
// only enqueues work on `stream`; none synchronises. Pointers are device pointers; shapes are the structs the
// shared argument readers fill (../native/params.h), validated before any launch, so kernels assume valid
// arguments.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/params.h"

namespace lmf {
namespace cuda {

using bf16raw = uint16_t;  // the bit pattern of a __nv_bfloat16, so the glue needs no cuda_bf16.h

// An activation in device memory (an ACT argument of the op table): f32 or bf16 elements.
struct DevAct {
  void* p = nullptr;
  bool bf16 = false;
};
struct DevActIn {
  const void* p = nullptr;
  bool bf16 = false;
};

// ---- memory.cu: fills, elementwise, bf16 conversion, deterministic reductions ----
void fillF32(float* x, int64_t n, float v, cudaStream_t s);
void fillF64(double* x, int64_t n, double v, cudaStream_t s);
void fillI32(int32_t* x, int64_t n, int32_t v, cudaStream_t s);
void fillBf16(bf16raw* x, int64_t n, bf16raw v, cudaStream_t s);
void addF32(float* out, const float* a, const float* b, int64_t n, cudaStream_t s);
void scaleF32(float* x, int64_t n, float v, cudaStream_t s);
// dst[r, c] (packed, width cols) = bf16(src[r * ld + c]), round to nearest even.
void toBf16(bf16raw* dst, const float* src, int64_t rows, int64_t cols, int64_t ld, cudaStream_t s);
// dst[r * ldd + c] = src[r * lds + c] for a [rows, cols] matrix, converted between f32 and bf16 (round to
// nearest even) as the two dtypes say: the engine's one cast kernel (copy, GEMM operands, transfers).
void convertRows(DevAct dst, int64_t ldd, DevActIn src, int64_t lds, int64_t rows, int64_t cols, cudaStream_t s);
// C[r, :] = bias for every row r (row stride ldc); the GEMM then runs with beta = 1.
void broadcastRows(DevAct c, const float* bias, int64_t rows, int64_t cols, int64_t ldc, cudaStream_t s);
// out[0] += sum of x^2 (double), in a fixed order: per-block partials then one ordered final pass.
// `partials` holds at least reducePartials(n) doubles.
int64_t reducePartials(int64_t n);
void sumSquares(double* out, const float* x, int64_t n, double* partials, cudaStream_t s);
// db[c] += sum over rows of dy[r * ldy + c], summed in double in row order (deterministic).
// `partials` holds at least colSumPartials(rows, cols) doubles.
int64_t colSumPartials(int64_t rows, int64_t cols);
void columnSums(float* db, DevActIn dy, int64_t rows, int64_t cols, int64_t ldy, double* partials, cudaStream_t s);
// out[0] += sum of x[0..n) (double), fixed order.
void sumF64(double* out, const double* x, int64_t n, cudaStream_t s);

// ---- embedding.cu ----
void embeddingForward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t d, int64_t vocab,
                      bool accumulate, int* errorFlag, cudaStream_t s);
// Bytes of scratch embeddingBackward needs for n ids (sort keys/values and CUB's temporary storage).
size_t embeddingBackwardScratch(int64_t n);
void embeddingBackward(float* dtable, const int32_t* ids, const float* dout, int64_t n, int64_t d, int64_t vocab,
                       void* scratch, size_t scratchBytes, int* errorFlag, cudaStream_t s);

// ---- norm.cu: x (the residual stream) f32; out and dout f32 or bf16 ----
void rmsnormForward(DevAct out, float* rstd, const float* x, const float* w, int64_t rows, int64_t d, float eps,
                    cudaStream_t s);
// `partials` holds at least normPartials(rows, d) doubles (per row-block column sums for dw/db).
int64_t normPartials(int64_t rows, int64_t d, int64_t columnsPerSum);
void rmsnormBackward(float* dx, float* dw, DevActIn dout, const float* x, const float* w, const float* rstd,
                     int64_t rows, int64_t d, bool accumulateDx, double* partials, cudaStream_t s);
void layernormForward(DevAct out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                      int64_t rows, int64_t d, float eps, cudaStream_t s);
void layernormBackward(float* dx, float* dw, float* db, DevActIn dout, const float* x, const float* w,
                       const float* mean, const float* rstd, int64_t rows, int64_t d, bool accumulateDx,
                       double* partials, cudaStream_t s);

// ---- rope.cu: QK-norm + RoPE ----
// positions: each token's row of cos/sin (device memory), or null for t % seq.
void qkPrepForward(DevAct out, float* rstd, DevActIn qkv, const float* qw, const float* kw, const float* cosT,
                   const float* sinT, const int32_t* positions, const QkPrepShape& sh, float eps, cudaStream_t s);
// `partials` holds at least qkPrepPartials(sh) doubles when a norm weight is given.
int64_t qkPrepPartials(const QkPrepShape& sh);
// The backward's weight-gradient rows in shared memory limit headDim (to 3072) when a norm weight is given.
bool qkPrepBackwardSupported(int64_t headDim);
void qkPrepBackward(DevAct dqkv, float* dqw, float* dkw, DevActIn dout, DevActIn qkv, const float* rstd,
                    const float* qw, const float* kw, const float* cosT, const float* sinT, const int32_t* positions,
                    const QkPrepShape& sh,
                    double* partials, cudaStream_t s);

// ---- attention.cu: flash-style causal attention with GQA (no T x T matrix anywhere) ----
// The forward also serves decoding with a KV cache: sh.past > 0, batch 1.
bool attentionSupported(int64_t headDim);  // headDim <= 128
// out [batch*seq, heads*headDim] packed; lse [batch, heads, seq] (may be null when decoding).
// cu: document masking's cumulative sequence lengths (sh.segments + 1 entries, device memory), or null.
void attentionForward(DevAct out, float* lse, DevActIn q, DevActIn k, DevActIn v, const AttentionShape& sh,
                      const int32_t* cu, cudaStream_t s);
// Training only (sh.past == 0). `scratch` holds at least batch*heads*seq floats (the rowwise dot(dO, O)).
// q, k, v, out and the gradients share one dtype (f32 or bf16; the glue checks).
void attentionBackward(DevAct dq, DevAct dk, DevAct dv, DevActIn dout, DevActIn q, DevActIn k, DevActIn v,
                       DevActIn out, const float* lse, const AttentionShape& sh, const int32_t* cu, float* scratch,
                       cudaStream_t s);

// ---- activation.cu ----
// Every activation of one call has the dtype of the first (the glue checks).
void swigluForward(DevAct out, DevActIn gu, int64_t rows, int64_t f, cudaStream_t s);
void swigluBackward(DevAct dgu, DevActIn dout, DevActIn gu, int64_t rows, int64_t f, cudaStream_t s);
// kind: 0 gelu (erf), 1 gelu_tanh, 2 silu
void activationForward(DevAct out, DevActIn x, int64_t n, int kind, cudaStream_t s);
void activationBackward(DevAct dx, DevActIn dout, DevActIn x, int64_t n, int kind, cudaStream_t s);

// ---- loss.cu: the softmax/cross-entropy step of the chunked head, on fp32 or bf16 logits ----
// Row i of the chunk starts at logits + i * ld (ld a multiple of 8; the columns past vocab are never read).
// For rows [0, m): rowLoss[i] = logsumexp - logit[target] (0 for ignored rows), one read pass with an online
// softmax; with `grads` the chunk is overwritten in place by (softmax - onehot) * gradScale in its own type (0
// rows for ignored targets); `logitsCopy` (optional, fp32, row stride vocab) receives the logits as read. Bad
// targets set *errorFlag.
void crossEntropyChunk(float* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets, int64_t m,
                       int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s);
void crossEntropyChunk(bf16raw* logits, int64_t ld, double* rowLoss, float* logitsCopy, const int32_t* targets,
                       int64_t m, int64_t vocab, float gradScale, bool grads, int* errorFlag, cudaStream_t s);
// For rows [0, m) of the chunk, one read pass: logprob[i] = log softmax(row)[target], argmax[i] = the row's first
// maximum; ignored rows get 0 and -1. Bad targets set *errorFlag.
void logprobChunk(const float* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets, int64_t m,
                  int64_t vocab, int* errorFlag, cudaStream_t s);
void logprobChunk(const bf16raw* logits, int64_t ld, double* logprob, int32_t* argmax, const int32_t* targets,
                  int64_t m, int64_t vocab, int* errorFlag, cudaStream_t s);

// ---- optim.cu ----
// The coefficients are the ones the shared reader derived (the CPU engine uses the same). With `stats` (device
// memory: loss sum, gradient sum of squares) the clip coefficient and the skip of a non-finite step are decided
// on the device (adamwStepScale).
// pBf16 (optional) receives the new weights rounded to bf16 (the weight copies the bf16 GEMMs read).
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoefficients& a, const double* stats,
           double clip, double gradScale, bf16raw* pBf16, cudaStream_t s);
// adamwRanges: numbers the ranges' chunks (sets each firstChunk) and returns how many blocks the launch takes.
int64_t adamwRangeChunks(AdamwRangeTable& table);
// The same step over `count` ranges (table in device memory, numbered by adamwRangeChunks) in one launch;
// decayOff is the decay factor of ranges without weight decay; pBf16 (optional) the bf16 weight copy.
void adamwRanges(float* p, const float* g, float* m, float* v, const AdamwRange* table, int64_t count, int64_t chunks,
                 const AdamwCoefficients& a, float decayOff, const double* stats, double clip, double gradScale,
                 bf16raw* pBf16, cudaStream_t s);

// Error codes a kernel can raise through the device error flag (copied back with the next synchronisation).
enum DeviceError : int { kErrNone = 0, kErrTokenId = 1, kErrTarget = 2 };

}  // namespace cuda
}  // namespace lmf
