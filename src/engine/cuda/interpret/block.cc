// The interpreted CUDA engine's thread blocks: the threads of a block are fibers (a hand-written context switch on
// x86-64, ucontext elsewhere) on the calling OS thread, run in index order, each until it reaches a barrier:
// __syncthreads (the block's) or a warp-collective operation (its warp's). The last thread to arrive releases the
// others. Blocks of a grid run one after another. See include/lmf_interpret/core.h.
#include <dlfcn.h>
#include <elf.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "block.h"
#include "lmf_interpret/device.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// Static __shared__ variables of non-template functions live in this section (device.h); it always exists, so its
// bounds do. Those of template functions GCC places apart (one COMDAT group each); they are found by name in the
// addon's symbol table (staticSharedOfTemplates).
static char lmf_shared_anchor[16] __attribute__((section("lmf_cuda_shared"), used));
extern "C" char __start_lmf_cuda_shared[] __attribute__((visibility("hidden")));
extern "C" char __stop_lmf_cuda_shared[] __attribute__((visibility("hidden")));

#if defined(__x86_64__)
// lmf_interp_switch(save, to): saves the callee-saved registers and the SSE/x87 control words on the current
// stack, stores the stack pointer in *save, and resumes the context whose stack pointer is `to`.
extern "C" void lmf_interp_switch(void** save, void* to);
asm(R"(
  .text
  .globl lmf_interp_switch
  .hidden lmf_interp_switch
  .type lmf_interp_switch,@function
lmf_interp_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size lmf_interp_switch,.-lmf_interp_switch
)");
#endif

namespace lmf_interp {

ThreadCtx* g_thread = nullptr;
BlockCtx g_block;

const char kShflIdx[] = "__shfl_sync", kShflXor[] = "__shfl_xor_sync", kShflUp[] = "__shfl_up_sync",
           kShflDown[] = "__shfl_down_sync", kBallot[] = "__ballot_sync", kAny[] = "__any_sync",
           kAll[] = "__all_sync";

namespace {

constexpr size_t kStackBytes = size_t(64) << 10;
constexpr size_t kPage = 4096;
constexpr size_t kMaxDynamicShared = size_t(228) << 10;

enum FiberState : uint8_t { kRunnable, kAtBarrier, kAtWarp, kDone };

struct Fiber {
  void* sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t ctx;
#endif
  ThreadCtx t{};
  FiberState state = kRunnable;
  const void* in = nullptr;  // warp-collective post
  void* out = nullptr;
  const char* file = nullptr;  // where it waits
  int line = 0;
};

// A warp-collective operation some lanes have reached: it completes when every lane of its mask has. Lanes
// outside the mask go their own way, so one warp can have several open at once (disjoint or not: lanes 16-31 at
// __syncwarp() while lanes 0-15 finish a half-warp shuffle is fine, as on a GPU since Volta).
struct Collective {
  unsigned arrived = 0, mask = 0;
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
  WarpCombine combine = nullptr;
};

struct Warp {
  unsigned members = 0;  // lanes that exist (the last warp of a block may be partial)
  unsigned exited = 0;
  std::vector<Collective> open;
};

struct Scheduler {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  int threads = 0, live = 0, atBarrier = 0, exited = 0;
  const char* barrierFile = nullptr;
  int barrierLine = 0;
  void* schedSp = nullptr;
#if !defined(__x86_64__)
  ucontext_t schedCtx;
#endif
  Fiber* cur = nullptr;
  const std::function<void()>* body = nullptr;
  bool faulted = false;
  std::string fault;
  cudaError_t faultCode = cudaSuccess;
  // Illegal-address traps: a SIGSEGV/SIGBUS while a fiber or a guarded host task runs jumps back here.
  sigjmp_buf* trap = nullptr;
  volatile sig_atomic_t inGuarded = 0;
  void* trapAddress = nullptr;
  // Stacks: one per thread of the largest block, each above an inaccessible page.
  char* stacks = nullptr;
  size_t stackCount = 0;
  char* dynamicShared = nullptr;
  // Mutation for tests: a __syncthreads site (file basename, line) that does nothing.
  std::string skipFile;
  int skipLine = -1;
  Schedule schedule = Schedule::kWarps;
  uint64_t switches = 0;
};

Scheduler S;

char* allocStacks(size_t count) {
  const size_t each = kStackBytes + kPage;
  void* p = mmap(nullptr, each * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "lmforge cuda-interpret: cannot map %zu fiber stacks\n", count);
    std::abort();
  }
  for (size_t i = 0; i < count; i++) mprotect(static_cast<char*>(p) + i * each, kPage, PROT_NONE);
  return static_cast<char*>(p);
}

std::string where(const char* file, int line) {
  const char* slash = file ? std::strrchr(file, '/') : nullptr;
  return std::string(slash ? slash + 1 : (file ? file : "?")) + ":" + std::to_string(line);
}

std::string hexMask(unsigned m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

[[noreturn]] void yieldForever();

void fiberEntry() {
  (*S.body)();
  Fiber* f = S.cur;
  f->state = kDone;
  S.live--;
  S.exited++;
  Warp& w = S.warps[f->t.warp];
  w.exited |= 1u << f->t.lane;
  if (S.atBarrier > 0) {
    fault(("thread " + std::to_string(f->t.linear) + " exited while " + std::to_string(S.atBarrier) +
           " thread(s) of its block wait at __syncthreads (" + std::string(S.barrierFile) + ":" +
           std::to_string(S.barrierLine) + "): every thread of a block must reach each __syncthreads")
              .c_str());
  }
  for (const Collective& c : w.open)
    if (c.mask & (1u << f->t.lane))
      fault(("lane " + std::to_string(f->t.lane) + " of warp " + std::to_string(f->t.warp) + " exited while lanes " +
             hexMask(c.arrived) + " wait for it in " + c.what + " (" + where(c.file, c.line) + ")")
                .c_str());
  yieldForever();
}

#if defined(__x86_64__)
void* initialStack(char* top) {
  auto* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15));
  *--sp = 0;                                           // fiberEntry's return address: it never returns
  *--sp = reinterpret_cast<uint64_t>(&fiberEntry);      // where the first switch "returns" to
  for (int i = 0; i < 6; i++) *--sp = 0;               // rbp rbx r12 r13 r14 r15
  uint32_t mxcsr;
  uint16_t fcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  *--sp = uint64_t(mxcsr) | (uint64_t(fcw) << 32);
  return sp;
}
#endif

