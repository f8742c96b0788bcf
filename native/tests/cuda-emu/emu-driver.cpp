// A stand-in for the NVIDIA driver library (libcuda.so.1) for the tests, which run where no GPU exists: the entry points
// the CUDA module resolves, one device "open-autoglm fake GPU" (compute capability 9.0, 80 GiB) and a driver version
// from FAKE_CUDA_DRIVER_VERSION (1000 * major + 10 * minor; default 11080, CUDA 11.8). Device memory is host memory;
// streams run in order at once. cuModuleLoadData accepts the module's fatbin and cuModuleGetFunction finds the host
// build of the same kernels (emu-kernels.cpp), which cuLaunchKernel runs block by block, every CUDA thread a fiber
// (cuda-emu.h says what that checks and what not; FAKE_CUDA_ORDER=reverse runs a block's threads in the other order).
// With FAKE_CUDA_NO_KERNELS=1 cuModuleLoadData fails as on a GPU the fatbin has no code for. Loaded with OPEN_AUTOGLM_CUDA_LIBRARY (test/native/cuda.test.ts); never shipped.
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cuda-emu.h"
#include "emu-kernels.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

// Fibers: on x86-64 a switch saves the callee-saved registers on the old stack and swaps stack pointers (no signal
// mask system call, unlike swapcontext, which the other architectures use).
#if defined(__x86_64__)
extern "C" void aglm_emu_switch(void **save_sp, void *load_sp);
asm(R"(
  .text
  .globl aglm_emu_switch
  .hidden aglm_emu_switch
  .type aglm_emu_switch, @function
aglm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size aglm_emu_switch, .-aglm_emu_switch
)");
struct context {
  void *sp = nullptr;
};
#else
struct context {
  ucontext_t uc;
};
#endif

enum state { RUN, WAIT_BLOCK, WAIT_WARP, DONE };
struct fiber {
  context ctx;
  state st = DONE;
  dim3 tid;
  unsigned lin = 0;
  std::vector<char> stack;
};

constexpr size_t kStack = 256 << 10;
std::vector<fiber> fibers;
std::vector<uint32_t> warp_slots;
context scheduler;
fiber *cur = nullptr;
const aglm_emu_kernel *running = nullptr;
void **running_params = nullptr;
std::mutex launch_mu;

void to_scheduler() {
#if defined(__x86_64__)
  aglm_emu_switch(&cur->ctx.sp, scheduler.sp);
#else
  swapcontext(&cur->ctx.uc, &scheduler.uc);
#endif
}

void to_fiber(fiber &f) {
#if defined(__x86_64__)
  aglm_emu_switch(&scheduler.sp, f.ctx.sp);
#else
  swapcontext(&scheduler.uc, &f.ctx.uc);
#endif
}

void fiber_main() {
  running->run(running_params);
  cur->st = DONE;
  to_scheduler(); // never resumed
  __builtin_trap();
}

void start_fiber(fiber &f) {
  if (f.stack.empty()) f.stack.resize(kStack);
#if defined(__SANITIZE_ADDRESS__)
  // A fiber's last frames never return (it ends switched away): clear their stack redzones before the stack is reused.
  __asan_unpoison_memory_region(f.stack.data(), f.stack.size());
#endif
#if defined(__x86_64__)
  // The first switch pops six zero registers and returns into fiber_main with the stack aligned as after a call.
  uintptr_t top = ((uintptr_t)f.stack.data() + f.stack.size()) & ~(uintptr_t)15;
  void **sp = (void **)(top - 16);
  sp[0] = (void *)&fiber_main;
  sp -= 6;
  for (int i = 0; i < 6; i++) sp[i] = nullptr;
  f.ctx.sp = sp;
#else
  getcontext(&f.ctx.uc);
  f.ctx.uc.uc_stack.ss_sp = f.stack.data();
  f.ctx.uc.uc_stack.ss_size = f.stack.size();
  f.ctx.uc.uc_link = nullptr;
  makecontext(&f.ctx.uc, fiber_main, 0);
#endif
}

void wait(state s) {
  cur->st = s;
  to_scheduler();
}

