// Status codes returned by every native function; the TS side maps them to AglmError codes (lib/native.ts).
#pragma once

#include <string>

enum aglm_status {
  AGLM_OK = 0,
  AGLM_ERR_INVALID_ARGUMENT = 1,
  AGLM_ERR_ABORTED = 2,
  AGLM_ERR_CONTEXT_FULL = 3,
  AGLM_ERR_IO = 4,
  AGLM_ERR_FILE_NOT_FOUND = 5,
  AGLM_ERR_GGUF_TENSOR_OUT_OF_BOUNDS = 6,
  AGLM_ERR_UNSUPPORTED_TENSOR_TYPE = 7,
  AGLM_ERR_BACKEND_UNAVAILABLE = 8,
  AGLM_ERR_OUT_OF_MEMORY = 9,
  AGLM_ERR_INTERNAL = 10,
  AGLM_ERR_DISPOSED = 11,
  AGLM_ERR_BUSY = 12,
};

// The name TS uses for a status (the AglmError code).
const char *aglm_status_code(aglm_status s);

// A status plus a human-readable message; what native functions hand back instead of throwing.
struct aglm_result {
  aglm_status status = AGLM_OK;
  std::string message;
  static aglm_result ok() { return {}; }
  static aglm_result fail(aglm_status s, std::string msg) { return {s, std::move(msg)}; }
  bool is_ok() const { return status == AGLM_OK; }
};
