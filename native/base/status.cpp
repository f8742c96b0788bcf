// Names of the status codes, as the TS layer's AglmError codes spell them.
#include "base/status.h"

const char *aglm_status_code(aglm_status s) {
  switch (s) {
    case AGLM_OK: return "OK";
    case AGLM_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case AGLM_ERR_ABORTED: return "ABORTED";
    case AGLM_ERR_CONTEXT_FULL: return "CONTEXT_FULL";
    case AGLM_ERR_IO: return "IO_ERROR";
    case AGLM_ERR_FILE_NOT_FOUND: return "FILE_NOT_FOUND";
    case AGLM_ERR_GGUF_TENSOR_OUT_OF_BOUNDS: return "GGUF_TENSOR_OUT_OF_BOUNDS";
    case AGLM_ERR_UNSUPPORTED_TENSOR_TYPE: return "UNSUPPORTED_TENSOR_TYPE";
    case AGLM_ERR_BACKEND_UNAVAILABLE: return "BACKEND_UNAVAILABLE";
    case AGLM_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case AGLM_ERR_INTERNAL: return "NATIVE_ERROR";
    case AGLM_ERR_DISPOSED: return "DISPOSED";
    case AGLM_ERR_BUSY: return "BUSY";
    case AGLM_ERR_NO_SEQUENCE_LEFT: return "NO_SEQUENCE_LEFT";
    case AGLM_ERR_KERNEL_PLUGIN_INVALID: return "KERNEL_PLUGIN_INVALID";
  }
  return "NATIVE_ERROR";
}
