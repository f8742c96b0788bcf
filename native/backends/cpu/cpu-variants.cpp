// The CPU variant table (ref, avx2, avx512, amx), their scores for a feature set, and the selection with its reason.
#include "backends/cpu/cpu-variants.h"

#include <stdio.h>
#include <string.h>

namespace {

struct aglm_need {
  const char *name;
  bool aglm_cpu_features::*field;
};

#if defined(__x86_64__) || defined(_M_X64)
const aglm_need aglm_avx2_needs[] = {
    {"avx2", &aglm_cpu_features::avx2},
    {"fma", &aglm_cpu_features::fma},
    {"f16c", &aglm_cpu_features::f16c},
    {"os-avx", &aglm_cpu_features::os_saves_avx},
};
const aglm_need aglm_avx512_needs[] = {
    {"avx512f", &aglm_cpu_features::avx512f},
    {"avx512bw", &aglm_cpu_features::avx512bw},
    {"avx512vl", &aglm_cpu_features::avx512vl},
    {"avx512dq", &aglm_cpu_features::avx512dq},
    {"os-avx512", &aglm_cpu_features::os_saves_avx512},
};
// amx: the avx512 set plus VNNI and BF16 (its packed-layout kernels), and for the tiles the AMX features (amx_* are
// only set when the OS saves the tile state and Linux granted XTILEDATA).
const aglm_need aglm_amx_base_needs[] = {
    {"avx512vnni", &aglm_cpu_features::avx512vnni},
    {"avx512bf16", &aglm_cpu_features::avx512bf16},
};
const aglm_need aglm_amx_needs[] = {
    {"amx-tile", &aglm_cpu_features::amx_tile},
    {"amx-int8", &aglm_cpu_features::amx_int8},
    {"amx-bf16", &aglm_cpu_features::amx_bf16},
    {"amx-permission", &aglm_cpu_features::amx_permitted},
};
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
const aglm_need aglm_neon_needs[] = {
    {"neon", &aglm_cpu_features::neon},
};
#endif

template <size_t N>
bool aglm_needs_met(const aglm_need (&needs)[N], const aglm_cpu_features *f) {
  for (const aglm_need &n : needs)
    if (!(f->*n.field)) return false;
  return true;
}

// Append the names of the unmet needs to buf (which holds a NUL-terminated string of capacity n).
template <size_t N>
void aglm_needs_missing(const aglm_need (&needs)[N], const aglm_cpu_features *f, char *buf, size_t n) {
  for (const aglm_need &nd : needs) {
    if (f->*nd.field) continue;
    const size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s", len ? " " : "", nd.name);
  }
}

int aglm_ref_score(const aglm_cpu_features *) { return 1; }
void aglm_ref_missing(const aglm_cpu_features *, char *buf, size_t n) {
  if (n) buf[0] = '\0';
}

#if defined(__x86_64__) || defined(_M_X64)
int aglm_avx2_score(const aglm_cpu_features *f) { return aglm_needs_met(aglm_avx2_needs, f) ? 20 : 0; }
void aglm_avx2_missing(const aglm_cpu_features *f, char *buf, size_t n) {
  if (!n) return;
  buf[0] = '\0';
  aglm_needs_missing(aglm_avx2_needs, f, buf, n);
}

int aglm_avx512_score(const aglm_cpu_features *f) {
  if (!aglm_needs_met(aglm_avx2_needs, f) || !aglm_needs_met(aglm_avx512_needs, f)) return 0;
  return f->avx512vnni ? 35 : 30;
}
void aglm_avx512_missing(const aglm_cpu_features *f, char *buf, size_t n) {
  aglm_avx2_missing(f, buf, n);
  if (n) aglm_needs_missing(aglm_avx512_needs, f, buf, n);
}

// With AMX: above avx512. Without it the table still runs (AVX-512 VNNI/BF16 over its packed weights, no tiles) but
// scores below avx512 (35 with VNNI), so it is used only when forced: its decoding is not yet as fast as avx512's
// on every CPU without AMX (native/kernels/README.md).
int aglm_amx_score(const aglm_cpu_features *f) {
  if (aglm_avx512_score(f) == 0 || !aglm_needs_met(aglm_amx_base_needs, f)) return 0;
  return aglm_needs_met(aglm_amx_needs, f) ? 40 : 32;
}
void aglm_amx_missing(const aglm_cpu_features *f, char *buf, size_t n) {
  aglm_avx512_missing(f, buf, n);
  if (n) aglm_needs_missing(aglm_amx_base_needs, f, buf, n);
}
void aglm_amx_note(const aglm_cpu_features *f, char *buf, size_t n) {
  if (!n) return;
  buf[0] = '\0';
  if (aglm_amx_score(f) == 0 || aglm_needs_met(aglm_amx_needs, f)) return;
  char lack[128] = "";
  aglm_needs_missing(aglm_amx_needs, f, lack, sizeof lack);
  snprintf(buf, n, "packed AVX-512 kernels only, no AMX tiles on this CPU (no %s)", lack);
}
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
// dotprod is optional: without it the table's quantized matmul runs its baseline (vmull/vpadal) object.
int aglm_neon_score(const aglm_cpu_features *f) {
  if (!aglm_needs_met(aglm_neon_needs, f)) return 0;
  return f->dotprod ? 25 : 20;
}
void aglm_neon_missing(const aglm_cpu_features *f, char *buf, size_t n) {
  if (!n) return;
  buf[0] = '\0';
  aglm_needs_missing(aglm_neon_needs, f, buf, n);
}
void aglm_neon_note(const aglm_cpu_features *f, char *buf, size_t n) {
  if (!n) return;
  snprintf(buf, n, "%s", aglm_neon_score(f) > 0 && !f->dotprod ? "no dotprod: int8 dot products by vmull/vpadal" : "");
}
#endif

const aglm_cpu_variant aglm_cpu_variants[] = {
    {"ref", &aglm_kernels_ref, aglm_ref_score, aglm_ref_missing, nullptr},
#if defined(__x86_64__) || defined(_M_X64)
    {"avx2", &aglm_kernels_avx2, aglm_avx2_score, aglm_avx2_missing, nullptr},
    {"avx512", &aglm_kernels_avx512, aglm_avx512_score, aglm_avx512_missing, nullptr},
    {"amx", &aglm_kernels_amx, aglm_amx_score, aglm_amx_missing, aglm_amx_note},
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    {"neon", &aglm_kernels_neon, aglm_neon_score, aglm_neon_missing, aglm_neon_note},
#endif
};

const int aglm_cpu_variant_n = (int)(sizeof aglm_cpu_variants / sizeof aglm_cpu_variants[0]);

// "ref, avx2, avx512"
void aglm_variant_names_write(char *buf, size_t n) {
  buf[0] = '\0';
  for (int i = 0; i < aglm_cpu_variant_n; i++) {
    const size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s", i ? ", " : "", aglm_cpu_variants[i].name);
  }
}

void aglm_why_write(char *why, size_t why_len, const char *fmt, const char *a, const char *b) {
  if (why && why_len) snprintf(why, why_len, fmt, a, b);
}

aglm_status aglm_cpu_forced_select(const aglm_cpu_features *f, const char *forced, const aglm_kernels **out,
                                   char *why, size_t why_len) {
  char names[128], missing[256];
  aglm_variant_names_write(names, sizeof names);
  for (const aglm_cpu_variant &v : aglm_cpu_variants) {
    if (strcmp(v.name, forced) != 0) continue;
    if (v.score(f) > 0) {
      *out = v.kernels;
      aglm_why_write(why, why_len, "%s: forced by OPEN_AUTOGLM_CPU%s", v.name, "");
      return AGLM_OK;
    }
    v.missing(f, missing, sizeof missing);
    aglm_why_write(why, why_len, "OPEN_AUTOGLM_CPU=%s cannot run on this CPU (missing: %s)", v.name, missing);
    return AGLM_ERR_BACKEND_UNAVAILABLE;
  }
  aglm_why_write(why, why_len, "OPEN_AUTOGLM_CPU=%s is not a CPU variant of this build (valid: %s)", forced, names);
  return AGLM_ERR_BACKEND_UNAVAILABLE;
}

} // namespace

