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

// One distinct rope configuration of the graph (op.i / op.f / op.w of AGLM_OP_ROPE, minus the head layout).
struct cpu_rope_config {
  int n_rot = 0;
  int n_ctx_orig = 0;
  float freq_base = 0, freq_scale = 1;
  float ext_factor = 0, attn_factor = 1, beta_fast = 0, beta_slow = 0; // YaRN (ext_factor 0: off)
  int freq_factors = -1;                                               // weight index, or -1
  bool operator==(const cpu_rope_config &o) const {
    return n_rot == o.n_rot && n_ctx_orig == o.n_ctx_orig && freq_base == o.freq_base && freq_scale == o.freq_scale &&
           ext_factor == o.ext_factor && attn_factor == o.attn_factor && beta_fast == o.beta_fast &&
           beta_slow == o.beta_slow && freq_factors == o.freq_factors;
  }
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
  std::vector<uint8_t> op_for_hidden;   // per op: 1 if the graph's hidden value depends on it
  int64_t n_vocab = 0;
  int64_t n_hidden = 0;                 // width of the hidden value (0: the graph has none)
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
  std::vector<int32_t> n_kv_all;         // per batch token: positions a non-causal attention op sees (all of the batch)
  const std::atomic<bool> *abort = nullptr; // the running batch's abort flag (tasks skip their work once set)
  uint64_t bytes = 0;
};

aglm_result cpu_program_create(const aglm_program_desc &desc, const aglm_kernels *kernels, std::string description,
                               std::unique_ptr<cpu_program> *out);
aglm_result cpu_session_create(const cpu_program *p, const aglm_session_desc &desc, std::unique_ptr<cpu_session> *out);
aglm_result cpu_session_decode(cpu_session *s, const aglm_batch &b);
