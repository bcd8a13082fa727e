// NCCL process group: the communicator is created from a unique id that rank 0 makes and MPI broadcasts.
// Operations are enqueued on the stream the CUDA engine passes (its compute stream, as an address), so they
// order after the backward kernels without a host synchronisation. UNVERIFIED: this file is compiled only
// where NCCL headers exist, which the development machine lacks (see docs/distributed.md).
#include "nccl_ops.h"

#ifndef LMFORGE_HAVE_NCCL

namespace lmf_nccl {
bool available() { return false; }
void registerOps(Napi::Env, Napi::Object) {}
void abortAll() {}
void destroyAll() {}
}  // namespace lmf_nccl

#else

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmf_mpi {
extern MPI_Comm g_comm;
extern int g_rank;
extern int g_size;
void check(int rc, const std::string& what);
}  // namespace lmf_mpi

namespace lmf_nccl {
namespace {

ncclComm_t g_nccl = nullptr;

struct NcclError : std::runtime_error {
  explicit NcclError(const std::string& m) : std::runtime_error(m) {}
};

void nc(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  throw NcclError(std::string(what) + " failed on rank " + std::to_string(lmf_mpi::g_rank) + ": " +
                  ncclGetErrorString(r));
}

void cu(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw NcclError(std::string(what) + " failed: " + cudaGetErrorString(e));
}

struct In {
  const Napi::CallbackInfo& info;
  const char* op;
  [[noreturn]] void fail(const std::string& m) const { throw NcclError(std::string(op) + ": " + m); }
  char* addr(size_t i) const {
    if (i >= info.Length() || !info[i].IsBigInt()) fail("argument " + std::to_string(i) + " must be a BigInt address");
    bool lossless = false;
    uint64_t a = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    return reinterpret_cast<char*>(static_cast<uintptr_t>(a));
  }
  cudaStream_t stream(size_t i) const { return reinterpret_cast<cudaStream_t>(addr(i)); }
  size_t count(size_t i) const {
    if (i >= info.Length() || !info[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (!(v >= 0)) fail("counts must be non-negative");
    return static_cast<size_t>(v);
  }
  std::vector<size_t> counts(size_t i) const {
    if (i >= info.Length() || !info[i].IsArray()) fail("argument " + std::to_string(i) + " must be an array of counts");
    Napi::Array a = info[i].As<Napi::Array>();
    if (static_cast<int>(a.Length()) != lmf_mpi::g_size) fail("expected one count per rank");
    std::vector<size_t> out(a.Length());
    for (uint32_t r = 0; r < a.Length(); r++) out[r] = static_cast<size_t>(a.Get(r).As<Napi::Number>().DoubleValue());
    return out;
  }
};

ncclDataType_t type(int code, const In& a) {
  switch (code) {
    case 0: return ncclFloat32;
    case 1: return ncclFloat64;
    case 2: return ncclInt32;
    case 3: return ncclBfloat16;
  }
  a.fail("unknown dtype code " + std::to_string(code));
}
size_t typeSize(int code) { return code == 1 ? 8 : code == 3 ? 2 : 4; }

void requireComm(const In& a) {
  if (!g_nccl) a.fail("the NCCL communicator is not initialised (call ncclInit first)");
}

// ncclInit(device): one communicator over all MPI ranks, on the given CUDA device.
void opInit(const In& a) {
  int device = static_cast<int>(a.count(0));
  cu(cudaSetDevice(device), "cudaSetDevice");
  ncclUniqueId id;
  if (lmf_mpi::g_rank == 0) nc(ncclGetUniqueId(&id), "ncclGetUniqueId");
  lmf_mpi::check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, lmf_mpi::g_comm), "MPI_Bcast(ncclUniqueId)");
  nc(ncclCommInitRank(&g_nccl, lmf_mpi::g_size, id, lmf_mpi::g_rank), "ncclCommInitRank");
}

// ncclAllReduce(addr, n, dtype, op 0=sum 3=avg, stream)
void opAllReduce(const In& a) {
  requireComm(a);
  int op = static_cast<int>(a.count(3));
  nc(ncclAllReduce(a.addr(0), a.addr(0), a.count(1), type(static_cast<int>(a.count(2)), a), op == 3 ? ncclAvg : ncclSum,
                   g_nccl, a.stream(4)),
     "ncclAllReduce");
}

// ncclBroadcast(addr, n, dtype, root, stream)
void opBroadcast(const In& a) {
  requireComm(a);
  nc(ncclBroadcast(a.addr(0), a.addr(0), a.count(1), type(static_cast<int>(a.count(2)), a), static_cast<int>(a.count(3)),
                   g_nccl, a.stream(4)),
     "ncclBroadcast");
}

// ncclReduceScatter(in, out, counts[], dtype, stream): uneven counts become one grouped ncclReduce per rank.
void opReduceScatter(const In& a) {
  requireComm(a);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<size_t> counts = a.counts(2);
  int dt = static_cast<int>(a.count(3));
  cudaStream_t s = a.stream(4);
  bool equal = true;
  for (size_t c : counts) equal = equal && c == counts[0];
  if (equal) {
    nc(ncclReduceScatter(in, out, counts[0], type(dt, a), ncclSum, g_nccl, s), "ncclReduceScatter");
    return;
  }
  nc(ncclGroupStart(), "ncclGroupStart");
  size_t off = 0;
  for (int r = 0; r < lmf_mpi::g_size; r++) {
    nc(ncclReduce(in + off * typeSize(dt), out, counts[r], type(dt, a), ncclSum, r, g_nccl, s), "ncclReduce");
    off += counts[r];
  }
  nc(ncclGroupEnd(), "ncclGroupEnd");
}

// ncclAllGather(in, out, counts[], dtype, stream): uneven counts become one grouped ncclBroadcast per rank.
void opAllGather(const In& a) {
  requireComm(a);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<size_t> counts = a.counts(2);
  int dt = static_cast<int>(a.count(3));
  cudaStream_t s = a.stream(4);
  bool equal = true;
  for (size_t c : counts) equal = equal && c == counts[0];
  if (equal) {
    nc(ncclAllGather(in, out, counts[0], type(dt, a), g_nccl, s), "ncclAllGather");
    return;
  }
  nc(ncclGroupStart(), "ncclGroupStart");
  size_t off = 0;
  for (int r = 0; r < lmf_mpi::g_size; r++) {
    char* dst = out + off * typeSize(dt);
    nc(ncclBroadcast(r == lmf_mpi::g_rank ? in : dst, dst, counts[r], type(dt, a), r, g_nccl, s), "ncclBroadcast");
    off += counts[r];
  }
  nc(ncclGroupEnd(), "ncclGroupEnd");
}

// ncclGather(in, out, counts[], dtype, root, stream): point-to-point sends to the root.
void opGather(const In& a) {
  requireComm(a);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<size_t> counts = a.counts(2);
  int dt = static_cast<int>(a.count(3));
  int root = static_cast<int>(a.count(4));
  cudaStream_t s = a.stream(5);
  int me = lmf_mpi::g_rank;
  nc(ncclGroupStart(), "ncclGroupStart");
  if (me == root) {
    size_t off = 0;
    for (int r = 0; r < lmf_mpi::g_size; r++) {
      char* dst = out + off * typeSize(dt);
      if (r == root)
        cu(cudaMemcpyAsync(dst, in, counts[r] * typeSize(dt), cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
      else
        nc(ncclRecv(dst, counts[r], type(dt, a), r, g_nccl, s), "ncclRecv");
      off += counts[r];
    }
  } else {
    nc(ncclSend(in, counts[me], type(dt, a), root, g_nccl, s), "ncclSend");
  }
  nc(ncclGroupEnd(), "ncclGroupEnd");
}

Napi::Value wrap(const Napi::CallbackInfo& info, const char* op, void (*fn)(const In&)) {
  try {
    fn(In{info, op});
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

}  // namespace

bool available() { return true; }

void abortAll() {
  if (g_nccl) ncclCommAbort(g_nccl);
  g_nccl = nullptr;
}

void destroyAll() {
  if (g_nccl) ncclCommDestroy(g_nccl);
  g_nccl = nullptr;
}

void registerOps(Napi::Env env, Napi::Object exports) {
  auto reg = [&](const char* name, void (*fn)(const In&)) {
    exports.Set(name, Napi::Function::New(
                          env, [name, fn](const Napi::CallbackInfo& info) { return wrap(info, name, fn); }, name));
  };
  reg("ncclInit", opInit);
  reg("ncclAllReduce", opAllReduce);
  reg("ncclBroadcast", opBroadcast);
  reg("ncclReduceScatter", opReduceScatter);
  reg("ncclAllGather", opAllGather);
  reg("ncclGather", opGather);
}

}  // namespace lmf_nccl

#endif
