// The built-in CPU backend: every kernel variant of this build (ref, avx2, avx512, amx, neon), the best for this CPU
// or the one asked for; its systemInfo report lists the CPU features, the variants and the choice.
#include <cstdio>
#include <string>

#include "backends/cpu/cpu-features.h"
#include "backends/cpu/cpu-hal.h"
#include "backends/cpu/cpu-variants.h"

namespace {

int32_t cpu_score(char *why, size_t len) {
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  char feats[512];
  aglm_cpu_features_string(&f, feats, sizeof feats);
  cpu_hal::put(why, len, std::string("always available; CPU ") + f.brand + " (" + feats + ")");
  return 100; // a GPU backend scores above this when it has a GPU; a CPU Vulkan device scores below (used by name)
}

int32_t cpu_select(const char *variant, const aglm_kernels **out, char *why, size_t len) {
  return aglm_cpu_select(variant, out, why, len);
}

std::string json_string(const char *s) { return aglm_backend::json_str(s); }

// {"cpu":{vendor,brand,features},"variants":[{name,score,note}],"choice":{variant|null,reason,code?}}
size_t cpu_report(const char *variant, char *buf, size_t len) {
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  char feats[512];
  aglm_cpu_features_string(&f, feats, sizeof feats);
  std::string j = "{\"cpu\":{\"vendor\":" + json_string(f.vendor) + ",\"brand\":" + json_string(f.brand) +
                  ",\"features\":" + json_string(feats) + "},\"variants\":[";
  for (int i = 0; i < aglm_cpu_variant_count(); i++) {
    const aglm_cpu_variant *v = aglm_cpu_variant_at(i);
    char note[256] = "";
    if (v->note) v->note(&f, note, sizeof note);
    j += std::string(i ? "," : "") + "{\"name\":" + json_string(v->name) + ",\"score\":" + std::to_string(v->score(&f)) +
         ",\"note\":" + json_string(note) + "}";
  }
  char why[512] = {0};
  const aglm_kernels *k = nullptr;
  const aglm_status st = aglm_cpu_select_for(&f, variant, &k, why, sizeof why);
  j += std::string("],\"choice\":{\"variant\":") + (st == AGLM_OK ? json_string(k->name) : "null") + ",\"reason\":" + json_string(why);
  if (st != AGLM_OK) j += std::string(",\"code\":") + json_string(aglm_status_code(st));
  j += "}}";
  if (buf && len) std::snprintf(buf, len, "%s", j.c_str());
  return j.size() + 1;
}

const cpu_backend_config kCpu = {"cpu", cpu_score, cpu_select, cpu_report, "the host CPU", nullptr};

} // namespace

// The built-in backend's entry, called by the registry (hal/registry.cpp) like a module's.
extern "C" const aglm_hal_backend *aglm_cpu_backend_entry(uint32_t api_version, char *why, size_t why_len) {
  if (api_version != AGLM_HAL_API_VERSION) {
    cpu_hal::put(why, why_len, "the built-in CPU backend implements HAL API version " + std::to_string(AGLM_HAL_API_VERSION));
    return nullptr;
  }
  return cpu_hal::table<&kCpu>::get();
}