void switchTo(Fiber& f) {
  S.cur = &f;
  g_thread = &f.t;
  S.switches++;
  S.inGuarded = 1;
#if defined(__x86_64__)
  lmf_interp_switch(&S.schedSp, f.sp);
#else
  swapcontext(&S.schedCtx, &f.ctx);
#endif
  S.inGuarded = 0;
}

// Back to the scheduler; returns when the scheduler resumes this fiber.
void yield() {
  Fiber* f = S.cur;
#if defined(__x86_64__)
  lmf_interp_switch(&f->sp, S.schedSp);
#else
  swapcontext(&f->ctx, &S.schedCtx);
#endif
}

[[noreturn]] void yieldForever() {
  for (;;) yield();
}

[[noreturn]] void deadlock() {
  std::string why = "the block cannot continue:";
  if (S.atBarrier > 0)
    why += " " + std::to_string(S.atBarrier) + " thread(s) wait at __syncthreads (" + where(S.barrierFile, S.barrierLine) + ");";
  for (size_t w = 0; w < S.warps.size(); w++)
    for (const Collective& c : S.warps[w].open)
      why += " lanes " + hexMask(c.arrived) + " of warp " + std::to_string(w) + " wait in " + c.what + " (" +
             where(c.file, c.line) + ") for lanes " + hexMask(c.mask & ~c.arrived) + ";";
  why += " a barrier or warp operation is inside code that not every thread it names reaches";
  S.faulted = true;
  S.fault = why;
  S.faultCode = cudaErrorLaunchFailure;
  // Called from the scheduler, not a fiber: nothing to switch away from.
  throw 0;
}

struct sigaction g_oldSegv {}, g_oldBus {};

void onTrap(int sig, siginfo_t* si, void*) {
  if (!S.inGuarded || !S.trap) {
    // Not a kernel's access: give the signal back to whoever handled it before (the instruction faults again).
    sigaction(sig, sig == SIGSEGV ? &g_oldSegv : &g_oldBus, nullptr);
    return;
  }
  S.trapAddress = si->si_addr;
  S.inGuarded = 0;
  siglongjmp(*S.trap, sig);
}