int aglm_cpu_variant_count() { return aglm_cpu_variant_n; }

const aglm_cpu_variant *aglm_cpu_variant_at(int i) {
  return i >= 0 && i < aglm_cpu_variant_n ? &aglm_cpu_variants[i] : nullptr;
}

aglm_status aglm_cpu_select_for(const aglm_cpu_features *f, const char *forced, const aglm_kernels **out, char *why,
                                size_t why_len) {
  if (forced && forced[0]) return aglm_cpu_forced_select(f, forced, out, why, why_len);
  const aglm_cpu_variant *best = &aglm_cpu_variants[0];
  for (const aglm_cpu_variant &v : aglm_cpu_variants)
    if (v.score(f) > best->score(f)) best = &v;
  *out = best->kernels;
  char names[128], present[512];
  aglm_variant_names_write(names, sizeof names);
  aglm_cpu_features_string(f, present, sizeof present);
  if (why && why_len)
    snprintf(why, why_len, "%s: best of %s for this CPU (%s present)", best->name, names,
             present[0] ? present : "no SIMD features");
  return AGLM_OK;
}

aglm_status aglm_cpu_select(const char *forced, const aglm_kernels **out, char *why, size_t why_len) {
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  return aglm_cpu_select_for(&f, forced, out, why, why_len);
}
