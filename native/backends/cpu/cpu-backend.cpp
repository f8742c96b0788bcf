// The CPU backend's HAL table: picks a kernel variant for each program (best for this CPU, or the one asked for)
// and runs sessions with the CPU executor.
#include <cstdio>
#include <cstring>
#include <string>

#include "backends/cpu/cpu-executor.h"
#include "backends/cpu/cpu-features.h"
#include "backends/cpu/cpu-variants.h"
#include "hal/backend.h"

struct aglm_program {
  std::unique_ptr<cpu_program> cpu;
};
struct aglm_session {
  std::unique_ptr<cpu_session> cpu;
};

namespace {

void put(char *buf, size_t len, const std::string &s) {
  if (len) std::snprintf(buf, len, "%s", s.c_str());
}

int cpu_score(char *why, size_t len) {
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  char feats[512];
  aglm_cpu_features_string(&f, feats, sizeof feats);
  put(why, len, std::string("always available; CPU ") + f.brand + " (" + feats + ")");
  return 1;
}

aglm_status cpu_program_create_i(const aglm_program_desc *desc, aglm_program **out, char *err, size_t err_len) {
  const aglm_kernels *k = nullptr;
  char why[512] = {0};
  aglm_status st = aglm_cpu_select(desc->variant, &k, why, sizeof why);
  if (st != AGLM_OK) {
    put(err, err_len, why);
    return st;
  }
  std::string description = why;
  if (desc->variant && *desc->variant && desc->variant_source)
    description += std::string(" (requested by ") + desc->variant_source + ")";
  auto p = std::make_unique<aglm_program>();
  aglm_result r = cpu_program_create(*desc, k, description, &p->cpu);
  if (!r.is_ok()) {
    put(err, err_len, r.message);
    return r.status;
  }
  *out = p.release();
  return AGLM_OK;
}

void cpu_program_free_i(aglm_program *p) { delete p; }

void cpu_program_describe_i(const aglm_program *p, char *buf, size_t len) { put(buf, len, p->cpu->description); }

aglm_status cpu_session_create_i(aglm_program *p, const aglm_session_desc *desc, aglm_session **out, char *err,
                                 size_t err_len) {
  auto s = std::make_unique<aglm_session>();
  aglm_result r = cpu_session_create(p->cpu.get(), *desc, &s->cpu);
  if (!r.is_ok()) {
    put(err, err_len, r.message);
    return r.status;
  }
  *out = s.release();
  return AGLM_OK;
}

void cpu_session_free_i(aglm_session *s) { delete s; }

aglm_status cpu_session_decode_i(aglm_session *s, const aglm_batch *b, char *err, size_t err_len) {
  aglm_result r = cpu_session_decode(s->cpu.get(), *b);
  if (!r.is_ok()) put(err, err_len, r.message);
  return r.status;
}

uint64_t cpu_session_memory_i(const aglm_session *s) { return s->cpu->bytes; }

} // namespace

extern const aglm_backend_i aglm_backend_cpu = {
    /* api_version */ AGLM_BACKEND_API_VERSION,
    /* name */ "cpu",
    /* score */ cpu_score,
    /* program_create */ cpu_program_create_i,
    /* program_free */ cpu_program_free_i,
    /* program_describe */ cpu_program_describe_i,
    /* session_create */ cpu_session_create_i,
    /* session_free */ cpu_session_free_i,
    /* session_decode */ cpu_session_decode_i,
    /* session_memory */ cpu_session_memory_i,
};