struct TrapScope {
  stack_t oldAlt{};
  bool altInstalled = false;
  TrapScope() {
    static char* alt = nullptr;
    constexpr size_t kAlt = size_t(64) << 10;
    if (!alt) alt = static_cast<char*>(std::malloc(kAlt));
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = kAlt;
    altInstalled = sigaltstack(&ss, &oldAlt) == 0;
    struct sigaction sa {};
    sa.sa_sigaction = onTrap;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_oldSegv);
    sigaction(SIGBUS, &sa, &g_oldBus);
  }
  ~TrapScope() {
    sigaction(SIGSEGV, &g_oldSegv, nullptr);
    sigaction(SIGBUS, &g_oldBus, nullptr);
    if (altInstalled) sigaltstack(&oldAlt, nullptr);
  }
};

struct Range {
  char* p;
  size_t bytes;
};

// The writable static locals of functions in namespace lmf::cuda (mangled "_ZZN3lmf4cuda..."), read once from the
// addon's own ELF symbol table. Device code may have no other writable static locals than __shared__ ones, so
// these are the static shared memory of the template kernels. Empty when the symbol table was stripped.
const std::vector<Range>& staticSharedOfTemplates() {
  static std::vector<Range>* ranges = nullptr;
  if (ranges) return *ranges;
  ranges = new std::vector<Range>();
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&lmf_shared_anchor), &info) || !info.dli_fname) return *ranges;
  FILE* f = std::fopen(info.dli_fname, "rb");
  if (!f) return *ranges;
  std::vector<char> file;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) file.insert(file.end(), buf, buf + got);
  std::fclose(f);
  if (file.size() < sizeof(Elf64_Ehdr) || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0) return *ranges;
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(file.data());
  if (eh->e_shoff == 0 || eh->e_shoff + size_t(eh->e_shnum) * sizeof(Elf64_Shdr) > file.size()) return *ranges;
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(file.data() + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
    const Elf64_Shdr& strs = sh[sh[i].sh_link];
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(file.data() + sh[i].sh_offset);
    const size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
    for (size_t k = 0; k < count; k++) {
      const Elf64_Sym& y = syms[k];
      if (ELF64_ST_TYPE(y.st_info) != STT_OBJECT || y.st_size == 0 || y.st_shndx == SHN_UNDEF || y.st_shndx >= eh->e_shnum)
        continue;
      const Elf64_Shdr& home = sh[y.st_shndx];
      if (!(home.sh_flags & SHF_WRITE) || (home.sh_flags & SHF_TLS)) continue;
      const char* name = file.data() + strs.sh_offset + y.st_name;
      if (std::strncmp(name, "_ZZN3lmf4cuda", 13) != 0) continue;
      ranges->push_back(Range{static_cast<char*>(info.dli_fbase) + y.st_value, y.st_size});
    }
  }
  return *ranges;
}

void poisonShared(size_t dynamicBytes) {
  std::memset(__start_lmf_cuda_shared, 0xff, size_t(__stop_lmf_cuda_shared - __start_lmf_cuda_shared));
  for (const Range& r : staticSharedOfTemplates()) std::memset(r.p, 0xff, r.bytes);
  if (dynamicBytes) std::memset(S.dynamicShared, 0xff, dynamicBytes);
}

std::string threadName(const Fiber& f) {
  return "thread (" + std::to_string(f.t.idx.x) + "," + std::to_string(f.t.idx.y) + "," +
         std::to_string(f.t.idx.z) + ")";
}

