// The CPU executor: a graph bound to one kernel table and to the mapped weights (cpu_program), and the
// per-context state it runs in (cpu_session: KV cache, activation arena, scratch, thread pool).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/graph.h"
#include "core/planner.h"
#include "core/thread-pool.h"
#include "hal/backend.h"
#include "kernels/kernels.h"

struct cpu_rope_config {
  int n_rot;
  float freq_base, freq_scale;
};

struct cpu_program {
  aglm_graph graph;
  const aglm_kernels *kernels = nullptr;
  std::string description;              // variant + why
  std::vector<const void *> wdata;      // each weight's data (in the mapping, or a converted f32 copy)
  std::vector<aglm_aligned_buffer> owned; // f32 copies of norm/bias weights stored in other types, converted and
                                          // repacked weights
  std::vector<uint8_t> wpacked;           // per weight: 1 if in the kernel table's own layout (kernels->repack)
  std::vector<cpu_rope_config> ropes;   // distinct rope configurations of the graph
  std::vector<int> op_rope;             // per op: index into ropes, or -1
  int64_t n_vocab = 0;
  uint64_t max_qx_row_bytes = 0; // largest activation row quantized for a matmul (Q8_0, Q8_1 or Q8_K)
};

struct cpu_session {
  const cpu_program *program = nullptr;
  int64_t n_ctx = 0, n_batch = 0;
  std::unique_ptr<aglm_thread_pool> pool;
  aglm_aligned_buffer kv;                // every cache slot's K then V: [n_ctx][width] each
  std::vector<void *> k_cache, v_cache;  // per slot, elements of kv_type
  int kv_type = 0;                       // AGLM_TYPE_F32 or AGLM_TYPE_F16
  size_t kv_elem = sizeof(float);
  aglm_arena_plan plan;
  aglm_aligned_buffer arena;             // activations
  aglm_aligned_buffer qx;                // activations quantized for matmul: n_batch rows of Q8_0
  aglm_aligned_buffer scratch;           // per thread: attention scores, n_ctx floats per head of a KV group
  int64_t scratch_per_thread = 0;        // floats
  aglm_aligned_buffer rope_tables;       // per rope config: [n_batch][n_rot/2][2]
  std::vector<int32_t> pos, n_kv;        // per batch token
  const std::atomic<bool> *abort = nullptr; // the running batch's abort flag (tasks skip their work once set)
  uint64_t bytes = 0;
};

aglm_result cpu_program_create(const aglm_program_desc &desc, const aglm_kernels *kernels, std::string description,
                               std::unique_ptr<cpu_program> *out);
aglm_result cpu_session_create(const cpu_program *p, const aglm_session_desc &desc, std::unique_ptr<cpu_session> *out);
aglm_result cpu_session_decode(cpu_session *s, const aglm_batch &b);
