// The CPU kernel variants compiled into this build, how well each suits a CPU, and the choice among them.
#pragma once

#include <stddef.h>

#include "backends/cpu/cpu-features.h"
#include "base/status.h"
#include "kernels/kernels.h"

struct aglm_cpu_variant {
  const char *name;               // "ref", "avx2", "avx512"
  const aglm_kernels *kernels;
  int (*score)(const aglm_cpu_features *); // 0: cannot run on that CPU; higher is better
  // Space-separated features the variant needs that f lacks ("" if none), truncated to n bytes.
  void (*missing)(const aglm_cpu_features *f, char *buf, size_t n);
  // (optional) How the variant runs on a CPU it runs on but without all it can use ("" if fully), truncated to n.
  void (*note)(const aglm_cpu_features *f, char *buf, size_t n);
};

// How many variants this build has (ref always; avx2 and avx512 on x86-64), and the i-th (nullptr out of range).
int aglm_cpu_variant_count();
const aglm_cpu_variant *aglm_cpu_variant_at(int i);

// Pick the kernels for the running CPU: the best-scoring variant, or `forced` (nullptr or "" means best) if it can
// run here. AGLM_ERR_BACKEND_UNAVAILABLE for an unknown name (the message lists the valid ones) or a variant the CPU
// cannot run (the message names the missing features). `why` receives one sentence explaining the choice or failure.
aglm_status aglm_cpu_select(const char *forced, const aglm_kernels **out, char *why, size_t why_len);
// The same for a given feature set (tests, diagnostics).
aglm_status aglm_cpu_select_for(const aglm_cpu_features *f, const char *forced, const aglm_kernels **out, char *why,
                                size_t why_len);
