/* open-autoglm's shared vocabulary in plain C: tensor element types (GGML/GGUF numbering) and status codes. Every layer
 * (core, HAL, backends and backend modules, kernels) speaks these numbers; lib/native.ts maps the status codes to
 * AglmError codes. */
#ifndef OPEN_AUTOGLM_TYPES_H
#define OPEN_AUTOGLM_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor element types, numbered as GGML/GGUF number them. */
enum aglm_type {
  AGLM_TYPE_F32 = 0,
  AGLM_TYPE_F16 = 1,
  AGLM_TYPE_Q4_0 = 2,
  AGLM_TYPE_Q4_1 = 3,
  AGLM_TYPE_Q5_0 = 6,
  AGLM_TYPE_Q5_1 = 7,
  AGLM_TYPE_Q8_0 = 8,
  AGLM_TYPE_Q8_1 = 9,
  AGLM_TYPE_Q2_K = 10,
  AGLM_TYPE_Q3_K = 11,
  AGLM_TYPE_Q4_K = 12,
  AGLM_TYPE_Q5_K = 13,
  AGLM_TYPE_Q6_K = 14,
  AGLM_TYPE_Q8_K = 15,
  AGLM_TYPE_BF16 = 30,
  AGLM_TYPE_COUNT = 40
};

/* Status codes every native function returns (0 = success). */
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
  AGLM_ERR_NO_SEQUENCE_LEFT = 13,
  AGLM_ERR_KERNEL_PLUGIN_INVALID = 14 /* a kernel plugin that does not load, or is built for another ABI version */
};

#ifdef __cplusplus
}
#endif

#endif
