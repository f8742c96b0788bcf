// The engine's two resources, free of N-API: a loaded model (mapped file + backend program) and a context
// (backend session + abort/busy flags + how many positions it holds). Shared ownership lets an in-flight
// evaluation finish safely after JS disposed its handle.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/graph.h"
#include "core/mapped-file.h"
#include "core/status.h"
#include "hal/backend.h"

struct aglm_model_core {
  aglm_mapped_file file;
  const aglm_backend_i *backend = nullptr;
  aglm_program *program = nullptr;
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

// Maps the file, validates the graph and binds it to a backend. Runs on a worker thread.
aglm_result aglm_model_load(aglm_load_request &req, std::shared_ptr<aglm_model_core> *out);

struct aglm_context_core {
  std::shared_ptr<aglm_model_core> model;
  aglm_session *session = nullptr;
  int64_t n_ctx = 0, n_batch = 0;
  std::atomic<int64_t> n_past{0};   // positions filled (written only by whoever holds `busy`)
  std::atomic<bool> abort{false};
  std::atomic<bool> busy{false};
  ~aglm_context_core();
};

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_session_desc &desc,
                                std::shared_ptr<aglm_context_core> *out);

enum aglm_logits_mode { AGLM_LOGITS_LAST = 0, AGLM_LOGITS_ALL = 1, AGLM_LOGITS_NONE = 2 };

// Evaluates n tokens after what the context holds, in batches of n_batch. out receives [n][width] (ALL), [width]
// (LAST) or nothing, where width is n_vocab (out_kind AGLM_OUT_LOGITS) or n_hidden (AGLM_OUT_HIDDEN: the final-norm
// hidden states; the output projection is skipped). All or nothing: on abort or error the context keeps the
// positions it had.
aglm_result aglm_context_evaluate(aglm_context_core *c, const uint32_t *tokens, int64_t n, aglm_logits_mode mode,
                                  float *out, int out_kind = AGLM_OUT_LOGITS);
