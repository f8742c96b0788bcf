// The CPU feature probe: cpuid + xgetbv and the AMX permission request on x86-64, getauxval(AT_HWCAP) on aarch64.
#include "backends/cpu/cpu-features.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define AGLM_CPU_X86 1
#elif defined(_M_X64) && defined(_MSC_VER)
#include <intrin.h>
#define AGLM_CPU_X86 1
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace {

#ifdef AGLM_CPU_X86

struct aglm_cpuid_regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

aglm_cpuid_regs aglm_cpuid(uint32_t leaf, uint32_t sub) {
  aglm_cpuid_regs r;
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, (int)leaf, (int)sub);
  r.eax = (uint32_t)v[0], r.ebx = (uint32_t)v[1], r.ecx = (uint32_t)v[2], r.edx = (uint32_t)v[3];
#else
  __cpuid_count(leaf, sub, r.eax, r.ebx, r.ecx, r.edx);
#endif
  return r;
}

bool aglm_bit(uint32_t v, int bit) { return (v >> bit) & 1u; }

// XCR0 through the xgetbv instruction (inline assembly, so no -mxsave flag is needed).
uint64_t aglm_xcr0_read() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
#endif
}

void aglm_cpu_names_read(aglm_cpu_features *f, uint32_t max_ext) {
  const aglm_cpuid_regs v = aglm_cpuid(0, 0);
  memcpy(f->vendor + 0, &v.ebx, 4);
  memcpy(f->vendor + 4, &v.edx, 4);
  memcpy(f->vendor + 8, &v.ecx, 4);
  f->vendor[12] = '\0';
  if (max_ext < 0x80000004u) return;
  for (uint32_t i = 0; i < 3; i++) {
    const aglm_cpuid_regs b = aglm_cpuid(0x80000002u + i, 0);
    memcpy(f->brand + 16 * i + 0, &b.eax, 4);
    memcpy(f->brand + 16 * i + 4, &b.ebx, 4);
    memcpy(f->brand + 16 * i + 8, &b.ecx, 4);
    memcpy(f->brand + 16 * i + 12, &b.edx, 4);
  }
  f->brand[48] = '\0';
}

// Ask Linux for the AMX tile data state (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); false elsewhere or on refusal.
bool aglm_amx_permission_request() {
#ifdef __linux__
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
  return false;
#endif
}

void aglm_cpu_leaf7_read(aglm_cpu_features *f, uint64_t xcr0) {
  const aglm_cpuid_regs l7 = aglm_cpuid(7, 0);
  f->avx2 = aglm_bit(l7.ebx, 5);
  f->avx512f = aglm_bit(l7.ebx, 16);
  f->avx512dq = aglm_bit(l7.ebx, 17);
  f->avx512bw = aglm_bit(l7.ebx, 30);
  f->avx512vl = aglm_bit(l7.ebx, 31);
  f->avx512vnni = aglm_bit(l7.ecx, 11);
  f->avx512fp16 = aglm_bit(l7.edx, 23);
  if (l7.eax >= 1) f->avx512bf16 = aglm_bit(aglm_cpuid(7, 1).eax, 5);
  const bool os_saves_amx = ((xcr0 >> 17) & 3u) == 3u;
  if (!aglm_bit(l7.edx, 24) || !os_saves_amx) return;
  f->amx_permitted = aglm_amx_permission_request();
  f->amx_tile = f->amx_permitted;
  f->amx_int8 = f->amx_permitted && aglm_bit(l7.edx, 25);
  f->amx_bf16 = f->amx_permitted && aglm_bit(l7.edx, 22);
}

