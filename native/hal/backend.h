// The hardware-abstraction layer: what every backend (CPU now; CUDA and Metal as separately loaded modules
// later) implements, as a versioned table of function pointers. Callers only ever go through this table.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/graph.h"
#include "core/status.h"

#define AGLM_BACKEND_API_VERSION 1

typedef struct aglm_program aglm_program; // a graph compiled for one backend, with its weights bound
typedef struct aglm_session aglm_session; // per-context state: KV cache, activation arena, threads

typedef struct {
  const aglm_graph *graph;    // validated (aglm_graph_validate); the program keeps its own copy
  const uint8_t *file_data;   // the mapped model file; outlives the program
  uint64_t file_size;
  const char *variant;        // (optional) backend-specific variant ("ref", "avx2", ...); null or "" = best
  const char *variant_source; // (optional) who asked for the variant, for the explanation; defaults to "option"
  int n_threads;              // threads for load-time work (weight conversion, repacking); 0 = every core
} aglm_program_desc;

typedef struct {
  int64_t n_ctx;   // positions the KV cache holds
  int64_t n_batch; // most tokens one decode call may carry
  int n_threads;   // threads the session computes with (including the caller's)
  int kv_type;     // element type of the KV cache: AGLM_TYPE_F32 (0) or AGLM_TYPE_F16 (1)
} aglm_session_desc;

typedef struct {
  const uint32_t *tokens;           // n_tokens ids
  int64_t n_tokens;                 // 1..n_batch
  int64_t n_past;                   // position of tokens[0]; positions below it are already in the cache
  int64_t n_out;                    // 0, 1 (logits of the last token) or n_tokens (every token)
  float *logits;                    // [n_out][n_vocab] (or [n_out][n_hidden] for AGLM_OUT_HIDDEN), may be null when
                                    // n_out is 0
  const std::atomic<bool> *abort;   // (optional) checked between ops; set -> AGLM_ERR_ABORTED
  int out_kind;                     // AGLM_OUT_LOGITS (0, the default) or AGLM_OUT_HIDDEN: the graph's hidden value
                                    // (final-norm states), computing only what it depends on
} aglm_batch;

enum { AGLM_OUT_LOGITS = 0, AGLM_OUT_HIDDEN = 1 };

typedef struct aglm_backend_i {
  uint32_t api_version; // AGLM_BACKEND_API_VERSION
  const char *name;     // "cpu", "cuda", "metal"
  // How well this backend suits this machine: 0 = cannot run here. `why` gets one sentence.
  int (*score)(char *why, size_t why_len);
  aglm_status (*program_create)(const aglm_program_desc *desc, aglm_program **out, char *err, size_t err_len);
  void (*program_free)(aglm_program *p);
  // One line: the variant chosen and why.
  void (*program_describe)(const aglm_program *p, char *buf, size_t len);
  aglm_status (*session_create)(aglm_program *p, const aglm_session_desc *desc, aglm_session **out, char *err,
                                size_t err_len);
  void (*session_free)(aglm_session *s);
  // Runs one batch through the graph; on failure the cache above n_past is unspecified, below it untouched.
  aglm_status (*session_decode)(aglm_session *s, const aglm_batch *batch, char *err, size_t err_len);
  // (optional) bytes the session allocated; defaults to 0 (unknown).
  uint64_t (*session_memory)(const aglm_session *s);
} aglm_backend_i;
