// aglm-backend-vulkan: the Vulkan backend module behind HAL API 3. This first version discovers and describes the
// devices (systemInfo lists them with their features and scores) and is never chosen: until its kernels cover a
// model's ops it reports itself unusable with the reason, and loadModel(path, { backend: 'vulkan' }) is
// BACKEND_UNAVAILABLE saying so. Without a Vulkan loader or driver it loads all the same and says which is missing.
#include <cstdio>
#include <cstring>
#include <string>

#include "backends/vulkan/vk-context.h"
#include "open-autoglm/backend.h"

namespace {

void put(char *buf, size_t len, const std::string &s) {
  if (!buf || len == 0) return;
  const size_t n = s.size() < len - 1 ? s.size() : len - 1;
  std::memcpy(buf, s.data(), n);
  buf[n] = 0;
}

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

/** The kernels this build has (each checked by vk-selftest); a model needs far more. */
const char *const kKernels = "matmul_f32, rms_norm_f32, silu_mul_f32";

int32_t vk_score(char *why, size_t len) {
  try {
    const aglm_vk::runtime &rt = aglm_vk::get_runtime();
    if (!rt.error.empty()) {
      put(why, len, rt.error);
      return 0;
    }
    std::string found;
    for (const aglm_vk::device_desc &d : rt.devices)
      found += (found.empty() ? "" : ", ") + d.name + " (" + aglm_vk::type_name(d.type) + ", score " + std::to_string(d.score) + ")";
    put(why, len, "found " + found + "; the Vulkan backend does not run models yet (its kernels so far: " + kKernels + ")");
    return 0;
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
    if (i < 0 || i >= (int32_t)rt.devices.size() || !out) return AGLM_ERR_INVALID_ARGUMENT;
    const aglm_vk::device_desc &d = rt.devices[(size_t)i];
    std::memset(out, 0, sizeof *out);
    put(out->name, sizeof out->name, d.name);
    char desc[256];
    std::snprintf(desc, sizeof desc, "Vulkan %u.%u %s device, driver %s, subgroup %u%s%s%s%s", VK_API_VERSION_MAJOR(d.api_version),
                  VK_API_VERSION_MINOR(d.api_version), aglm_vk::type_name(d.type), d.driver.c_str(), d.subgroup_size, d.fp16 ? ", fp16" : "",
                  d.int8 ? ", int8" : "", d.integer_dot ? ", integer dot" : "", d.cooperative_matrix ? ", cooperative matrix" : "");
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

int32_t vk_supports(int32_t, int32_t op, int32_t type) {
  return op == AGLM_OP_MATMUL && (type == AGLM_TYPE_F32 || type == -1);
}

int32_t vk_program_create(const aglm_hal_program_desc *, aglm_hal_program **out, char *err, size_t len) {
  if (out) *out = nullptr;
  put(err, len, std::string("the Vulkan backend does not run models yet (its kernels so far: ") + kKernels + ")");
  return AGLM_ERR_BACKEND_UNAVAILABLE;
}
void vk_program_free(aglm_hal_program *) {}
void vk_program_describe(const aglm_hal_program *, char *buf, size_t len) { put(buf, len, "vulkan"); }
int32_t vk_session_create(aglm_hal_program *, const aglm_hal_session_desc *, aglm_hal_session **out, char *err, size_t len) {
  if (out) *out = nullptr;
  put(err, len, "no Vulkan program");
  return AGLM_ERR_BACKEND_UNAVAILABLE;
}
void vk_session_free(aglm_hal_session *) {}
int32_t vk_session_decode(aglm_hal_session *, const aglm_hal_batch *, char *err, size_t len) {
  put(err, len, "no Vulkan session");
  return AGLM_ERR_BACKEND_UNAVAILABLE;
}

// {"loader", "error", "instanceVersion", "devices": [{name, type, driver, api, score, why, memoryBytes, memoryFree,
//  subgroupSize, fp16, int8, storage16, storage8, integerDot, cooperativeMatrix}], "kernels"}
size_t vk_report(const char *, char *buf, size_t len) {
  std::string j;
  try {
    const aglm_vk::runtime &rt = aglm_vk::get_runtime();
    auto ver = [](uint32_t v) {
      return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." + std::to_string(VK_API_VERSION_PATCH(v));
    };
    j = "{\"loader\":" + (rt.loader_path.empty() ? std::string("null") : json_str(rt.loader_path)) +
        ",\"error\":" + (rt.error.empty() ? std::string("null") : json_str(rt.error)) + ",\"instanceVersion\":" + json_str(ver(rt.instance_version)) +
        ",\"devices\":[";
    for (size_t i = 0; i < rt.devices.size(); i++) {
      const aglm_vk::device_desc &d = rt.devices[i];
      auto b = [](bool x) { return x ? "true" : "false"; };
      j += std::string(i ? "," : "") + "{\"name\":" + json_str(d.name) + ",\"type\":" + json_str(aglm_vk::type_name(d.type)) +
           ",\"driver\":" + json_str(d.driver) + ",\"api\":" + json_str(ver(d.api_version)) + ",\"score\":" + std::to_string(d.score) +
           ",\"why\":" + json_str(d.score_why) + ",\"memoryBytes\":" + std::to_string(d.device_local_bytes) +
           ",\"memoryFree\":" + std::to_string(d.device_local_free) + ",\"subgroupSize\":" + std::to_string(d.subgroup_size) +
           ",\"fp16\":" + b(d.fp16) + ",\"int8\":" + b(d.int8) + ",\"storage16\":" + b(d.storage16) + ",\"storage8\":" + b(d.storage8) +
           ",\"integerDot\":" + b(d.integer_dot) + ",\"cooperativeMatrix\":" + b(d.cooperative_matrix) + "}";
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
    vk_program_create, vk_program_free, vk_program_describe, nullptr, vk_session_create, vk_session_free,
    vk_session_decode, nullptr, vk_report,
};

} // namespace

extern "C" AGLM_HAL_EXPORT const aglm_hal_backend *aglm_backend_entry(uint32_t api_version, char *why, size_t why_len) {
  if (api_version != AGLM_HAL_API_VERSION) {
    put(why, why_len, "built for HAL API version " + std::to_string(AGLM_HAL_API_VERSION));
    return nullptr;
  }
  return &kTable;
}
