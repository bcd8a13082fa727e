// Checks src/engine/cuda/attention.cu (or a mutated copy of it, linked in its place) on the interpreted CUDA engine
// against a float64 reference: forward (out, lse) and backward (dq, dk, dv) of causal GQA attention on a few
// shapes, with q|k|v columns of one fused row (as the model stores them). Exit status 0 when every relative error
// is below 1e-4, 1 when one is not, 2 when a CUDA call failed (a fault). Built by test/engine-cuda/mutation.test.ts.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels.cuh"

namespace {

using lmf::AttentionShape;

struct Case {
  int64_t batch, seq, heads, kvHeads, hd;
};

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("%s: %s\n", what, cudaGetErrorString(e));
  return false;
}

double relErr(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); i++) {
    const double d = double(got[i]) - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  const double e = std::sqrt(num / (den > 0 ? den : 1));
  return std::isnan(e) ? INFINITY : e;
}

int check(const Case& c, std::mt19937& rng) {
  const int64_t stride = (c.heads + 2 * c.kvHeads) * c.hd + 3, n = c.batch * c.seq, od = c.heads * c.hd;
  const int64_t kOff = c.heads * c.hd, vOff = kOff + c.kvHeads * c.hd, group = c.heads / c.kvHeads;
  const double scale = 1 / std::sqrt(double(c.hd));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> qkv(n * stride), dout(n * od);
  for (float& x : qkv) x = 2 * u(rng);
  for (float& x : dout) x = u(rng);

  // float64 reference
  std::vector<double> out(n * od, 0), lse(c.batch * c.heads * c.seq, 0), dqkv(n * stride, 0);
  for (int64_t b = 0; b < c.batch; b++)
    for (int64_t h = 0; h < c.heads; h++) {
      const int64_t kh = h / group;
      auto q = [&](int64_t i, int64_t d) { return double(qkv[(b * c.seq + i) * stride + h * c.hd + d]); };
      auto k = [&](int64_t j, int64_t d) { return double(qkv[(b * c.seq + j) * stride + kOff + kh * c.hd + d]); };
      auto v = [&](int64_t j, int64_t d) { return double(qkv[(b * c.seq + j) * stride + vOff + kh * c.hd + d]); };
      for (int64_t i = 0; i < c.seq; i++) {
        std::vector<double> p(i + 1);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= i; j++) {
          double s = 0;
          for (int64_t d = 0; d < c.hd; d++) s += q(i, d) * k(j, d);
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (double& x : p) x /= sum;
        lse[(b * c.heads + h) * c.seq + i] = mx + std::log(sum);
        const float* go = &dout[(b * c.seq + i) * od + h * c.hd];
        double D = 0;
        for (int64_t d = 0; d < c.hd; d++) {
          double o = 0;
          for (int64_t j = 0; j <= i; j++) o += p[j] * v(j, d);
          out[(b * c.seq + i) * od + h * c.hd + d] = o;
          D += o * go[d];
        }
        for (int64_t j = 0; j <= i; j++) {
          double dp = 0;
          for (int64_t d = 0; d < c.hd; d++) dp += go[d] * v(j, d);
          const double ds = p[j] * (dp - D) * scale;
          for (int64_t d = 0; d < c.hd; d++) {
            dqkv[(b * c.seq + i) * stride + h * c.hd + d] += ds * k(j, d);
            dqkv[(b * c.seq + j) * stride + kOff + kh * c.hd + d] += ds * q(i, d);
            dqkv[(b * c.seq + j) * stride + vOff + kh * c.hd + d] += p[j] * go[d];
          }
        }
      }
    }

  // the kernels under test
  float *dQkv = nullptr, *dOut = nullptr, *dLse = nullptr, *dDout = nullptr, *dGrad = nullptr, *dRowDots = nullptr;
  if (!ok(cudaMalloc(reinterpret_cast<void**>(&dQkv), qkv.size() * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dOut), out.size() * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dLse), lse.size() * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dDout), dout.size() * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dGrad), qkv.size() * 4), "cudaMalloc") ||
      !ok(cudaMalloc(reinterpret_cast<void**>(&dRowDots), lse.size() * 4), "cudaMalloc"))
    return 2;
  cudaMemcpy(dQkv, qkv.data(), qkv.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dDout, dout.data(), dout.size() * 4, cudaMemcpyHostToDevice);
  cudaMemset(dGrad, 0, qkv.size() * 4);  // the padding columns stay 0, as in the reference
  AttentionShape sh;
  sh.sq = sh.sk = sh.sv = stride;
  sh.batch = c.batch;
  sh.seq = c.seq;
  sh.past = 0;
  sh.heads = c.heads;
  sh.kvHeads = c.kvHeads;
  sh.headDim = c.hd;
  sh.scale = static_cast<float>(scale);
  try {
    // f32 activations (DevAct {pointer, bf16 = false}).
    lmf::cuda::attentionForward({dOut, false}, dLse, {dQkv, false}, {dQkv + kOff, false}, {dQkv + vOff, false}, sh, nullptr,
                                nullptr);
    lmf::cuda::attentionBackward({dGrad, false}, {dGrad + kOff, false}, {dGrad + vOff, false}, {dDout, false},
                                 {dQkv, false}, {dQkv + kOff, false}, {dQkv + vOff, false}, {dOut, false}, dLse, sh, nullptr,
                                 dRowDots, nullptr);
  } catch (const std::exception& e) {
    std::printf("launch: %s\n", e.what());
    return 2;
  }
  std::vector<float> gOut(out.size()), gLse(lse.size()), gGrad(qkv.size());
  if (!ok(cudaMemcpy(gOut.data(), dOut, gOut.size() * 4, cudaMemcpyDeviceToHost), "out") ||
      !ok(cudaMemcpy(gLse.data(), dLse, gLse.size() * 4, cudaMemcpyDeviceToHost), "lse") ||
      !ok(cudaMemcpy(gGrad.data(), dGrad, gGrad.size() * 4, cudaMemcpyDeviceToHost), "grads"))
    return 2;
  for (float* p : {dQkv, dOut, dLse, dDout, dGrad, dRowDots}) cudaFree(p);
  const double eOut = relErr(gOut, out), eLse = relErr(gLse, lse), eGrad = relErr(gGrad, dqkv);
  std::printf("B%lld T%lld H%lld/%lld hd%lld: out %.2e lse %.2e grads %.2e\n", (long long)c.batch, (long long)c.seq,
              (long long)c.heads, (long long)c.kvHeads, (long long)c.hd, eOut, eLse, eGrad);
  return eOut < 1e-4 && eLse < 1e-4 && eGrad < 1e-4 ? 0 : 1;
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  int status = 0;
  for (const Case& c : {Case{2, 33, 4, 2, 16}, Case{1, 65, 2, 1, 32}, Case{2, 40, 2, 2, 8}}) {
    const int r = check(c, rng);
    if (r > status) status = r;
  }
  return status;
}