// Runs one block to completion; false (with S.fault set) when it faulted.
bool runBlock(const std::function<void()>& body, dim3 block, size_t dynamicBytes) {
  const int n = static_cast<int>(block.x * block.y * block.z);
  if (!S.stacks) {
    // One stack per thread of the largest block CUDA allows, reused by every block (untouched pages cost nothing).
    S.stacks = allocStacks(1024);
    S.stackCount = 1024;
  }
  if (!S.dynamicShared) {
    void* p = nullptr;
    if (posix_memalign(&p, 256, kMaxDynamicShared)) std::abort();
    S.dynamicShared = static_cast<char*>(p);
  }
  g_block.serial++;
  g_block.dynamicShared = S.dynamicShared;
  g_block.dynamicSharedBytes = dynamicBytes;
  poisonShared(dynamicBytes);
  S.fibers.resize(n);
  S.warps.assign((n + 31) / 32, Warp{});
  S.threads = S.live = n;
  S.atBarrier = S.exited = 0;
  S.body = &body;
  S.faulted = false;
  for (int i = 0; i < n; i++) {
    Fiber& f = S.fibers[i];
    f.state = kRunnable;
    f.t.linear = static_cast<unsigned>(i);
    f.t.idx = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
    f.t.lane = static_cast<unsigned>(i % 32);
    f.t.warp = static_cast<unsigned>(i / 32);
    S.warps[i / 32].members |= 1u << (i % 32);
    char* top = S.stacks + (kStackBytes + kPage) * (i + 1);
#if defined(__x86_64__)
    f.sp = initialStack(top);
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = top - kStackBytes;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiberEntry, 0);
#endif
  }
  sigjmp_buf jb;
  S.trap = &jb;
  if (sigsetjmp(jb, 1) != 0) {
    const Fiber* f = S.cur;
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", S.trapAddress);
    S.faulted = true;
    S.faultCode = cudaErrorIllegalAddress;
    S.fault = (f ? threadName(*f) : std::string("a thread")) + " accessed address " + addr +
              ", outside every allocation (out of bounds, freed, or a host pointer)";
    S.trap = nullptr;
    return false;
  }
  try {
    const int warps = static_cast<int>(S.warps.size());
    while (S.live > 0 && !S.faulted) {
      bool ran = false;
      if (S.schedule == Schedule::kLockstep) {
        // Every runnable thread advances to its next barrier or warp operation, in thread order.
        for (int i = 0; i < n && !S.faulted; i++) {
          if (S.fibers[i].state == kRunnable) {
            switchTo(S.fibers[i]);
            ran = true;
          }
        }
      } else {
        // One warp at a time runs as far as it can (to a __syncthreads or its end) before the next one starts:
        // a missing barrier between warps then shows, one direction per warp order.
        for (int k = 0; k < warps && !S.faulted; k++) {
          const int w = S.schedule == Schedule::kWarps ? k : warps - 1 - k;
          for (bool any = true; any && !S.faulted;) {
            any = false;
            for (int i = w * 32; i < std::min(n, w * 32 + 32) && !S.faulted; i++) {
              if (S.fibers[i].state == kRunnable) {
                switchTo(S.fibers[i]);
                any = ran = true;
              }
            }
          }
        }
      }
      if (!ran && S.live > 0 && !S.faulted) deadlock();
    }
  } catch (int) {
  }
  S.trap = nullptr;
  return !S.faulted;
}

}  // namespace

bool runGrid(const char* what, const std::function<void()>& body, dim3 grid, dim3 block, size_t dynamicBytes,
             std::string& faultOut, cudaError_t& codeOut, uint64_t& blocksRun) {
  TrapScope trapScope;
  g_block.grid = grid;
  g_block.dim = block;
  for (unsigned z = 0; z < grid.z; z++) {
    for (unsigned y = 0; y < grid.y; y++) {
      for (unsigned x = 0; x < grid.x; x++) {
        g_block.index = uint3{x, y, z};
        blocksRun++;
        if (!runBlock(body, block, dynamicBytes)) {
          faultOut = std::string(what) + ", block (" + std::to_string(x) + "," + std::to_string(y) + "," +
                     std::to_string(z) + "): " + S.fault;
          codeOut = S.faultCode;
          g_thread = nullptr;
          return false;
        }
      }
    }
  }
  g_thread = nullptr;
  return true;
}

bool runGuarded(const std::function<void()>& task, std::string& faultOut) {
  TrapScope trapScope;
  sigjmp_buf jb;
  S.trap = &jb;
  if (sigsetjmp(jb, 1) != 0) {
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", S.trapAddress);
    faultOut = std::string("accessed address ") + addr + ", outside every allocation";
    S.trap = nullptr;
    return false;
  }
  S.inGuarded = 1;
  task();
  S.inGuarded = 0;
  S.trap = nullptr;
  return true;
}

uint64_t fiberSwitches() { return S.switches; }

void setSchedule(Schedule s) { S.schedule = s; }

void setSkipSync(const std::string& site) {
  const size_t colon = site.rfind(':');
  if (site.empty() || colon == std::string::npos) {
    S.skipFile.clear();
    S.skipLine = -1;
    return;
  }
  S.skipFile = site.substr(0, colon);
  S.skipLine = std::atoi(site.c_str() + colon + 1);
}

// ---- device-side entry points ----

void fault(const char* message, cudaError_t code) {
  if (!S.cur || !S.body) {
    std::fprintf(stderr, "lmforge cuda-interpret: device code faulted outside a kernel: %s\n", message);
    std::abort();
  }
  S.faulted = true;
  S.fault = threadName(*S.cur) + ": " + message;
  S.faultCode = code;
  yieldForever();
}

