// NCCL process group: the communicator is created from a unique id that rank 0 makes and MPI broadcasts.
// Operations are enqueued on the stream the CUDA engine passes (its compute stream, as an address), so they
// order after the backward kernels without a host synchronisation. UNVERIFIED: this file is compiled only
// where NCCL headers exist, which the development machine lacks (see docs/distributed.md).
#include "nccl_ops.h"

#include "args.h"

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

using NcclError = lmf_dist::DistError;

void nc(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  throw NcclError(std::string(what) + " failed on rank " + std::to_string(lmf_mpi::g_rank) + ": " +
                  ncclGetErrorString(r));
}

void cu(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw NcclError(std::string(what) + " failed: " + cudaGetErrorString(e));
}

using lmf_dist::In;
using lmf_dist::wrap;

cudaStream_t streamArg(const In& a, size_t i) { return reinterpret_cast<cudaStream_t>(a.addr(i)); }

// Per-rank counts as NCCL takes them.
std::vector<size_t> sizeCounts(const In& a, size_t i) {
  std::vector<int64_t> c = a.counts(i, lmf_mpi::g_size);
  return std::vector<size_t>(c.begin(), c.end());
}

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
  int device = a.small(0);
  cu(cudaSetDevice(device), "cudaSetDevice");
  ncclUniqueId id;
  if (lmf_mpi::g_rank == 0) nc(ncclGetUniqueId(&id), "ncclGetUniqueId");
  lmf_mpi::check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, lmf_mpi::g_comm), "MPI_Bcast(ncclUniqueId)");
  nc(ncclCommInitRank(&g_nccl, lmf_mpi::g_size, id, lmf_mpi::g_rank), "ncclCommInitRank");
}

// ncclAllReduce(addr, n, dtype, op 0=sum 3=avg, stream)
void opAllReduce(const In& a) {
  requireComm(a);
  int op = a.small(3);
  nc(ncclAllReduce(a.addr(0), a.addr(0), a.count(1), type(a.small(2), a), op == 3 ? ncclAvg : ncclSum,
                   g_nccl, streamArg(a, 4)),
     "ncclAllReduce");
}

// ncclBroadcast(addr, n, dtype, root, stream)
void opBroadcast(const In& a) {
  requireComm(a);
  nc(ncclBroadcast(a.addr(0), a.addr(0), a.count(1), type(a.small(2), a), a.small(3),
                   g_nccl, streamArg(a, 4)),
     "ncclBroadcast");
}

// ncclReduceScatter(in, out, counts[], dtype, stream): uneven counts become one grouped ncclReduce per rank.
void opReduceScatter(const In& a) {
  requireComm(a);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<size_t> counts = sizeCounts(a, 2);
  int dt = a.small(3);
  cudaStream_t s = streamArg(a, 4);
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
  std::vector<size_t> counts = sizeCounts(a, 2);
  int dt = a.small(3);
  cudaStream_t s = streamArg(a, 4);
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
  std::vector<size_t> counts = sizeCounts(a, 2);
  int dt = a.small(3);
  int root = a.small(4);
  cudaStream_t s = streamArg(a, 5);
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
