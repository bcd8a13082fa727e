// The few CBLAS / OpenBLAS declarations the CPU engine uses, written out here so the engine builds against
// libopenblas without its development headers (the CUDA host has the library but not cblas.h). They are the
// LP64 interface (32-bit blasint) that Debian and Ubuntu ship as libopenblas.so.
#pragma once

extern "C" {
typedef int blasint;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB, blasint m, blasint n,
                 blasint k, float alpha, const float* a, blasint lda, const float* b, blasint ldb, float beta, float* c,
                 blasint ldc);
void openblas_set_num_threads(int threads);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}
