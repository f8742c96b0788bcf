// The HAL table of a CPU backend, written once for any kernel chooser: the built-in `cpu` backend (every variant this
// build has, chosen by CPU probe) and the test module (backends/test-module/) instantiate it with their own config.
// Every function catches what the C++ library may throw (std::bad_alloc) and returns a status: nothing crosses the C ABI.
#pragma once

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "backends/cpu/cpu-state.h"
#include "open-autoglm/backend.h"

struct aglm_hal_program {
  std::unique_ptr<cpu_program> cpu;
};
struct aglm_hal_session {
  std::unique_ptr<cpu_session> cpu;
};

struct cpu_backend_config {
  const char *name;
  // How well the backend suits this machine (0: unusable), with one sentence.
  int32_t (*score)(char *why, size_t len);
  // The kernels for a program: `variant` (null or "" = the best); the choice or the failure in `why`.
  int32_t (*select)(const char *variant, const aglm_kernels **out, char *why, size_t len);
  // (optional) systemInfo detail as JSON.
  size_t (*report)(const char *variant, char *buf, size_t len);
  const char *device_description;
  // (optional) Ops or weight types the backend refuses although its kernels could run them (non-zero: refused).
  int32_t (*refuses)(int32_t op, int32_t weight_type);
};

namespace cpu_hal {

using aglm_backend::guarded;
using aglm_backend::put;

template <const cpu_backend_config *C> struct table {
  static int32_t score(char *why, size_t len) { return C->score(why, len); }
  static int32_t device_count() { return 1; }
  static int32_t device_info(int32_t device, aglm_hal_device_info *out) {
    if (device != 0 || !out) return AGLM_ERR_INVALID_ARGUMENT;
    std::memset(out, 0, sizeof *out);
    std::snprintf(out->name, sizeof out->name, "%s", "cpu");
    std::snprintf(out->description, sizeof out->description, "%s", C->device_description);
    out->kind = AGLM_DEVICE_CPU;
    return AGLM_OK;
  }
  static int32_t supports(int32_t device, int32_t op, int32_t weight_type) {
    const aglm_kernels *k = nullptr;
    char why[256];
    if (device != 0 || C->select(nullptr, &k, why, sizeof why) != AGLM_OK) return 0;
    if (C->refuses && C->refuses(op, weight_type)) return 0;
    return cpu_supports(k, op, weight_type) ? 1 : 0;
  }
  static int32_t program_create(const aglm_hal_program_desc *desc, aglm_hal_program **out, char *err, size_t err_len) {
    return guarded(err, err_len, "creating the program", [&] {
      const aglm_kernels *k = nullptr;
      char why[512] = {0};
      const int32_t st = C->select(desc->variant, &k, why, sizeof why);
      if (st != AGLM_OK) {
        put(err, err_len, why);
        return st;
      }
      std::string description = why;
      if (desc->variant && *desc->variant && desc->variant_source)
        description += std::string(" (requested by ") + desc->variant_source + ")";
      auto p = std::make_unique<aglm_hal_program>();
      std::string msg;
      const int32_t r = cpu_program_build(desc, k, C->name, description, &p->cpu, &msg);
      if (r != AGLM_OK) {
        put(err, err_len, msg);
        return r;
      }
      *out = p.release();
      return (int32_t)AGLM_OK;
    });
  }
  static void program_free(aglm_hal_program *p) { delete p; }
  static void program_describe(const aglm_hal_program *p, char *buf, size_t len) { put(buf, len, p->cpu->description); }
  static uint64_t program_memory(const aglm_hal_program *p) {
    uint64_t n = 0;
    for (const aglm_aligned_buffer &b : p->cpu->owned) n += b.size();
    return n;
  }
  static int32_t session_create(aglm_hal_program *p, const aglm_hal_session_desc *desc, aglm_hal_session **out, char *err,
                                size_t err_len) {
    return guarded(err, err_len, "creating the session", [&] {
      auto s = std::make_unique<aglm_hal_session>();
      std::string msg;
      const int32_t r = cpu_session_build(p->cpu.get(), desc, &s->cpu, &msg);
      if (r != AGLM_OK) {
        put(err, err_len, msg);
        return r;
      }
      *out = s.release();
      return (int32_t)AGLM_OK;
    });
  }
  static void session_free(aglm_hal_session *s) { delete s; }
  static int32_t session_decode(aglm_hal_session *s, const aglm_hal_batch *b, char *err, size_t err_len) {
    return guarded(err, err_len, "running a batch", [&] {
      std::string msg;
      const int32_t r = cpu_session_run(s->cpu.get(), b, &msg);
      if (r != AGLM_OK) put(err, err_len, msg);
      return r;
    });
  }
  static uint64_t session_memory(const aglm_hal_session *s) { return s->cpu->bytes; }
  static size_t report(const char *variant, char *buf, size_t len) { return C->report ? C->report(variant, buf, len) : 0; }

  static const aglm_hal_backend *get() {
    static const aglm_hal_backend t = {
        /* .api_version = */ AGLM_HAL_API_VERSION,
        /* .size = */ (uint32_t)sizeof(aglm_hal_backend),
        /* .name = */ C->name,
        /* .score = */ score,
        /* .device_count = */ device_count,
        /* .device_info = */ device_info,
        /* .supports = */ supports,
        /* .program_create = */ program_create,
        /* .program_free = */ program_free,
        /* .program_describe = */ program_describe,
        /* .program_memory = */ program_memory,
        /* .session_create = */ session_create,
        /* .session_free = */ session_free,
        /* .session_decode = */ session_decode,
        /* .session_memory = */ session_memory,
        /* .report = */ C->report ? report : nullptr,
    };
    return &t;
  }
};

} // namespace cpu_hal
