// Argument decoding shared by the MPI and NCCL collectives: buffers arrive as BigInt addresses (from the engines'
// `address` op), counts as non-negative integers, per-rank count lists as arrays. Every failure names the op.
#pragma once
#include <napi.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmf_dist {

struct DistError : std::runtime_error {
  explicit DistError(const std::string& m) : std::runtime_error(m) {}
};

struct In {
  const Napi::CallbackInfo& info;
  const char* op;

  [[noreturn]] void fail(const std::string& m) const { throw DistError(std::string(op) + ": " + m); }

  char* addr(size_t i) const {
    if (i >= info.Length() || !info[i].IsBigInt()) fail("argument " + std::to_string(i) + " must be a BigInt address");
    bool lossless = false;
    uint64_t a = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) fail("address does not fit 64 bits");
    return reinterpret_cast<char*>(static_cast<uintptr_t>(a));
  }

  int64_t count(size_t i) const {
    if (i >= info.Length() || !info[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<int64_t>(v)))
      fail("counts must be non-negative integers");
    return static_cast<int64_t>(v);
  }

  int small(size_t i) const {
    int64_t v = count(i);
    if (v > INT_MAX) fail("argument " + std::to_string(i) + " is too large");
    return static_cast<int>(v);
  }

  // One non-negative integer count per rank.
  std::vector<int64_t> counts(size_t i, int ranks) const {
    if (i >= info.Length() || !info[i].IsArray()) fail("argument " + std::to_string(i) + " must be an array of counts");
    Napi::Array a = info[i].As<Napi::Array>();
    if (static_cast<int64_t>(a.Length()) != ranks)
      fail("expected one count per rank (" + std::to_string(ranks) + "), got " + std::to_string(a.Length()));
    std::vector<int64_t> out(ranks);
    for (int r = 0; r < ranks; r++) {
      Napi::Value v = a.Get(static_cast<uint32_t>(r));
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<int64_t>(d)))
        fail("count for rank " + std::to_string(r) + " must be a non-negative integer");
      out[r] = static_cast<int64_t>(d);
    }
    return out;
  }
};

// Runs one collective with its decoded arguments; any failure becomes a JavaScript Error.
inline Napi::Value wrap(const Napi::CallbackInfo& info, const char* op, void (*fn)(const In&)) {
  try {
    fn(In{info, op});
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

}  // namespace lmf_dist
