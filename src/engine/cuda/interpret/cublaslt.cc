// A model of cuBLASLt for the interpreted CUDA engine (include/cublasLt.h): descriptors checked as the library
// checks them, a heuristic with the library's alignment assumptions, and a reference GEMM (operands read exactly as
// stored, fp32 or bf16; products summed in double; fp32 result) queued on the stream like the library's kernel.
#include "cublasLt.h"
#include "cuda_bf16.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct cublasLtContext {
  int live = 1;
};
struct cublasLtMatmulDescOpaque {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  int32_t pointerMode = 0;
  uint32_t epilogue = 1;
};
struct cublasLtMatrixLayoutOpaque {
  cudaDataType_t type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
};
struct cublasLtMatmulPreferenceOpaque {
  uint64_t maxWorkspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D: the library's defaults
};

namespace {

constexpr uint64_t kAlgoMagic = 0x6c6d66696e746572ull;  // identifies an algorithm this model handed out

size_t typeBytes(cudaDataType_t t) { return t == CUDA_R_64F ? 8 : (t == CUDA_R_16BF || t == CUDA_R_16F) ? 2 : 4; }

// What an algorithm is for: the descriptor and layouts it was chosen with (a plan must not be reused for others).
uint64_t fingerprint(const cublasLtMatmulDescOpaque* d, const cublasLtMatrixLayoutOpaque* const l[4]) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  mix(uint64_t(d->compute));
  mix(uint64_t(d->transa));
  mix(uint64_t(d->transb));
  for (int i = 0; i < 4; i++) {
    mix(uint64_t(l[i]->type));
    mix(l[i]->rows);
    mix(l[i]->cols);
    mix(uint64_t(l[i]->ld));
  }
  return h;
}

// The largest vector access (bytes) a kernel for this alignment preference uses: up to 16-byte loads.
uint32_t vectorBytes(uint32_t minAlignment) { return minAlignment >= 16 ? 16 : minAlignment >= 8 ? 8 : minAlignment >= 4 ? 4 : 2; }

uint32_t actualAlignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

struct Shape {
  uint64_t m, n, k;
};

// Checks that the four layouts describe D[m, n] = op(A)[m, k] op(B)[k, n] + C; returns false when they do not.
bool shapeOf(const cublasLtMatmulDescOpaque* d, const cublasLtMatrixLayoutOpaque* A, const cublasLtMatrixLayoutOpaque* B,
             const cublasLtMatrixLayoutOpaque* C, const cublasLtMatrixLayoutOpaque* D, Shape& s) {
  const uint64_t m = d->transa ? A->cols : A->rows, kA = d->transa ? A->rows : A->cols;
  const uint64_t kB = d->transb ? B->cols : B->rows, n = d->transb ? B->rows : B->cols;
  if (kA != kB || C->rows != m || C->cols != n || D->rows != m || D->cols != n) return false;
  for (const auto* l : {A, B, C, D})
    if (l->ld < static_cast<int64_t>(l->rows) || l->ld < 1) return false;
  s = {m, n, kA};
  return true;
}

float loadElement(const void* base, cudaDataType_t t, uint64_t index) {
  if (t == CUDA_R_16BF) {
    uint16_t b;
    std::memcpy(&b, static_cast<const char*>(base) + index * 2, 2);
    const uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  return static_cast<const float*>(base)[index];
}

// Stores an fp32 result as the matrix's type: bf16 rounded to nearest even, as the library's epilogue does.
void storeElement(void* base, cudaDataType_t t, uint64_t index, float v) {
  if (t == CUDA_R_16BF) {
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    std::memcpy(static_cast<char*>(base) + index * 2, &b, 2);
    return;
  }
  static_cast<float*>(base)[index] = v;
}

uint64_t extentBytes(const cublasLtMatrixLayoutOpaque* l) {
  return l->rows == 0 || l->cols == 0 ? 0 : ((l->cols - 1) * uint64_t(l->ld) + l->rows) * typeBytes(l->type);
}

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasLtContext();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void) { return 130000; }

