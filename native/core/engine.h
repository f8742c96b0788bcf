// The engine's two resources, free of N-API: a loaded model (mapped file, validated and analysed graph, bound weights,
// and the program a backend made of them) and a context (a backend session, its KV cell pool and sequences, and the
// step it may be running). Shared ownership lets a step in flight finish safely after JS disposed its handle.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/mapped-file.h"
#include "base/status.h"
#include "core/graph-analysis.h"
#include "core/graph.h"
#include "core/kv-pool.h"
#include "core/step.h"
#include "core/weights.h"
#include "hal/registry.h"

struct aglm_model_core {
  aglm_mapped_file file;
  aglm_graph graph;
  aglm_graph_analysis analysis;
  aglm_model_weights weights;
  const aglm_hal_backend *backend = nullptr;
  aglm_hal_program *program = nullptr;
  std::string backend_why; // why this backend was chosen
  std::string description; // the backend's one-line description of the program (variant and why)
  int64_t n_vocab = 0;
  int64_t n_hidden = 0; // width of the graph's hidden-state output; 0 if it has none
  ~aglm_model_core();
};

struct aglm_load_request {
  std::string path;
  std::string backend; // empty = best
  std::string variant; // empty = best
  std::string variant_source;
  int threads = 0; // load-time threads (0 = every core)
  aglm_graph graph;
};

// Maps the file, validates and analyses the graph, binds (and converts) the weights, checks the backend supports every
// op and weight type, and creates the program. Runs on a worker thread.
aglm_result aglm_model_load(aglm_load_request &req, std::shared_ptr<aglm_model_core> *out);

struct aglm_context_desc {
  int64_t n_cells;   // KV cells (the context size)
  int64_t n_batch;   // most tokens per step
  int32_t n_seqs;    // most sequences at once
  int32_t n_threads;
  int32_t kv_type;   // AGLM_TYPE_F32 or AGLM_TYPE_F16
};

struct aglm_context_core {
  std::shared_ptr<aglm_model_core> model;
  aglm_hal_session *session = nullptr;
  int64_t n_cells = 0, n_batch = 0;
  std::vector<uint64_t> value_offsets; // the arena plan the session was made with
  aglm_kv_pool pool;                  // touched by the JS thread only
  std::atomic<bool> stepping{false};  // a step is running (set and cleared by the JS thread)
  std::atomic<bool> abort{false};     // the running step should stop
  ~aglm_context_core();
};

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_context_desc &desc,
                                std::shared_ptr<aglm_context_core> *out);

// Runs a built step through the backend (on a worker thread). The caller rolls the step back on failure.
aglm_result aglm_context_run_step(aglm_context_core *c, aglm_step &step);
