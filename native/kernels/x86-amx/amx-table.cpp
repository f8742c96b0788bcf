// The amx kernel table `aglm_kernels_amx`: the avx512 table with its own matmul (AMX tiles for prompt processing,
// AVX-512 VNNI/BF16 for decoding, both over weights repacked once at load) and the repack hook. Everything that is not
// a packed weight goes to the avx512 matmul. The tiles run only where aglm_amx::tiles_usable(); on an AVX-512
// VNNI/BF16 CPU without AMX the table works on the AVX-512 kernels alone (cpu-variants.cpp scores it below avx512
// there, so it runs only when forced). Built without ISA flags: the table is filled by a dynamic initializer, which
// runs when the library loads, on any CPU.
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/kernels.h"
#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-avx512/avx512-internal.h"

namespace {

// AMX-TILE, -INT8 and -BF16 in cpuid, the tile state enabled in XCR0 and (Linux) XTILEDATA granted to this process
// (aglm_cpu_probe asks for it; this only asks whether it was given). Read once.
bool aglm_amx_tiles_present() {
#if defined(_MSC_VER)
  int r[4];
  __cpuidex(r, 7, 0);
  const unsigned edx = (unsigned)r[3];
  const bool osxsave = [] { int q[4]; __cpuid(q, 1); return ((q[2] >> 27) & 1) != 0; }();
  const unsigned long long xcr0 = osxsave ? _xgetbv(0) : 0;
#else
  unsigned a = 0, b = 0, c = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &edx)) return false;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __get_cpuid(1, &a1, &b1, &c1, &d1);
  unsigned long long xcr0 = 0;
  if ((c1 >> 27) & 1u) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((unsigned long long)hi << 32) | lo;
  }
#endif
  if (!((edx >> 22) & 1u) || !((edx >> 24) & 1u) || !((edx >> 25) & 1u) || ((xcr0 >> 17) & 3u) != 3u) return false;
#if defined(__linux__)
  unsigned long long perm = 0;
  return syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &perm) == 0 && ((perm >> 18) & 1u);
#else
  return true;
#endif
}

} // namespace

namespace aglm_amx {

bool tiles_usable() {
  static const bool usable = aglm_amx_tiles_present();
  return usable;
}

void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (!a->w_packed) return aglm_avx512::matmul(a, r0, r1);
  if (a->n >= tile_min_tokens && tiles_usable()) matmul_tiles(a, r0, r1);
  else matmul_packed(a, r0, r1);
}

} // namespace aglm_amx

namespace {

// A copy of the avx512 table (so members added to it later come along), taken during dynamic initialization; the
// avx512 table is constant-initialized, so it is complete by then.
aglm_kernels aglm_amx_table() {
  aglm_kernels k = aglm_kernels_avx512;
  k.name = "amx";
  k.matmul = aglm_amx::matmul;
  k.repack_size = aglm_amx::repack_size;
  k.repack = aglm_amx::repack;
  k.unpack_row = aglm_amx::unpack_row;
  return k;
}

} // namespace

extern "C" const aglm_kernels aglm_kernels_amx = aglm_amx_table();
