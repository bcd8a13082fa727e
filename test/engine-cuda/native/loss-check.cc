// Checks src/engine/cuda/loss.cu (or a mutated copy of it, linked in its place) on the interpreted CUDA engine
// against a float64 reference on bf16 logits: the cross-entropy kernel's row losses and in-place bf16 dlogits, and
// the log-probability kernel's log-probabilities and first-index argmax (rows with tied maxima in different
// threads' columns and in one thread's vector), with ignored rows and a vocabulary that is no multiple of 8.
// Exit status 0 when every check passes, 1 when one does not, 2 when a CUDA call failed (a fault). Built by
// test/engine-cuda/loss-mutation.test.ts.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels.cuh"

namespace {

using lmf::cuda::bf16raw;

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("%s: %s\n", what, cudaGetErrorString(e));
  return false;
}

bf16raw toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<bf16raw>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

double fromBf16(bf16raw b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

int check(int64_t rows, int64_t vocab, std::mt19937& rng) {
  const int64_t ld = (vocab + 7) / 8 * 8;
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  std::vector<bf16raw> logits(rows * ld, 0);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < vocab; j++) logits[i * ld + j] = toBf16(u(rng));
  // Row 0: its maximum at columns 3, 5 (the same vector), 258 (vector 32: the same thread when a row has 32 threads,
  // as at 517 columns) and 300 (another thread): 3 must win.
  if (vocab > 300)
    for (int64_t j : {3, 5, 258, 300}) logits[0 * ld + j] = toBf16(9.f);
  std::vector<int32_t> targets(rows);
  for (int64_t i = 0; i < rows; i++) targets[i] = i == 2 ? -100 : static_cast<int32_t>(rng() % vocab);
  const float gradScale = 0.125f;

  // float64 reference
  std::vector<double> loss(rows, 0), logprob(rows, 0), dl(rows * vocab, 0);
  std::vector<int32_t> argmax(rows, -1);
  for (int64_t i = 0; i < rows; i++) {
    if (targets[i] == -100) continue;
    double mx = -INFINITY;
    int32_t at = 0;
    for (int64_t j = 0; j < vocab; j++)
      if (fromBf16(logits[i * ld + j]) > mx) mx = fromBf16(logits[i * ld + j]), at = static_cast<int32_t>(j);
    double sum = 0;
    for (int64_t j = 0; j < vocab; j++) sum += std::exp(fromBf16(logits[i * ld + j]) - mx);
    const double lse = mx + std::log(sum);
    loss[i] = lse - fromBf16(logits[i * ld + targets[i]]);
    logprob[i] = -loss[i];
    argmax[i] = at;
    for (int64_t j = 0; j < vocab; j++)
      dl[i * vocab + j] = (std::exp(fromBf16(logits[i * ld + j]) - lse) - (j == targets[i] ? 1 : 0)) * gradScale;
  }

  // the kernels under test
  bf16raw* dLogits = nullptr;
  double *dLoss = nullptr, *dLogprob = nullptr;
  int32_t *dTargets = nullptr, *dArgmax = nullptr;
  int* dFlag = nullptr;
  if (!ok(cudaMalloc(reinterpret_cast<void**>(&dLogits), logits.size() * 2), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dLoss), rows * 8), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dLogprob), rows * 8), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dTargets), rows * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dArgmax), rows * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dFlag), 4), "cudaMalloc"))
    return 2;
  cudaMemcpy(dLogits, logits.data(), logits.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dTargets, targets.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaMemset(dFlag, 0, 4);
  try {
    lmf::cuda::logprobChunk(dLogits, ld, dLogprob, dArgmax, dTargets, rows, vocab, dFlag, nullptr);
    lmf::cuda::crossEntropyChunk(dLogits, ld, dLoss, nullptr, dTargets, rows, vocab, gradScale, true, dFlag, nullptr);
  } catch (const std::exception& e) {
    std::printf("launch: %s\n", e.what());
    return 2;
  }
  std::vector<bf16raw> gDl(logits.size());
  std::vector<double> gLoss(rows), gLogprob(rows);
  std::vector<int32_t> gArgmax(rows);
  int flag = 0;
  if (!ok(cudaMemcpy(gDl.data(), dLogits, gDl.size() * 2, cudaMemcpyDeviceToHost), "dlogits") ||
      !ok(cudaMemcpy(gLoss.data(), dLoss, rows * 8, cudaMemcpyDeviceToHost), "loss") ||
      !ok(cudaMemcpy(gLogprob.data(), dLogprob, rows * 8, cudaMemcpyDeviceToHost), "logprob") ||
      !ok(cudaMemcpy(gArgmax.data(), dArgmax, rows * 4, cudaMemcpyDeviceToHost), "argmax") ||
      !ok(cudaMemcpy(&flag, dFlag, 4, cudaMemcpyDeviceToHost), "flag"))
    return 2;
  cudaFree(dLogits);
  cudaFree(dLoss);
  cudaFree(dLogprob);
  cudaFree(dTargets);
  cudaFree(dArgmax);
  cudaFree(dFlag);
  double eLoss = 0, eLogprob = 0, num = 0, den = 0;
  bool argmaxOk = true;
  for (int64_t i = 0; i < rows; i++) {
    eLoss = std::max(eLoss, std::fabs(gLoss[i] - loss[i]) / std::max(1.0, std::fabs(loss[i])));
    eLogprob = std::max(eLogprob, std::fabs(gLogprob[i] - logprob[i]) / std::max(1.0, std::fabs(logprob[i])));
    argmaxOk = argmaxOk && gArgmax[i] == argmax[i];
    for (int64_t j = 0; j < vocab; j++) {
      const double d = fromBf16(gDl[i * ld + j]) - dl[i * vocab + j];
      num += d * d;
      den += dl[i * vocab + j] * dl[i * vocab + j];
    }
  }
  double eDl = std::sqrt(num / den);
  if (std::isnan(eDl)) eDl = INFINITY;
  if (std::isnan(eLoss)) eLoss = INFINITY;
  if (std::isnan(eLogprob)) eLogprob = INFINITY;
  std::printf("rows %lld vocab %lld: loss %.2e logprob %.2e dlogits %.2e argmax %s (row 0: %d) flag %d\n",
              (long long)rows, (long long)vocab, eLoss, eLogprob, eDl, argmaxOk ? "ok" : "WRONG", gArgmax[0], flag);
  // dlogits are bf16 (2^-9 relative each); the loss sums are float per thread, double across them.
  return eLoss < 1e-6 && eLogprob < 1e-6 && eDl < 4e-3 && argmaxOk && flag == 0 ? 0 : 1;
}

}  // namespace

int main() {
  std::mt19937 rng(11);
  int status = 0;
  for (const auto& [rows, vocab] : {std::pair<int64_t, int64_t>{5, 517}, {3, 4101}, {4, 9}}) {
    const int r = check(rows, vocab, rng);
    if (r > status) status = r;
  }
  return status;
}
