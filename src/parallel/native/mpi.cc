// lmforge_mpi: MPI collectives over engine memory, for data-parallel training (src/parallel/mpi.ts).
//
// Buffers arrive as raw addresses (BigInt) that the engine produced after its own bounds check
// (CpuBackend.rawAddress), plus an element count and a dtype code (0 f32, 1 f64, 2 i32). Every MPI call
// returns errors (MPI_ERRORS_RETURN on our communicator) and a failure becomes a JavaScript Error naming the
// operation and MPI's own message. Only the main thread calls MPI (MPI_THREAD_FUNNELED); OpenMP threads of
// the engine never do.
#include <dlfcn.h>
#include <mpi.h>
#include <napi.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"
#include "nccl_ops.h"

namespace lmf_mpi {

bool g_initialized = false;
bool g_finalized = false;
MPI_Comm g_comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: our error handler does not leak to others
int g_rank = 0;
int g_size = 1;

using MpiError = lmf_dist::DistError;
using lmf_dist::In;
using lmf_dist::wrap;

void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw MpiError(what + " failed on rank " + std::to_string(g_rank) + ": " + std::string(text, len) +
                 " (another rank may have died; see the launcher's messages)");
}

namespace {

void requireInit(const char* op) {
  if (!g_initialized || g_finalized)
    throw MpiError(std::string(op) + ": MPI is not initialised (call init first) or was already finalised");
}

MPI_Datatype mpiType(int code, const char* op) {
  switch (code) {
    case 0: return MPI_FLOAT;
    case 1: return MPI_DOUBLE;
    case 2: return MPI_INT;
  }
  throw MpiError(std::string(op) + ": unknown dtype code " + std::to_string(code));
}

size_t typeSize(int code) { return code == 1 ? 8 : 4; }

MPI_Op mpiOp(int code, const char* op) {
  switch (code) {
    case 0: return MPI_SUM;
    case 1: return MPI_MAX;
    case 2: return MPI_MIN;
  }
  throw MpiError(std::string(op) + ": unknown reduction code " + std::to_string(code));
}

// MPI's v-variants take int counts and int displacements.
std::vector<int> intCounts(const In& a, size_t i, std::vector<int>* displs) {
  std::vector<int64_t> c = a.counts(i, g_size);
  std::vector<int> out(g_size);
  if (displs) displs->resize(g_size);
  int64_t off = 0;
  for (int r = 0; r < g_size; r++) {
    if (c[r] > INT_MAX) a.fail("count for rank " + std::to_string(r) + " must be below 2^31 (MPI counts are ints)");
    out[r] = static_cast<int>(c[r]);
    if (displs) {
      if (off > INT_MAX)
        a.fail("the buffer spans more than 2^31 elements, beyond MPI's int displacements; shard a smaller buffer");
      (*displs)[r] = static_cast<int>(off);
    }
    off += out[r];
  }
  return out;
}

// Large transfers go in pieces: MPI counts are ints.
constexpr int64_t kPiece = int64_t(1) << 30;


// Open MPI loads its transport plugins with dlopen and they resolve symbols of libmpi globally, but Node loads
// addons (and so libmpi) with RTLD_LOCAL. Re-open the already loaded libmpi with RTLD_GLOBAL first.
void promoteLibmpi() {
  Dl_info di;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &di) && di.dli_fname)
    dlopen(di.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!g_initialized) {
      promoteLibmpi();
      int provided = 0;
      int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      if (rc != MPI_SUCCESS) throw MpiError("MPI_Init_thread failed (is this process started by mpirun/srun?)");
      g_initialized = true;
      check(MPI_Comm_dup(MPI_COMM_WORLD, &g_comm), "MPI_Comm_dup");
      check(MPI_Comm_set_errhandler(g_comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
      check(MPI_Comm_rank(g_comm, &g_rank), "MPI_Comm_rank");
      check(MPI_Comm_size(g_comm, &g_size), "MPI_Comm_size");
    }
    // Ranks on the same host share memory: that communicator gives the local rank (GPU index, CPU threads).
    MPI_Comm local;
    check(MPI_Comm_split_type(g_comm, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    int localRank = 0, localSize = 1;
    check(MPI_Comm_rank(local, &localRank), "MPI_Comm_rank(local)");
    check(MPI_Comm_size(local, &localSize), "MPI_Comm_size(local)");
    MPI_Comm_free(&local);
    char host[MPI_MAX_PROCESSOR_NAME];
    int hostLen = 0;
    MPI_Get_processor_name(host, &hostLen);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int versionLen = 0;
    MPI_Get_library_version(version, &versionLen);
    std::string lib(version, versionLen);
    if (auto cut = lib.find_first_of(",\n"); cut != std::string::npos) lib.resize(cut);
    Napi::Object o = Napi::Object::New(env);
    o.Set("rank", g_rank);
    o.Set("size", g_size);
    o.Set("localRank", localRank);
    o.Set("localSize", localSize);
    o.Set("host", std::string(host, hostLen));
    o.Set("library", lib);
    o.Set("nccl", lmf_nccl::available());
    return o;
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// allReduce(addr, n, dtype, op): in place.
void opAllReduce(const In& a) {
  requireInit(a.op);
  char* p = a.addr(0);
  int64_t n = a.count(1);
  int dt = a.small(2);
  MPI_Datatype t = mpiType(dt, a.op);
  MPI_Op op = mpiOp(a.small(3), a.op);
  for (int64_t s = 0; s < n; s += kPiece) {
    int c = static_cast<int>(std::min(kPiece, n - s));
    check(MPI_Allreduce(MPI_IN_PLACE, p + s * typeSize(dt), c, t, op, g_comm), "MPI_Allreduce");
  }
}

// broadcast(addr, n, dtype, root)
void opBroadcast(const In& a) {
  requireInit(a.op);
  char* p = a.addr(0);
  int64_t n = a.count(1);
  int dt = a.small(2);
  MPI_Datatype t = mpiType(dt, a.op);
  int root = a.small(3);
  if (root >= g_size) a.fail("root " + std::to_string(root) + " is not a rank (world size " + std::to_string(g_size) + ")");
  for (int64_t s = 0; s < n; s += kPiece) {
    int c = static_cast<int>(std::min(kPiece, n - s));
    check(MPI_Bcast(p + s * typeSize(dt), c, t, root, g_comm), "MPI_Bcast");
  }
}

// reduceScatter(in, out, counts[], dtype): sums `in` over ranks; rank r receives the r-th slice (counts[r] elements).
void opReduceScatter(const In& a) {
  requireInit(a.op);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<int> counts = intCounts(a, 2, nullptr);
  MPI_Datatype t = mpiType(a.small(3), a.op);
  bool equal = true;
  for (int c : counts) equal = equal && c == counts[0];
  if (equal)
    check(MPI_Reduce_scatter_block(in, out, counts[0], t, MPI_SUM, g_comm), "MPI_Reduce_scatter_block");
  else
    check(MPI_Reduce_scatter(in, out, counts.data(), t, MPI_SUM, g_comm), "MPI_Reduce_scatter");
}

// allGather(in, out, counts[], dtype): rank r's counts[r] elements of `in` land at out + displ(r). in == out
// (as an address equal to out + displ(rank)) means in place.
void opAllGather(const In& a) {
  requireInit(a.op);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<int> displs;
  std::vector<int> counts = intCounts(a, 2, &displs);
  int dt = a.small(3);
  MPI_Datatype t = mpiType(dt, a.op);
  bool inPlace = in == out + static_cast<int64_t>(displs[g_rank]) * typeSize(dt);
  const void* send = inPlace ? MPI_IN_PLACE : in;
  check(MPI_Allgatherv(send, inPlace ? 0 : counts[g_rank], inPlace ? MPI_DATATYPE_NULL : t, out, counts.data(),
                       displs.data(), t, g_comm),
        "MPI_Allgatherv");
}

// gather(in, out, counts[], dtype, root): like allGather but only `root` receives (out is ignored elsewhere).
void opGather(const In& a) {
  requireInit(a.op);
  char* in = a.addr(0);
  char* out = a.addr(1);
  std::vector<int> displs;
  std::vector<int> counts = intCounts(a, 2, &displs);
  MPI_Datatype t = mpiType(a.small(3), a.op);
  int root = a.small(4);
  if (root >= g_size) a.fail("root " + std::to_string(root) + " is not a rank");
  check(MPI_Gatherv(in, counts[g_rank], t, out, counts.data(), displs.data(), t, root, g_comm), "MPI_Gatherv");
}

void opBarrier(const In& a) {
  requireInit(a.op);
  check(MPI_Barrier(g_comm), "MPI_Barrier");
}

// allReduceHost(float64array, op): small host-side reductions (loss sums, token counts, norms).
Napi::Value AllReduceHost(const Napi::CallbackInfo& info) {
  try {
    In a{info, "allReduceHost"};
    requireInit(a.op);
    if (info.Length() < 2 || !info[0].IsTypedArray()) a.fail("argument 0 must be a Float64Array");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_float64_array) a.fail("argument 0 must be a Float64Array");
    Napi::Float64Array f = ta.As<Napi::Float64Array>();
    if (f.ElementLength() > INT_MAX) a.fail("too many values");
    check(MPI_Allreduce(MPI_IN_PLACE, f.Data(), static_cast<int>(f.ElementLength()), MPI_DOUBLE, mpiOp(a.small(1), a.op),
                        g_comm),
          "MPI_Allreduce");
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// abort(code, message): prints the message and takes every rank of the job down (MPI_Abort never returns).
Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (info.Length() > 1 && info[1].IsString()) {
    std::string m = info[1].As<Napi::String>().Utf8Value();
    std::fprintf(stderr, "%s\n", m.c_str());
    std::fflush(stderr);
  }
  lmf_nccl::abortAll();
  if (g_initialized && !g_finalized) MPI_Abort(g_comm == MPI_COMM_NULL ? MPI_COMM_WORLD : g_comm, code == 0 ? 1 : code);
  std::_Exit(code == 0 ? 1 : code);
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (g_initialized && !g_finalized) {
    lmf_nccl::destroyAll();
    if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
    MPI_Finalize();
    g_finalized = true;
  }
  return info.Env().Undefined();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  auto reg = [&](const char* name, void (*fn)(const In&)) {
    exports.Set(name, Napi::Function::New(
                          env, [name, fn](const Napi::CallbackInfo& info) { return wrap(info, name, fn); }, name));
  };
  reg("allReduce", opAllReduce);
  reg("broadcast", opBroadcast);
  reg("reduceScatter", opReduceScatter);
  reg("allGather", opAllGather);
  reg("gather", opGather);
  reg("barrier", opBarrier);
  exports.Set("allReduceHost", Napi::Function::New(env, AllReduceHost, "allReduceHost"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("finalize", Napi::Function::New(env, Finalize, "finalize"));
  lmf_nccl::registerOps(env, exports);
  return exports;
}

}  // namespace
}  // namespace lmf_mpi

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return lmf_mpi::InitModule(env, exports); }

NODE_API_MODULE(lmforge_mpi, Init)
