// cuBLASLt GEMMs: the only file that needs cublasLt.h (the build compiles it only where that header exists).
// Row-major C[m, n] = op(A)[m, k] · op(B)[k, n] is computed as the column-major product
// C^T[n, m] = op(B)^T · op(A)^T, so B is cuBLAS's first operand and A its second, with no data movement.
// bf16 mode: bf16 A/B, fp32 or bf16 C/D, CUBLAS_COMPUTE_32F (fp32 accumulation), like autocast. fp32 mode: all fp32 with
// CUBLAS_COMPUTE_32F, which never uses TF32, for exact checks. Descriptors and the heuristic's algorithm are
// cached per shape: a training step repeats the same few dozen shapes.
#include <cublasLt.h>

#include <cstdio>
#include <map>
#include <string>
#include <tuple>

#include "common.h"
#include "gemm.h"

namespace lmf {

namespace {

constexpr size_t kWorkspaceBytes = size_t(64) << 20;  // cuBLASLt's recommendation for Hopper is 32 MiB+

void ltCheck(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw OpError(std::string("matmul: cuBLASLt ") + what + " failed with status " + std::to_string(static_cast<int>(st)) +
                " (" + cublasLtGetStatusString(st) + ")");
}

cublasLtHandle_t handle() {
  static cublasLtHandle_t h = nullptr;
  if (!h) ltCheck(cublasLtCreate(&h), "cublasLtCreate");
  return h;
}

// The largest power of two (at most 256, cuBLASLt's default assumption) dividing the address.
uint32_t alignmentOf(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

// A plan is valid for one shape, type and set of operand alignments: an algorithm chosen for 16-byte aligned
// operands uses vector loads that fault on a less aligned pointer (a view at an odd offset of a flat buffer).
using PlanKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, uint32_t,
                           uint32_t, uint32_t, bool>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

std::map<PlanKey, Plan> g_plans;

// Layout of a column-major matrix with `rows` x `cols` and leading dimension ld.
cublasLtMatrixLayout_t layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  ltCheck(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld),
          "cublasLtMatrixLayoutCreate");
  return l;
}

// The cached plan of this shape and these operand alignments, or nullptr when cuBLASLt has no algorithm for it
// (remembered too). In cuBLASLt's column-major view our B is its first operand ("A") and our A its second ("B").
const Plan* planFor(const Gemm& g, bool accumulate) {
  const uint32_t alignFirst = alignmentOf(g.b), alignSecond = alignmentOf(g.a), alignC = alignmentOf(g.c);
  PlanKey key{g.transA, g.transB, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.bf16Inputs, accumulate, alignFirst, alignSecond,
              alignC, g.bf16Output};
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return it->second.desc ? &it->second : nullptr;
  Plan p;
  const cudaDataType_t in = g.bf16Inputs ? CUDA_R_16BF : CUDA_R_32F;
  ltCheck(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // Column-major view: first operand is B (op = transB), second is A (op = transA).
  cublasOperation_t opFirst = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opSecond = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  ltCheck(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opFirst, sizeof opFirst), "set TRANSA");
  ltCheck(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opSecond, sizeof opSecond), "set TRANSB");
  // Stored shapes in column-major terms. B row-major [k, n] (ld ldb) is column-major [n, k]; transposed
  // B row-major [n, k] is column-major [k, n]. Likewise for A.
  p.a = g.transB ? layout(in, g.k, g.n, g.ldb) : layout(in, g.n, g.k, g.ldb);
  p.b = g.transA ? layout(in, g.m, g.k, g.lda) : layout(in, g.k, g.m, g.lda);
  p.c = layout(g.bf16Output ? CUDA_R_16BF : CUDA_R_32F, g.n, g.m, g.ldc);
  cublasLtMatmulPreference_t pref = nullptr;
  ltCheck(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  uint64_t ws = kWorkspaceBytes;
  ltCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
          "set workspace");
  // The heuristic assumes 256-byte aligned operands unless told otherwise.
  const uint32_t align[4] = {alignFirst, alignSecond, alignC, alignC};  // A, B, C, D; C and D are one matrix
  const cublasLtMatmulPreferenceAttributes_t alignAttr[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; i++)
    ltCheck(cublasLtMatmulPreferenceSetAttribute(pref, alignAttr[i], &align[i], sizeof align[i]), "set alignment");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle(), p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED is how the heuristic says it has no algorithm for this configuration: the caller falls back.
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) found = 0;
  else ltCheck(st, "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    g_plans.emplace(key, Plan{});
    return nullptr;
  }
  p.algo = result.algo;
  return &g_plans.emplace(key, p).first->second;
}

}  // namespace

bool gemmSupported(const Gemm& g) { return g.m == 0 || g.n == 0 || planFor(g, g.beta != 0.f) != nullptr; }

void gemm(const Gemm& g, cudaStream_t stream) {
  if (g.m == 0 || g.n == 0) return;
  const Plan* p = planFor(g, g.beta != 0.f);
  if (!p)
    throw OpError("matmul: cuBLASLt has no algorithm for m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
                  " k=" + std::to_string(g.k) + " lda=" + std::to_string(g.lda) + " ldb=" + std::to_string(g.ldb) +
                  " ldc=" + std::to_string(g.ldc) + (g.bf16Inputs ? " in bf16" : " in fp32"));
  void* ws = scratch(kScratchGemm, kWorkspaceBytes);
  ltCheck(cublasLtMatmul(handle(), p->desc, &g.alpha, g.b, p->a, g.a, p->b, &g.beta, g.c, p->c, g.c, p->c, &p->algo,
                         ws, kWorkspaceBytes, stream),
          "cublasLtMatmul");
}

const char* gemmLibrary() {
  static char buf[64];
  std::snprintf(buf, sizeof buf, "cuBLASLt %zu", cublasLtGetVersion());
  return buf;
}

}  // namespace lmf
