/* open-autoglm kernel plugins, ABI version 1: the C ABI of a shared library that adds kernels to a backend, one per
 * (op, weight type, backend), loaded at run time by registerKernelPlugin(path). Only plain C types cross it; no
 * exception, longjmp or exit may leave a plugin function.
 *
 * A plugin exports one function, `aglm_kernel_plugin_entry` (aglm_kernel_plugin_entry_fn): asked for the ABI version
 * the engine implements, it returns its table (aglm_kernel_plugin, static storage, valid while the process lives), or
 * null with one sentence in `why` when it was built for another version. The engine checks the table's abi_version,
 * size and kernel_size, then every kernel descriptor; any failure refuses the whole plugin with a typed error
 * (KERNEL_PLUGIN_INVALID). A plugin is never unloaded.
 *
 * When a backend creates a program (a model load), it asks for each matmul weight which registered kernels serve
 * (op, weight type, backend) and takes the first, in registration order, whose supports(k, m) accepts the weight's
 * shape; the others keep the backend's own kernels. Programs created before a plugin is registered keep their kernels.
 *
 * Version 1 defines one op, AGLM_OP_MATMUL, on the "cpu" backend, for weight types the engine can already read. */
#ifndef OPEN_AUTOGLM_KERNEL_PLUGIN_H
#define OPEN_AUTOGLM_KERNEL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "open-autoglm/backend.h" /* enum aglm_op_kind */
#include "open-autoglm/types.h"

#define AGLM_KERNEL_PLUGIN_ABI_VERSION 1
#define AGLM_KERNEL_PLUGIN_ENTRY_SYMBOL "aglm_kernel_plugin_entry"

#if defined(_WIN32)
#define AGLM_KERNEL_PLUGIN_EXPORT __declspec(dllexport)
#else
#define AGLM_KERNEL_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One matmul call: y[t][r] = dot(W row r, X row t) for the rows r in [r0, r1) and every token t in [0, n). */
typedef struct {
  const void *w;      /* weights [m][k] in w_type, the GGUF block layout; row r at (const char *)w + r * w_row_bytes */
  size_t w_row_bytes;
  int32_t w_type;     /* enum aglm_type: the descriptor's weight_type */
  const void *x;      /* activations [n][k] in x_type; row t at (const char *)x + t * x_row_bytes */
  size_t x_row_bytes;
  int32_t x_type;     /* the descriptor's act_type: F32 floats, or Q8_0 / Q8_1 / Q8_K blocks (llama.cpp layout and
                         rounding, values in [-127, 127]) that the engine quantized */
  float *y;           /* output, written at y[t * y_stride + r] for r in [r0, r1) only */
  int64_t y_stride;   /* floats */
  int64_t n, k, m;    /* tokens, inner dimension (a multiple of both types' block sizes), weight rows */
} aglm_kernel_matmul_args;

/* One kernel. */
typedef struct {
  int32_t op;          /* enum aglm_op_kind: AGLM_OP_MATMUL (the only op version 1 defines) */
  int32_t weight_type; /* enum aglm_type of the weights it multiplies */
  const char *backend; /* the backend it runs in: "cpu" */
  const char *name;    /* a short name for descriptions and systemInfo, e.g. "q8_0-f32-matmul" */
  int32_t act_type;    /* activations it reads: AGLM_TYPE_F32, AGLM_TYPE_Q8_0, AGLM_TYPE_Q8_1 or AGLM_TYPE_Q8_K */
  /* (optional) Non-zero when it can multiply a weight of k columns and m rows; called at program creation, from any
   * thread. Null: every shape. */
  int32_t (*supports)(int64_t k, int64_t m);
  /* The kernel (AGLM_OP_MATMUL): writes y for the rows [r0, r1) (0 <= r0 < r1 <= m). Calls on disjoint row ranges of
   * the same args run concurrently on the backend's threads: keep per-call state on the stack or per thread. */
  void (*matmul)(const aglm_kernel_matmul_args *args, int64_t r0, int64_t r1);
} aglm_kernel_desc;

/* The plugin's table. */
typedef struct {
  uint32_t abi_version; /* AGLM_KERNEL_PLUGIN_ABI_VERSION */
  uint32_t size;        /* sizeof(aglm_kernel_plugin) as the plugin was built */
  uint32_t kernel_size; /* sizeof(aglm_kernel_desc) as the plugin was built: the stride of `kernels` */
  const char *name;     /* the plugin's name, e.g. "example-q8_0" */
  const char *version;  /* its own version, free text */
  int32_t n_kernels;    /* 1..1024 */
  const aglm_kernel_desc *kernels;
} aglm_kernel_plugin;

/* The one symbol a plugin exports: its table for `abi_version`, or null (with the reason in `why`). */
typedef const aglm_kernel_plugin *(*aglm_kernel_plugin_entry_fn)(uint32_t abi_version, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