// Runs one block; false with `why` on a deadlock or a fault.
bool run_block(unsigned nthreads, std::string *why) {
  if (fibers.size() < nthreads) fibers.resize(nthreads);
  const unsigned n_warps = (nthreads + 31) / 32;
  warp_slots.assign((size_t)n_warps * 32, 0);
  for (unsigned i = 0; i < nthreads; i++) {
    fiber &f = fibers[i];
    f.lin = i;
    f.tid.x = i % blockDim.x;
    f.tid.y = i / blockDim.x % blockDim.y;
    f.tid.z = i / (blockDim.x * blockDim.y);
    start_fiber(f);
    f.st = RUN;
  }
  // FAKE_CUDA_ORDER=reverse resumes the threads last to first: a kernel that reads another thread's write without a
  // barrier between them gives other results in the other order (the race check of cuda-emu.test.ts).
  static const bool reverse = [] {
    const char *e = getenv("FAKE_CUDA_ORDER");
    return e && std::strcmp(e, "reverse") == 0;
  }();
  for (;;) {
    for (unsigned j = 0; j < nthreads; j++) {
      fiber &f = fibers[reverse ? nthreads - 1 - j : j];
      if (f.st != RUN) continue;
      cur = &f;
      threadIdx = f.tid;
      to_fiber(f);
    }
    unsigned live = 0, at_block = 0;
    for (unsigned i = 0; i < nthreads; i++) live += fibers[i].st != DONE, at_block += fibers[i].st == WAIT_BLOCK;
    if (live == 0) return true;
    bool released = false;
    for (unsigned w = 0; w < n_warps; w++) {
      const unsigned lo = w * 32, hi = std::min(nthreads, lo + 32);
      unsigned live_w = 0, wait_w = 0;
      for (unsigned i = lo; i < hi; i++) live_w += fibers[i].st != DONE, wait_w += fibers[i].st == WAIT_WARP;
      if (live_w == 0 || wait_w != live_w) continue;
      if (live_w != hi - lo) return *why = "a warp-collective operation after part of warp " + std::to_string(w) + " had left", false;
      for (unsigned i = lo; i < hi; i++) fibers[i].st = RUN;
      released = true;
    }
    if (!released && at_block == live) {
      for (unsigned i = 0; i < nthreads; i++)
        if (fibers[i].st == WAIT_BLOCK) fibers[i].st = RUN;
      released = true;
    }
    if (!released) return *why = "deadlock: threads wait at different barriers (__syncthreads and a warp operation)", false;
  }
}

typedef int CUresult;
constexpr CUresult OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, INVALID_DEVICE = 101, NO_BINARY_FOR_GPU = 209, NOT_FOUND = 500,
                   LAUNCH_FAILED = 719;
int ctx_token;

} // namespace

void aglm_emu_syncthreads() { wait(WAIT_BLOCK); }
void aglm_emu_warp_wait() { wait(WAIT_WARP); }
unsigned aglm_emu_lane() { return cur->lin % 32; }
uint32_t *aglm_emu_warp_slots() { return &warp_slots[(size_t)(cur->lin / 32) * 32]; }
void aglm_emu_fail(const char *what) {
  std::fprintf(stderr, "cuda-emu: %s: %s (block %u,%u,%u, thread %u,%u,%u)\n", running ? running->name : "?", what, blockIdx.x, blockIdx.y, blockIdx.z,
               threadIdx.x, threadIdx.y, threadIdx.z);
  std::abort();
}

#define EXPORT extern "C" __attribute__((visibility("default")))
typedef unsigned long long CUdeviceptr;

