// The kernels that plugins registered (hal/kernel-plugins.cpp loads and checks them), by (op, weight type, backend),
// with how often each was chosen and called. Process-wide and append-only: an entry is never removed or moved, so a
// program may keep a pointer to it for its whole life. It lives in base/ so that backends, which may not reach the
// HAL layer above them, can look kernels up.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "open-autoglm/kernel-plugin.h"

struct aglm_registered_kernel {
  const aglm_kernel_desc *desc = nullptr; // in the plugin's own table (plugins stay loaded)
  std::string plugin;                     // the plugin's name, for descriptions
  std::atomic<uint64_t> chosen{0};        // weights that programs bound to it
  std::atomic<uint64_t> calls{0};         // op calls (one per op per batch, whatever the threads)
};

// Appends a checked kernel of `plugin`; the pointer stays valid for the process.
aglm_registered_kernel *aglm_kernel_registry_add(const aglm_kernel_desc *desc, const std::string &plugin);
// The kernels registered for (op, weight_type, backend), in registration order; empty (and cheap) when none is.
std::vector<aglm_registered_kernel *> aglm_kernel_registry_find(int32_t op, int32_t weight_type, const char *backend);
