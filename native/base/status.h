// Status codes (enum aglm_status, include/open-autoglm/types.h) with a message: what native functions hand back
// instead of throwing. The TS side maps the codes to AglmError codes (lib/native.ts).
#pragma once

#include <string>

#include "open-autoglm/types.h"

// The name TS uses for a status (the AglmError code).
const char *aglm_status_code(aglm_status s);

// A status plus a human-readable message.
struct aglm_result {
  aglm_status status = AGLM_OK;
  std::string message;
  static aglm_result ok() { return {}; }
  static aglm_result fail(aglm_status s, std::string msg) { return {s, std::move(msg)}; }
  bool is_ok() const { return status == AGLM_OK; }
};
