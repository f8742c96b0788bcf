// What the running CPU (and its OS) can execute: a cpuid/xgetbv (x86-64) or HWCAP (aarch64) probe.
// Compiled without ISA flags so it runs on any CPU of the architecture.
#pragma once

#include <stddef.h>

struct aglm_cpu_features {
  // x86-64 (cpuid bits; the AVX ones are only usable when the os_saves_* bit is also set)
  bool sse42, avx, avx2, fma, f16c;
  bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avx512fp16;
  // AMX: true only if cpuid reports it, the OS saves the tile state, and the arch_prctl permission request succeeded.
  bool amx_tile, amx_int8, amx_bf16;
  bool os_saves_avx;    // XCR0 bits 1 and 2 (SSE and AVX state)
  bool os_saves_avx512; // XCR0 bits 5, 6 and 7 (opmask and ZMM state)
  bool amx_permitted;   // Linux granted XTILEDATA to this process (arch_prctl ARCH_REQ_XCOMP_PERM)
  // aarch64
  bool neon, dotprod;
  char vendor[16]; // e.g. "GenuineIntel", "AuthenticAMD"; "" where unknown
  char brand[64];  // e.g. "AMD EPYC 9R14"; "" where unknown
};

// Fill *out for the running CPU. May be called many times; the AMX permission request is idempotent.
void aglm_cpu_probe(aglm_cpu_features *out);

// The present features, space-separated ("avx2 fma f16c ..."), truncated to fit n bytes (always NUL-terminated).
void aglm_cpu_features_string(const aglm_cpu_features *f, char *buf, size_t n);
