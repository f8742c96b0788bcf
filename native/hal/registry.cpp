// Backend registry: the built-in CPU backend; GPU backends register here when their module loads.
#include "hal/registry.h"

#include <algorithm>

extern const aglm_backend_i aglm_backend_cpu;

static std::vector<const aglm_backend_i *> registered() { return {&aglm_backend_cpu}; }

std::vector<aglm_backend_entry> aglm_registry_list() {
  std::vector<aglm_backend_entry> out;
  for (const aglm_backend_i *b : registered()) {
    if (b->api_version != AGLM_BACKEND_API_VERSION) continue;
    char why[512] = {0};
    int s = b->score(why, sizeof why);
    out.push_back({b, s, why});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.score > b.score; });
  return out;
}

const aglm_backend_i *aglm_registry_get(const std::string &name, std::string *error) {
  std::string names;
  for (const aglm_backend_entry &e : aglm_registry_list()) {
    if (name.empty() ? e.score > 0 : name == e.iface->name) {
      if (e.score > 0) return e.iface;
      *error = std::string("backend ") + e.iface->name + " cannot run here: " + e.why;
      return nullptr;
    }
    names += (names.empty() ? "" : ", ") + std::string(e.iface->name);
  }
  *error = "no backend named '" + name + "' (available: " + names + ")";
  return nullptr;
}
