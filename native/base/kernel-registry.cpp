// The process-wide list of plugin kernels (base/kernel-registry.h): a mutex for the list, atomics for the counters.
#include "base/kernel-registry.h"

#include <cstring>
#include <deque>
#include <mutex>

namespace {

struct kernel_registry {
  std::mutex mu;
  std::deque<aglm_registered_kernel> kernels; // a deque: appending never moves an entry
  std::atomic<size_t> count{0};
};

kernel_registry &registry() {
  static kernel_registry *r = new kernel_registry(); // never destroyed: programs may outlive static destructors
  return *r;
}

} // namespace

aglm_registered_kernel *aglm_kernel_registry_add(const aglm_kernel_desc *desc, const std::string &plugin) {
  kernel_registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.kernels.emplace_back();
  aglm_registered_kernel *k = &r.kernels.back();
  k->desc = desc;
  k->plugin = plugin;
  r.count.store(r.kernels.size());
  return k;
}

std::vector<aglm_registered_kernel *> aglm_kernel_registry_find(int32_t op, int32_t weight_type, const char *backend) {
  std::vector<aglm_registered_kernel *> out;
  kernel_registry &r = registry();
  if (r.count.load() == 0) return out;
  std::lock_guard<std::mutex> lock(r.mu);
  for (aglm_registered_kernel &k : r.kernels)
    if (k.desc->op == op && k.desc->weight_type == weight_type && std::strcmp(k.desc->backend, backend) == 0) out.push_back(&k);
  return out;
}
