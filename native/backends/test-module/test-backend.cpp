// The test backend module: the CPU backend's code on the scalar reference kernels only, built as a separate shared
// library (aglm-backend-<name>.so) that the registry loads with dlopen, so the tests prove loading, HAL version
// refusal and failure reporting with a backend that really computes. AGLM_TEST_MODULE_MODE picks what it does:
//   0  testcpu     ready: runs every op, refuses K-quant weights (to prove the core asks supports())
//   1  testold     claims HAL API version 1 (the registry must refuse it)
//   2  testbroken  loads, but scores 0 ("no usable device")
//   3  testnull    its entry function returns null with a reason
//   4  testfail    scores above the CPU backend (as a GPU would) but cannot create a program: a load that picks the
//                  best backend falls back to the CPU with a warning (built alone into build/Release/test-fallback/)
// Never shipped in a package: the build puts these modules in build/Release/test-backends/.
#include <cstdio>
#include <string>

#include "backends/cpu/cpu-hal.h"

#ifndef AGLM_TEST_MODULE_MODE
#define AGLM_TEST_MODULE_MODE 0
#endif
#ifndef AGLM_TEST_MODULE_NAME
#define AGLM_TEST_MODULE_NAME "testcpu"
#endif

namespace {

int32_t test_score(char *why, size_t len) {
  if (AGLM_TEST_MODULE_MODE == 2) {
    cpu_hal::put(why, len, "no usable device (a test module that reports itself unusable)");
    return 0;
  }
  cpu_hal::put(why, len, "test module: the CPU backend on the scalar reference kernels");
  return 1;
}

int32_t test_select(const char *variant, const aglm_kernels **out, char *why, size_t len) {
  if (variant && *variant && std::string(variant) != "ref") {
    cpu_hal::put(why, len, std::string("the test module has only the ref kernels, not ") + variant);
    return AGLM_ERR_BACKEND_UNAVAILABLE;
  }
  *out = &aglm_kernels_ref;
  cpu_hal::put(why, len, "ref: the test module's only kernels");
  return AGLM_OK;
}

int32_t test_refuses(int32_t op, int32_t type) {
  (void)op;
  return type == AGLM_TYPE_Q4_K || type == AGLM_TYPE_Q5_K || type == AGLM_TYPE_Q6_K;
}

const cpu_backend_config kTest = {AGLM_TEST_MODULE_NAME, test_score, test_select, nullptr,
                                  "the host CPU (test module, reference kernels)", test_refuses};

} // namespace

extern "C" AGLM_HAL_EXPORT const aglm_hal_backend *aglm_backend_entry(uint32_t api_version, char *why, size_t why_len) {
  if (AGLM_TEST_MODULE_MODE == 3) {
    cpu_hal::put(why, why_len, "this test module serves no API version");
    return nullptr;
  }
  if (AGLM_TEST_MODULE_MODE == 1) {
    // A module built against HAL v1: it hands back its table whatever the core asks for, stamped with version 1.
    static aglm_hal_backend old = *cpu_hal::table<&kTest>::get();
    old.api_version = 1;
    return &old;
  }
  if (api_version != AGLM_HAL_API_VERSION) {
    cpu_hal::put(why, why_len, "built for HAL API version " + std::to_string(AGLM_HAL_API_VERSION));
    return nullptr;
  }
  if (AGLM_TEST_MODULE_MODE == 4) {
    static aglm_hal_backend failing = *cpu_hal::table<&kTest>::get();
    failing.score = [](char *w, size_t len) -> int32_t {
      cpu_hal::put(w, len, "test module: scores as a GPU would, but its device fails to initialise");
      return 1000;
    };
    failing.program_create = [](const aglm_hal_program_desc *, aglm_hal_program **out, char *err, size_t len) -> int32_t {
      *out = nullptr;
      cpu_hal::put(err, len, "the test device failed to initialise (as a GPU driver might)");
      return AGLM_ERR_BACKEND_UNAVAILABLE;
    };
    return &failing;
  }
  return cpu_hal::table<&kTest>::get();
}
