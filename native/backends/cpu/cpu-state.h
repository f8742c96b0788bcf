// The CPU backend's state, grouped by lifetime: cpu_program (a graph bound to one kernel table and to its weights,
// for the model's lifetime) and cpu_session (one context: the KV cells, the activation arena, scratch, the thread pool),
// plus the batch being run. The program keeps its own copy of the HAL graph.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "base/kernel-registry.h"
#include "base/thread-pool.h"
#include "kernels/kernels.h"
#include "backends/hal-util.h"
#include "open-autoglm/backend.h"

// The graph (weights, values, ops, cache slots, ropes, outputs) is the program's own copy (aglm_backend::graph_copy).
struct cpu_program : aglm_backend::graph_copy {
  const aglm_kernels *kernels = nullptr;
  std::string description;                // variant + why
  std::vector<const void *> wdata;        // each weight's data: the core's, or one of `owned`
  std::vector<aglm_aligned_buffer> owned; // f32 copies of vectors stored in other types, repacked matmul weights
  std::vector<uint8_t> wpacked;           // per weight: 1 if in the kernel table's own layout (kernels->repack)
  std::vector<aglm_registered_kernel *> wplugin; // per weight: the plugin kernel its matmuls run on, or null (the table)
  uint64_t max_qx_row_bytes = 0;          // largest activation row quantized for a matmul (Q8_0, Q8_1 or Q8_K)
  int64_t n_vocab = 0, n_hidden = 0;
};

struct cpu_session {
  const cpu_program *program = nullptr;
  int64_t n_cells = 0, n_batch = 0;
  std::unique_ptr<aglm_thread_pool> pool;
  aglm_aligned_buffer kv;               // every cache slot's K then V: [n_cells][width] each
  std::vector<void *> k_cache, v_cache; // per slot, elements of kv_type
  int kv_type = 0;                      // AGLM_TYPE_F32 or AGLM_TYPE_F16
  size_t kv_elem = sizeof(float);
  std::vector<uint64_t> offsets;        // per value: byte offset in the arena (the core's plan)
  aglm_aligned_buffer arena;            // activations
  aglm_aligned_buffer qx;               // activations quantized for matmul: n_batch rows
  aglm_aligned_buffer scratch;          // per thread: attention scores, n_cells floats per head of a KV group
  int64_t scratch_per_thread = 0;       // floats
  aglm_aligned_buffer rope_tables;      // per rope configuration: [n_batch][n_rot/2][2]
  std::vector<int32_t> n_kv;            // per batch token: cache rows it attends to (per attention op)
  std::vector<const int32_t *> rows;    // per batch token: where those rows are listed
  const aglm_hal_batch *batch = nullptr; // the running batch
  uint64_t bytes = 0;
};

// The program (cpu-program.cpp): copy the graph, bind matmul weights to plugin kernels registered for `backend` (the
// backend's name) that accept them, prepare the other weights for `kernels`, check every matmul can run.
int32_t cpu_program_build(const aglm_hal_program_desc *desc, const aglm_kernels *kernels, const char *backend,
                          std::string description, std::unique_ptr<cpu_program> *out, std::string *err);
// Whether the kernels can run an op with a weight type (-1: no weight).
bool cpu_supports(const aglm_kernels *k, int32_t op, int32_t weight_type);
// Sessions and batches (cpu-session.cpp).
int32_t cpu_session_build(const cpu_program *p, const aglm_hal_session_desc *desc, std::unique_ptr<cpu_session> *out,
                          std::string *err);
int32_t cpu_session_run(cpu_session *s, const aglm_hal_batch *b, std::string *err);