const char* cublasLtGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasLtGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
  }
  return "unknown status";
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
  auto* d = new cublasLtMatmulDescOpaque();
  d->compute = compute;
  d->scale = scale;
  *desc = d;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t size) {
  if (!d || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  int32_t* slot = nullptr;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: slot = &d->transa; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: slot = &d->transb; break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: slot = &d->pointerMode; break;
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: slot = reinterpret_cast<int32_t*>(&d->compute); break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: slot = reinterpret_cast<int32_t*>(&d->scale); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: slot = reinterpret_cast<int32_t*>(&d->epilogue); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(slot, buf, 4);
  if ((attr == CUBLASLT_MATMUL_DESC_TRANSA || attr == CUBLASLT_MATMUL_DESC_TRANSB) && (*slot < 0 || *slot > 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  if (!layout) return CUBLAS_STATUS_INVALID_VALUE;
  auto* l = new cublasLtMatrixLayoutOpaque();
  l->type = type;
  l->rows = rows;
  l->cols = cols;
  l->ld = ld;
  *layout = l;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
  *pref = new cublasLtMatmulPreferenceOpaque();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, size_t size) {
  if (!p || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&p->maxWorkspace, buf, 8);
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
      if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
      uint32_t v;
      std::memcpy(&v, buf, 4);
      if (v == 0 || (v & (v - 1))) return CUBLAS_STATUS_INVALID_VALUE;  // a power of two
      p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = v;
      return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE:
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:
      return size == sizeof(uint32_t) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_PREF_IMPL_MASK:
      return size == sizeof(uint64_t) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT:
      return size == sizeof(float) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* count) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!desc || !A || !B || !C || !D || !pref || !results || !count || requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  *count = 0;
  Shape s;
  if (!shapeOf(desc, A, B, C, D, s)) return CUBLAS_STATUS_INVALID_VALUE;
  // C and D are fp32, or bf16 with bf16 inputs (as the library supports them with fp32 compute).
  if (desc->compute != CUBLAS_COMPUTE_32F || desc->scale != CUDA_R_32F || A->type != B->type || C->type != D->type ||
      (C->type != CUDA_R_32F && !(C->type == CUDA_R_16BF && A->type == CUDA_R_16BF)) ||
      (A->type != CUDA_R_32F && A->type != CUDA_R_16BF))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool bf16 = A->type == CUDA_R_16BF;
  const uint32_t elem = static_cast<uint32_t>(typeBytes(A->type));
  // Operands must be at least element-aligned; the model's bf16 kernels also need pairs (4 bytes) of elements.
  if (pref->align[0] < elem || pref->align[1] < elem || pref->align[2] < 4 || pref->align[3] < 4)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (bf16 && (A->ld % 2 || B->ld % 2 || pref->align[0] < 4 || pref->align[1] < 4)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (C->type == CUDA_R_16BF && C->ld % 2) return CUBLAS_STATUS_NOT_SUPPORTED;
  const cublasLtMatrixLayoutOpaque* const ls[4] = {A, B, C, D};
  cublasLtMatmulHeuristicResult_t& r = results[0];
  std::memset(&r, 0, sizeof r);
  r.algo.data[0] = kAlgoMagic;
  r.algo.data[1] = fingerprint(desc, ls);
  for (int i = 0; i < 4; i++) r.algo.data[2 + i] = vectorBytes(pref->align[i]);
  r.workspaceSize = 0;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.f;
  *count = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void*, size_t,
                              cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!desc || !Adesc || !Bdesc || !Cdesc || !Ddesc || !alpha || !beta || !algo) return CUBLAS_STATUS_INVALID_VALUE;
  Shape s;
  if (!shapeOf(desc, Adesc, Bdesc, Cdesc, Ddesc, s)) return CUBLAS_STATUS_INVALID_VALUE;
  const cublasLtMatrixLayoutOpaque* const ls[4] = {Adesc, Bdesc, Cdesc, Ddesc};
  if (algo->data[0] != kAlgoMagic || algo->data[1] != fingerprint(desc, ls)) return CUBLAS_STATUS_INVALID_VALUE;
  if (lmf_interp::stickyError() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (s.m == 0 || s.n == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const cublasLtMatmulDescOpaque d = *desc;
  const cublasLtMatrixLayoutOpaque la = *Adesc, lb = *Bdesc, lc = *Cdesc, ld = *Ddesc;
  const uint64_t vec[4] = {algo->data[2], algo->data[3], algo->data[4], algo->data[5]};
  lmf_interp::enqueueHostTask(stream, "cublasLtMatmul", [=] {
    const void* ptrs[4] = {A, B, C, D};
    const cublasLtMatrixLayoutOpaque* lays[4] = {&la, &lb, &lc, &ld};
    static const char* names = "ABCD";
    for (int i = 0; i < 4; i++) {
      if ((i == 2 && b == 0.f) || (s.k == 0 && i < 2)) continue;  // C is not read when beta is 0
      const uint64_t bytes = extentBytes(lays[i]);
      if (bytes && !lmf_interp::isDeviceRange(ptrs[i], bytes)) {
        const std::string msg = std::string("cublasLtMatmul: matrix ") + names[i] + " (" + std::to_string(bytes) +
                                " bytes) is not inside one device allocation";
        lmf_interp::hostTaskFault(msg.c_str(), cudaErrorIllegalAddress);
        return;
      }
      if (actualAlignment(ptrs[i]) < vec[i]) {
        char msg[320];
        std::snprintf(msg, sizeof msg,
                      "cublasLtMatmul: matrix %c at %p is %u-byte aligned but the algorithm was chosen for %u-byte "
                      "vector accesses (set CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES from the pointer)",
                      names[i], ptrs[i], actualAlignment(ptrs[i]), unsigned(vec[i]), names[i]);
        lmf_interp::hostTaskFault(msg, cudaErrorMisalignedAddress);
        return;
      }
    }
    // Pack op(A) as [m][k] and op(B) as [n][k] so each output is one contiguous dot product.
    std::vector<float> ap(s.m * s.k), bp(s.n * s.k);
    for (uint64_t i = 0; i < s.m; i++)
      for (uint64_t p = 0; p < s.k; p++)
        ap[i * s.k + p] = loadElement(A, la.type, d.transa ? i * la.ld + p : p * la.ld + i);
    for (uint64_t j = 0; j < s.n; j++)
      for (uint64_t p = 0; p < s.k; p++)
        bp[j * s.k + p] = loadElement(B, lb.type, d.transb ? p * lb.ld + j : j * lb.ld + p);
    const cudaDataType_t cType = lc.type;
    for (uint64_t j = 0; j < s.n; j++) {
      for (uint64_t i = 0; i < s.m; i++) {
        const float* x = &ap[i * s.k];
        const float* y = &bp[j * s.k];
        double acc = 0;
        for (uint64_t p = 0; p < s.k; p++) acc += double(x[p]) * y[p];
        double v = double(a) * acc;
        if (b != 0.f) v += double(b) * loadElement(C, cType, j * lc.ld + i);
        storeElement(D, ld.type, j * ld.ld + i, static_cast<float>(v));
      }
    }
  });
  return lmf_interp::stickyError() == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