void aglm_cpu_probe_x86(aglm_cpu_features *f) {
  const uint32_t max_leaf = aglm_cpuid(0, 0).eax;
  const uint32_t max_ext = aglm_cpuid(0x80000000u, 0).eax;
  aglm_cpu_names_read(f, max_ext);
  if (max_leaf < 1) return;
  const aglm_cpuid_regs l1 = aglm_cpuid(1, 0);
  f->sse42 = aglm_bit(l1.ecx, 20);
  f->fma = aglm_bit(l1.ecx, 12);
  f->avx = aglm_bit(l1.ecx, 28);
  f->f16c = aglm_bit(l1.ecx, 29);
  const uint64_t xcr0 = aglm_bit(l1.ecx, 27) ? aglm_xcr0_read() : 0; // OSXSAVE
  f->os_saves_avx = (xcr0 & 0x6u) == 0x6u;
  f->os_saves_avx512 = (xcr0 & 0xe0u) == 0xe0u;
  if (max_leaf >= 7) aglm_cpu_leaf7_read(f, xcr0);
}

#endif // AGLM_CPU_X86

#if defined(__aarch64__)
void aglm_cpu_probe_arm(aglm_cpu_features *f) {
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f->neon = (hwcap >> 1) & 1u;     // HWCAP_ASIMD
  f->dotprod = (hwcap >> 20) & 1u; // HWCAP_ASIMDDP
#elif defined(__APPLE__)
  f->neon = true; // Advanced SIMD is mandatory on AArch64
  int v = 0;
  size_t len = sizeof v;
  f->dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, nullptr, 0) == 0 && v != 0;
#else
  f->neon = true; // Advanced SIMD is mandatory on AArch64
#if defined(__ARM_FEATURE_DOTPROD)
  f->dotprod = true;
#endif
#endif
}
#endif

} // namespace

void aglm_cpu_probe(aglm_cpu_features *out) {
  memset(out, 0, sizeof *out);
#ifdef AGLM_CPU_X86
  aglm_cpu_probe_x86(out);
#elif defined(__aarch64__)
  aglm_cpu_probe_arm(out);
#endif
}

namespace {

struct aglm_feature_name {
  const char *name;
  bool aglm_cpu_features::*field;
};

const aglm_feature_name aglm_feature_names[] = {
    {"sse4.2", &aglm_cpu_features::sse42},
    {"avx", &aglm_cpu_features::avx},
    {"avx2", &aglm_cpu_features::avx2},
    {"fma", &aglm_cpu_features::fma},
    {"f16c", &aglm_cpu_features::f16c},
    {"avx512f", &aglm_cpu_features::avx512f},
    {"avx512bw", &aglm_cpu_features::avx512bw},
    {"avx512vl", &aglm_cpu_features::avx512vl},
    {"avx512dq", &aglm_cpu_features::avx512dq},
    {"avx512vnni", &aglm_cpu_features::avx512vnni},
    {"avx512bf16", &aglm_cpu_features::avx512bf16},
    {"avx512fp16", &aglm_cpu_features::avx512fp16},
    {"amx-tile", &aglm_cpu_features::amx_tile},
    {"amx-int8", &aglm_cpu_features::amx_int8},
    {"amx-bf16", &aglm_cpu_features::amx_bf16},
    {"os-avx", &aglm_cpu_features::os_saves_avx},
    {"os-avx512", &aglm_cpu_features::os_saves_avx512},
    {"neon", &aglm_cpu_features::neon},
    {"dotprod", &aglm_cpu_features::dotprod},
};

// Append " name" (or "name" at the start) if it fits; returns the new length.
size_t aglm_word_append(char *buf, size_t len, size_t n, const char *word) {
  const size_t wl = strlen(word) + (len ? 1 : 0);
  if (len + wl + 1 > n) return len;
  if (len) buf[len++] = ' ';
  memcpy(buf + len, word, strlen(word) + 1);
  return len + strlen(word);
}

} // namespace

void aglm_cpu_features_string(const aglm_cpu_features *f, char *buf, size_t n) {
  if (!buf || n == 0) return;
  buf[0] = '\0';
  size_t len = 0;
  for (const aglm_feature_name &fn : aglm_feature_names)
    if (f->*fn.field) len = aglm_word_append(buf, len, n, fn.name);
}