void syncthreads(const char* file, int line) {
  if (line == S.skipLine && where(file, line) == S.skipFile + ":" + std::to_string(line)) return;
  Fiber* f = S.cur;
  if (S.exited > 0)
    fault(("__syncthreads at " + where(file, line) + " is reached after " + std::to_string(S.exited) +
           " thread(s) of the block exited: every thread of a block must reach each __syncthreads")
              .c_str());
  if (S.atBarrier == 0) {
    S.barrierFile = file;
    S.barrierLine = line;
  } else if (S.barrierLine != line || S.barrierFile != file) {
    fault(("threads of one block wait at different __syncthreads: " + where(file, line) + " and " +
           where(S.barrierFile, S.barrierLine))
              .c_str());
  }
  S.atBarrier++;
  if (S.atBarrier == S.threads) {
    for (Fiber& o : S.fibers)
      if (o.state == kAtBarrier) o.state = kRunnable;
    S.atBarrier = 0;
    return;
  }
  f->state = kAtBarrier;
  f->file = file;
  f->line = line;
  yield();
}

void warpCollective(unsigned mask, const char* what, const char* file, int line, const void* in, void* out,
                    WarpCombine combine) {
  Fiber* f = S.cur;
  const unsigned bit = 1u << f->t.lane;
  Warp& w = S.warps[f->t.warp];
  if (!(mask & bit))
    fault((std::string(what) + " at " + where(file, line) + ": lane " + std::to_string(f->t.lane) +
           " calls it with mask " + hexMask(mask) + ", which does not name it")
              .c_str());
  if (mask & ~w.members)
    fault((std::string(what) + " at " + where(file, line) + ": mask " + hexMask(mask) +
           " names lanes beyond the block's last thread (the warp has lanes " + hexMask(w.members) + ")")
              .c_str());
  if (mask & w.exited)
    fault((std::string(what) + " at " + where(file, line) + ": mask " + hexMask(mask) + " names lanes " +
           hexMask(mask & w.exited) + " that have exited")
              .c_str());
  // Join the open operation of the same kind and mask, or open one. (Lanes meeting at different operations whose
  // masks name each other wait for each other forever: the scheduler reports that as a block that cannot continue.)
  size_t k = 0;
  while (k < w.open.size() && !(w.open[k].what == what && w.open[k].mask == mask && !(w.open[k].arrived & bit))) k++;
  if (k == w.open.size()) w.open.push_back(Collective{0, mask, what, file, line, combine});
  Collective& c = w.open[k];
  c.arrived |= bit;
  f->in = in;
  f->out = out;
  if (c.arrived == c.mask) {
    const void* ins[32] = {};
    void* outs[32] = {};
    const int base = static_cast<int>(f->t.warp) * 32;
    for (int l = 0; l < 32; l++)
      if (mask & (1u << l)) {
        ins[l] = S.fibers[base + l].in;
        outs[l] = S.fibers[base + l].out;
      }
    w.open.erase(w.open.begin() + static_cast<std::ptrdiff_t>(k));
    combine(ins, outs, mask);
    for (int l = 0; l < 32; l++)
      if ((mask & (1u << l)) && S.fibers[base + l].state == kAtWarp) S.fibers[base + l].state = kRunnable;
    return;
  }
  f->state = kAtWarp;
  f->file = file;
  f->line = line;
  yield();
}

void shuffleCombine(const void* const in[32], void* const out[32], unsigned mask) {
  for (int l = 0; l < 32; l++) {
    if (!(mask & (1u << l))) continue;
    const auto* s = static_cast<const ShuffleIn*>(in[l]);
    uint64_t v = s->value;
    if (s->src >= 0) {
      if (s->src > 31 || !(mask & (1u << s->src)))
        fault(("a shuffle makes lane " + std::to_string(l) + " read lane " + std::to_string(s->src) +
               ", which is not in the mask " + hexMask(mask) + " (its value is undefined on the GPU)")
                  .c_str());
      v = static_cast<const ShuffleIn*>(in[s->src])->value;
    }
    *static_cast<uint64_t*>(out[l]) = v;
  }
}

void ballotCombine(const void* const in[32], void* const out[32], unsigned mask) {
  unsigned bits = 0;
  for (int l = 0; l < 32; l++)
    if ((mask & (1u << l)) && *static_cast<const int*>(in[l])) bits |= 1u << l;
  for (int l = 0; l < 32; l++)
    if (mask & (1u << l)) *static_cast<unsigned*>(out[l]) = bits;
}

}  // namespace lmf_interp
