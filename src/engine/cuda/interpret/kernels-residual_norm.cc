// The kernels of ../residual_norm.cu built by g++ for the interpreted CUDA engine (LMF_CUDA_INTERPRET; see
// include/lmf_interpret/core.h). One wrapper per .cu file: their file-local names would clash in one unit.
#include "../residual_norm.cu"
