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

// One backend's share of a model: the whole graph, or with gpuLayers the part before a layer boundary (on the CPU)
// and the part after it (on the GPU backend), the first handing its rows on to the second.
struct aglm_model_part {
  const aglm_hal_backend *backend = nullptr;
  aglm_hal_program *program = nullptr;
  aglm_graph graph;
  aglm_graph_analysis analysis;
  std::string description;
  int64_t hand_width = 0; // floats per token handed to the next part (0: the last part)
  // The backend's release callback's context: it may release a weight at any time until program_free, so it lives as
  // long as the part (parts are never moved once programs exist).
  struct aglm_model_core *owner = nullptr;
};

struct aglm_model_core {
  aglm_mapped_file file;
  aglm_graph graph;            // the whole graph (steps are validated against it)
  aglm_graph_analysis analysis;
  aglm_model_weights weights;
  std::vector<aglm_model_part> parts; // run in order; the last one produces the outputs
  const aglm_hal_backend *backend = nullptr; // the last part's (the model's backend)
  aglm_hal_program *program = nullptr;
  std::string backend_why; // why this backend was chosen
  std::string description; // the backends' one-line descriptions of their programs (variant and why)
  int64_t n_vocab = 0;
  int64_t n_hidden = 0; // width of the graph's hidden-state output; 0 if it has none
  int32_t n_layers = 0, gpu_layers = 0; // attention layers; those on a non-CPU backend
  std::vector<int> weight_refs; // per weight: the parts still reading the core's copy (released at 0)
  ~aglm_model_core();
};

struct aglm_load_request {
  std::string path;
  std::string backend; // empty = best
  std::string variant; // empty = best
  std::string variant_source;
  int threads = 0; // load-time threads (0 = every core)
  int gpu_layers = -1; // layers on `backend` when it is not the CPU (the last ones); the rest run on the CPU; -1 = all
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
  std::vector<aglm_hal_session *> sessions; // one per model part
  int64_t n_cells = 0, n_batch = 0;
  std::vector<std::vector<uint64_t>> value_offsets; // per part: the arena plan its session was made with
  std::vector<float> hand;                           // rows handed from one part to the next (n_batch x width)
  std::vector<int32_t> iota;                         // 0 .. n_batch - 1
  uint64_t memory_bytes() const;
  aglm_kv_pool pool;                  // touched by the JS thread only
  std::atomic<bool> stepping{false};  // a step is running (set and cleared by the JS thread)
  std::atomic<bool> abort{false};     // the running step should stop
  ~aglm_context_core();
};

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_context_desc &desc,
                                std::shared_ptr<aglm_context_core> *out);

// Runs a built step through the backend (on a worker thread). The caller rolls the step back on failure.
aglm_result aglm_context_run_step(aglm_context_core *c, aglm_step &step);
