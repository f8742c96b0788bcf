// aglm-backend-vulkan: the Vulkan backend module behind HAL API 3 (programs and sessions in vk-program.cpp). It
// lists the devices (systemInfo shows them with their features and scores), is chosen over the CPU when a GPU is
// found, and runs on a CPU Vulkan device (lavapipe) only when asked for by name. Without a Vulkan loader or driver it
// loads all the same, scores 0 and says which is missing.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "backends/hal-util.h"
#include "backends/vulkan/vk-context.h"
#include "backends/vulkan/vk-program.h"
#include "open-autoglm/backend.h"

namespace {

using aglm_backend::guarded;
using aglm_backend::json_str;
using aglm_backend::put;

/** What the backend runs (every op of the IR; these weight types for matmuls and row gathers). */
const char *const kKernels = "every IR op; weights F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

// The backend's score is its best device's: a GPU scores above the CPU backend (100) and is chosen; a CPU-type device
// such as lavapipe scores 1, so it runs only when asked for by name (the CPU backend is faster on the same cores).
int32_t vk_score(char *why, size_t len) {
  try {
    const aglm_vk::runtime &rt = aglm_vk::get_runtime();
    if (!rt.error.empty()) {
      put(why, len, rt.error);
      return 0;
    }
    const std::vector<int> order = aglm_vk::device_order();
    const aglm_vk::device_desc &best = rt.devices[(size_t)order[0]];
    std::string found;
    for (int i : order) {
      const aglm_vk::device_desc &d = rt.devices[(size_t)i];
      found += (found.empty() ? "" : ", ") + d.name + " (" + aglm_vk::type_name(d.type) + ", score " + std::to_string(d.score) + ")";
    }
    if (best.compute_queue_family == UINT32_MAX) {
      put(why, len, "found " + found + "; none has a compute queue");
      return 0;
    }
    if (best.score <= 0) {
      put(why, len, "found only " + found + ": a CPU Vulkan device runs only when asked for by name (backend: 'vulkan'); the CPU backend is faster on the same cores");
      return 1;
    }
    put(why, len, "found " + found + "; runs on " + best.name);
    return 100 + best.score;
  } catch (...) {
    put(why, len, "the Vulkan runtime failed to initialise");
    return 0;
  }
}

int32_t vk_device_count() {
  try {
    return (int32_t)aglm_vk::get_runtime().devices.size();
  } catch (...) {
    return 0;
  }
}

int32_t vk_device_info(int32_t i, aglm_hal_device_info *out) {
  try {
    const aglm_vk::runtime &rt = aglm_vk::get_runtime();
    const std::vector<int> order = aglm_vk::device_order();
    if (i < 0 || i >= (int32_t)order.size() || !out) return AGLM_ERR_INVALID_ARGUMENT;
    const aglm_vk::device_desc &d = rt.devices[(size_t)order[(size_t)i]];
    std::memset(out, 0, sizeof *out);
    put(out->name, sizeof out->name, d.name);
    // Cooperative matrices: the KHR tile's product shape, or why the extension is not used.
    std::string coop;
    const aglm_vk::paths use = aglm_vk::enabled_paths(d);
    if (d.coopmat_khr) {
      char s[96];
      std::snprintf(s, sizeof s, ", cooperative matrix (KHR %ux%ux%u%s)", d.khr.m, d.khr.n, d.khr.k, aglm_vk::has_khr_tiles() ? "" : ": this build has no KHR tiles");
      coop = s;
    } else if (d.cooperative_matrix) {
      coop = ", cooperative matrix (KHR, not used: no fitting f16 configuration, or a feature or limit missing)";
    }
    char desc[320];
    std::snprintf(desc, sizeof desc, "Vulkan %u.%u %s device, driver %s, subgroup %u%s%s%s%s; kernel paths: %s", VK_API_VERSION_MAJOR(d.api_version),
                  VK_API_VERSION_MINOR(d.api_version), aglm_vk::type_name(d.type), d.driver.c_str(), d.subgroup_size, d.fp16 ? ", fp16" : "",
                  d.int8 ? ", int8" : "", d.integer_dot ? ", integer dot" : "", coop.c_str(),
                  aglm_vk::paths_text(use).c_str());
    put(out->description, sizeof out->description, desc);
    out->kind = d.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? AGLM_DEVICE_GPU
                : d.type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? AGLM_DEVICE_IGPU
                : d.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? AGLM_DEVICE_CPU
                : AGLM_DEVICE_ACCEL;
    out->memory_total = d.device_local_bytes;
    out->memory_free = d.device_local_free;
    return AGLM_OK;
  } catch (...) {
    return AGLM_ERR_INTERNAL;
  }
}

int32_t vk_supports(int32_t device, int32_t op, int32_t type) {
  try {
    return device >= 0 && device < vk_device_count() && aglm_vk::supports_op(op, type) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}


} // namespace

struct aglm_hal_program {
  std::unique_ptr<aglm_vk::program> vk;
};
struct aglm_hal_session {
  std::unique_ptr<aglm_vk::session> vk;
};

namespace {

int32_t vk_program_create(const aglm_hal_program_desc *desc, aglm_hal_program **out, char *err, size_t len) {
  if (out) *out = nullptr;
  return guarded(err, len, "creating the Vulkan program", [&] {
    std::string e;
    std::unique_ptr<aglm_vk::program> p;
    const int32_t st = aglm_vk::program_build(desc, &p, &e);
    if (st != AGLM_OK) {
      put(err, len, e);
      return st;
    }
    *out = new aglm_hal_program{std::move(p)};
    return (int32_t)AGLM_OK;
  });
}
void vk_program_free(aglm_hal_program *p) {
  try {
    delete p;
  } catch (...) {
  }
}
void vk_program_describe(const aglm_hal_program *p, char *buf, size_t len) { put(buf, len, p && p->vk ? p->vk->description : "vulkan"); }
uint64_t vk_program_memory(const aglm_hal_program *p) { return p && p->vk ? p->vk->bytes : 0; }
int32_t vk_session_create(aglm_hal_program *p, const aglm_hal_session_desc *desc, aglm_hal_session **out, char *err, size_t len) {
  if (out) *out = nullptr;
  return guarded(err, len, "creating the Vulkan session", [&] {
    std::string e;
    std::unique_ptr<aglm_vk::session> s;
    const int32_t st = aglm_vk::session_build(p->vk.get(), desc, &s, &e);
    if (st != AGLM_OK) {
      put(err, len, e);
      return st;
    }
    *out = new aglm_hal_session{std::move(s)};
    return (int32_t)AGLM_OK;
  });
}
void vk_session_free(aglm_hal_session *s) {
  try {
    delete s;
  } catch (...) {
  }
}
int32_t vk_session_decode(aglm_hal_session *s, const aglm_hal_batch *b, char *err, size_t len) {
  return guarded(err, len, "running the batch", [&] {
    std::string e;
    const int32_t st = aglm_vk::session_run(s->vk.get(), b, &e);
    if (st != AGLM_OK) put(err, len, e);
    return st;
  });
}
uint64_t vk_session_memory(const aglm_hal_session *s) { return s && s->vk ? s->vk->bytes : 0; }

// {"loader", "error", "instanceVersion", "plain", "devices": [{name, type, driver, api, score, why, memoryBytes,
//  memoryFree, subgroupSize, fp16, int8, storage16, storage8, integerDot, integerDotAccelerated, cooperativeMatrix,
//  cooperativeMatrixKHR: {m, n, k, gr, br, bc} | null (the tile's shape), paths: {subgroup, integerDot, fp16,
//  coopmat}}], "kernels"}. plain: OPEN_AUTOGLM_VULKAN_PLAIN=1 is set; paths: the optional kernel
//  paths a program on that device uses (vk-context.h enabled_paths).
size_t vk_report(const char *, char *buf, size_t len) {
  std::string j;
  try {
    const aglm_vk::runtime &rt = aglm_vk::get_runtime();
    auto ver = [](uint32_t v) {
      return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." + std::to_string(VK_API_VERSION_PATCH(v));
    };
    j = "{\"loader\":" + (rt.loader_path.empty() ? std::string("null") : json_str(rt.loader_path)) +
        ",\"error\":" + (rt.error.empty() ? std::string("null") : json_str(rt.error)) + ",\"instanceVersion\":" + json_str(ver(rt.instance_version)) +
        ",\"plain\":" + (aglm_vk::plain_forced() ? "true" : "false") + ",\"devices\":[";
    for (size_t i = 0; i < rt.devices.size(); i++) {
      const aglm_vk::device_desc &d = rt.devices[i];
      const aglm_vk::paths use = aglm_vk::enabled_paths(d);
      auto b = [](bool x) { return x ? "true" : "false"; };
      j += std::string(i ? "," : "") + "{\"name\":" + json_str(d.name) + ",\"type\":" + json_str(aglm_vk::type_name(d.type)) +
           ",\"driver\":" + json_str(d.driver) + ",\"api\":" + json_str(ver(d.api_version)) + ",\"score\":" + std::to_string(d.score) +
           ",\"why\":" + json_str(d.score_why) + ",\"memoryBytes\":" + std::to_string(d.device_local_bytes) +
           ",\"memoryFree\":" + std::to_string(d.device_local_free) + ",\"subgroupSize\":" + std::to_string(d.subgroup_size) +
           ",\"fp16\":" + b(d.fp16) + ",\"int8\":" + b(d.int8) + ",\"storage16\":" + b(d.storage16) + ",\"storage8\":" + b(d.storage8) +
           ",\"integerDot\":" + b(d.integer_dot) + ",\"integerDotAccelerated\":" + b(d.integer_dot_accelerated) +
           ",\"cooperativeMatrix\":" + b(d.cooperative_matrix) +
           ",\"cooperativeMatrixKHR\":" + aglm_vk::coopmat_json(d) +
           ",\"paths\":{\"subgroup\":" + b(use.subgroup) + ",\"integerDot\":" + b(use.integer_dot) + ",\"fp16\":" + b(use.fp16) +
           ",\"coopmat\":" + b(use.coopmat) + "}}";
    }
    j += std::string("],\"kernels\":") + json_str(kKernels) + "}";
  } catch (...) {
    j = "{\"error\":\"the Vulkan runtime failed to initialise\"}";
  }
  if (buf && len > 0) put(buf, len, j);
  return j.size();
}

const aglm_hal_backend kTable = {
    AGLM_HAL_API_VERSION, sizeof(aglm_hal_backend), "vulkan", vk_score, vk_device_count, vk_device_info, vk_supports,
    vk_program_create, vk_program_free, vk_program_describe, vk_program_memory, vk_session_create, vk_session_free,
    vk_session_decode, vk_session_memory, vk_report,
};

} // namespace

extern "C" AGLM_HAL_EXPORT const aglm_hal_backend *aglm_backend_entry(uint32_t api_version, char *why, size_t why_len) {
  return aglm_backend::entry_for(&kTable, api_version, why, why_len);
}