EXPORT CUresult cuInit(unsigned flags) { return flags == 0 ? OK : INVALID_VALUE; }
EXPORT CUresult cuDriverGetVersion(int *v) {
  const char *e = getenv("FAKE_CUDA_DRIVER_VERSION");
  *v = e && *e ? atoi(e) : 11080;
  return OK;
}
EXPORT CUresult cuGetErrorString(CUresult e, const char **s) {
  *s = e == NO_BINARY_FOR_GPU ? "no kernel image is available for execution on the device (fake driver)"
       : e == LAUNCH_FAILED   ? "unspecified launch failure (fake driver: see its message on stderr)"
       : e == OUT_OF_MEMORY   ? "out of memory (fake driver)"
                              : "error (fake driver)";
  return OK;
}
EXPORT CUresult cuDeviceGetCount(int *n) { return *n = 1, OK; }
EXPORT CUresult cuDeviceGet(int *d, int ordinal) { return ordinal == 0 ? (*d = 0, OK) : INVALID_DEVICE; }
EXPORT CUresult cuDeviceGetName(char *name, int len, int) {
  std::snprintf(name, (size_t)len, "%s", "open-autoglm fake GPU");
  return OK;
}
EXPORT CUresult cuDeviceGetAttribute(int *v, int attr, int) {
  switch (attr) {
    case 75: *v = 9; break;       // compute capability major
    case 76: *v = 0; break;       // minor
    case 16: *v = 132; break;     // multiprocessors
    case 13: *v = 1980000; break; // clock, kHz
    case 36: *v = 2619000; break; // memory clock, kHz
    case 37: *v = 5120; break;    // bus width, bits
    default: *v = 0;
  }
  return OK;
}
EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, int) { return *bytes = (size_t)80 << 30, OK; }
EXPORT CUresult cuDevicePrimaryCtxRetain(void **c, int) { return *c = &ctx_token, OK; }
EXPORT CUresult cuCtxPushCurrent_v2(void *) { return OK; }
EXPORT CUresult cuCtxPopCurrent_v2(void **c) { return *c = &ctx_token, OK; }
EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) { return *free_bytes = (size_t)79 << 30, *total = (size_t)80 << 30, OK; }
EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  void *m = std::malloc(n ? n : 1);
  if (!m) return OUT_OF_MEMORY;
  std::memset(m, 0xa5, n); // device memory starts as garbage, not zeros
  return *p = (CUdeviceptr)(uintptr_t)m, OK;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr p) { return std::free((void *)(uintptr_t)p), OK; }
EXPORT CUresult cuMemAllocHost_v2(void **p, size_t n) { return (*p = std::malloc(n ? n : 1)) ? OK : OUT_OF_MEMORY; }
EXPORT CUresult cuMemFreeHost(void *p) { return std::free(p), OK; }
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) { return std::memcpy((void *)(uintptr_t)d, s, n), OK; }
EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, void *) { return cuMemcpyHtoD_v2(d, s, n); }
EXPORT CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, void *) { return std::memcpy(d, (const void *)(uintptr_t)s, n), OK; }
EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void *) {
  return std::memmove((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n), OK;
}
EXPORT CUresult cuModuleLoadData(void **m, const void *image) {
  const char *e = getenv("FAKE_CUDA_NO_KERNELS");
  if ((e && std::strcmp(e, "1") == 0) || !image) return NO_BINARY_FOR_GPU;
  return *m = &ctx_token, OK;
}
EXPORT CUresult cuModuleUnload(void *) { return OK; }
EXPORT CUresult cuModuleGetFunction(void **f, void *, const char *name) {
  const aglm_emu_kernel *k = aglm_emu_find_kernel(name);
  return k ? (*f = (void *)k, OK) : NOT_FOUND;
}
EXPORT CUresult cuStreamCreate(void **s, unsigned) { return *s = &ctx_token, OK; }
EXPORT CUresult cuStreamDestroy_v2(void *) { return OK; }
EXPORT CUresult cuStreamSynchronize(void *) { return OK; }
EXPORT CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void *,
                               void **params, void **extra) {
  const auto *k = (const aglm_emu_kernel *)f;
  if (!k || !params || extra || shared || !gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 || bx * by * bz > 1024)
    return INVALID_VALUE;
  std::lock_guard<std::mutex> lock(launch_mu);
  running = k;
  running_params = params;
  blockDim = {bx, by, bz};
  gridDim = {gx, gy, gz};
  for (unsigned z = 0; z < gz; z++)
    for (unsigned y = 0; y < gy; y++)
      for (unsigned x = 0; x < gx; x++) {
        blockIdx = {x, y, z};
        std::string why;
        if (!run_block(bx * by * bz, &why)) {
          std::fprintf(stderr, "cuda-emu: %s: %s (block %u,%u,%u of %u,%u,%u; %u,%u,%u threads)\n", k->name, why.c_str(), x, y, z, gx, gy, gz, bx, by, bz);
          return LAUNCH_FAILED;
        }
      }
  return OK;
}
