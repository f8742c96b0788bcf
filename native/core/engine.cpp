// Model loading (map, validate, bind to a backend) and batched evaluation with all-or-nothing semantics.
#include "core/engine.h"

#include <algorithm>

#include "hal/registry.h"

aglm_model_core::~aglm_model_core() {
  if (program) backend->program_free(program);
}

aglm_result aglm_model_load(aglm_load_request &req, std::shared_ptr<aglm_model_core> *out) {
  aglm_result r = aglm_graph_validate(req.graph);
  if (!r.is_ok()) return r;
  auto m = std::make_shared<aglm_model_core>();
  r = m->file.open(req.path);
  if (!r.is_ok()) return r;
  std::string err;
  m->backend = aglm_registry_get(req.backend, &err);
  if (!m->backend) return aglm_result::fail(AGLM_ERR_BACKEND_UNAVAILABLE, err);
  for (const aglm_backend_entry &e : aglm_registry_list())
    if (e.iface == m->backend) m->backend_why = e.why;
  aglm_program_desc desc{};
  desc.graph = &req.graph;
  desc.file_data = m->file.data();
  desc.file_size = m->file.size();
  desc.variant = req.variant.c_str();
  desc.variant_source = req.variant_source.empty() ? nullptr : req.variant_source.c_str();
  desc.n_threads = req.threads;
  char msg[1024] = {0};
  aglm_status st = m->backend->program_create(&desc, &m->program, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail(st, msg);
  m->backend->program_describe(m->program, msg, sizeof msg);
  m->description = msg;
  m->n_vocab = req.graph.values[req.graph.output].width;
  m->n_hidden = req.graph.hidden >= 0 ? req.graph.values[req.graph.hidden].width : 0;
  *out = std::move(m);
  return aglm_result::ok();
}

aglm_context_core::~aglm_context_core() {
  if (session) model->backend->session_free(session);
}

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_session_desc &desc,
                                std::shared_ptr<aglm_context_core> *out) {
  auto c = std::make_shared<aglm_context_core>();
  c->model = model;
  c->n_ctx = desc.n_ctx;
  c->n_batch = std::min(desc.n_batch, desc.n_ctx);
  char msg[1024] = {0};
  aglm_status st = model->backend->session_create(model->program, &desc, &c->session, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail(st, msg);
  *out = std::move(c);
  return aglm_result::ok();
}

aglm_result aglm_context_evaluate(aglm_context_core *c, const uint32_t *tokens, int64_t n, aglm_logits_mode mode,
                                  float *logits, int out_kind) {
  if (n < 1) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "no tokens to evaluate");
  const int64_t start = c->n_past.load();
  if (start + n > c->n_ctx)
    return aglm_result::fail(AGLM_ERR_CONTEXT_FULL, "the context holds " + std::to_string(start) + " of " +
                                                        std::to_string(c->n_ctx) + " positions; " + std::to_string(n) +
                                                        " more tokens do not fit");
  if (out_kind == AGLM_OUT_HIDDEN && c->model->n_hidden == 0)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "this model has no hidden-state output");
  const int64_t n_vocab = out_kind == AGLM_OUT_HIDDEN ? c->model->n_hidden : c->model->n_vocab; // row width of out
  for (int64_t done = 0; done < n;) {
    const int64_t ub = std::min(c->n_batch, n - done);
    const bool last_batch = done + ub == n;
    aglm_batch b{};
    b.tokens = tokens + done;
    b.n_tokens = ub;
    b.n_past = start + done;
    b.n_out = mode == AGLM_LOGITS_ALL ? ub : (mode == AGLM_LOGITS_LAST && last_batch ? 1 : 0);
    b.logits = mode == AGLM_LOGITS_ALL ? logits + done * n_vocab : logits;
    b.abort = &c->abort;
    b.out_kind = out_kind;
    char msg[1024] = {0};
    aglm_status st = c->model->backend->session_decode(c->session, &b, msg, sizeof msg);
    if (st != AGLM_OK) {
      c->n_past = start;
      return aglm_result::fail(st, msg);
    }
    done += ub;
  }
  c->n_past = start + n;
  return aglm_result::ok();
}
