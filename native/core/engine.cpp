// Model loading (map, validate, analyse, bind, ask the backend) and contexts (session, cell pool, steps).
#include "core/engine.h"

#include <algorithm>

#include "core/arena-plan.h"

namespace {

// The backend released a weight it copied: free or unmap the core's.
void release_weight(void *user, int32_t w) { static_cast<aglm_model_weights *>(user)->release(w); }

// Every op with its weight type must be supported by the backend's device.
aglm_result check_support(const aglm_hal_backend *b, const aglm_graph &g, const aglm_model_weights &w) {
  for (const aglm_op &op : g.ops) {
    const int type = op.w[0] >= 0 ? w.type[op.w[0]] : -1;
    if (b->supports(0, op.kind, type)) continue;
    return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE,
                             std::string("the ") + b->name + " backend cannot run " + aglm_op_name(op.kind) +
                                 (type >= 0 ? " with weight " + g.weights[op.w[0]].name + " of type " + std::to_string(type) : ""));
  }
  return aglm_result::ok();
}

int32_t abort_requested(void *user) { return static_cast<aglm_context_core *>(user)->abort.load(std::memory_order_relaxed) ? 1 : 0; }

} // namespace

aglm_model_core::~aglm_model_core() {
  if (program) backend->program_free(program);
}

aglm_result aglm_model_load(aglm_load_request &req, std::shared_ptr<aglm_model_core> *out) {
  aglm_result r = aglm_graph_validate(req.graph);
  if (!r.is_ok()) return r;
  auto m = std::make_shared<aglm_model_core>();
  m->graph = std::move(req.graph);
  m->analysis = aglm_graph_analyse(m->graph);
  r = m->file.open(req.path);
  if (!r.is_ok()) return r;
  std::string err;
  m->backend = aglm_registry_get(req.backend, &m->backend_why, &err);
  if (!m->backend) return aglm_result::fail(AGLM_ERR_BACKEND_UNAVAILABLE, err);
  r = aglm_weights_bind(m->graph, m->file, req.threads, &m->weights);
  if (!r.is_ok()) return r;
  r = check_support(m->backend, m->graph, m->weights);
  if (!r.is_ok()) return r;
  aglm_hal_graph_view view;
  aglm_graph_view_build(m->graph, m->analysis, m->weights.data, m->weights.type, m->weights.nbytes, &view);
  aglm_hal_program_desc desc{};
  desc.graph = &view.graph;
  desc.device = 0;
  desc.variant = req.variant.c_str();
  desc.variant_source = req.variant_source.empty() ? nullptr : req.variant_source.c_str();
  desc.n_threads = req.threads;
  desc.release = release_weight;
  desc.release_user = &m->weights;
  char msg[1024] = {0};
  const int32_t st = m->backend->program_create(&desc, &m->program, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
  m->backend->program_describe(m->program, msg, sizeof msg);
  m->description = msg;
  m->n_vocab = m->graph.values[m->graph.output].width;
  m->n_hidden = m->graph.hidden >= 0 ? m->graph.values[m->graph.hidden].width : 0;
  *out = std::move(m);
  return aglm_result::ok();
}

aglm_context_core::~aglm_context_core() {
  if (session) model->backend->session_free(session);
}

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_context_desc &desc,
                                std::shared_ptr<aglm_context_core> *out) {
  if (desc.n_cells < 1 || desc.n_batch < 1 || desc.n_threads < 1 || desc.n_seqs < 1)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "context size, batch size, sequences and threads must be positive");
  auto c = std::make_shared<aglm_context_core>();
  c->model = model;
  c->n_cells = desc.n_cells;
  c->n_batch = std::min(desc.n_batch, desc.n_cells);
  const aglm_arena_plan plan = aglm_plan_arena(model->graph, c->n_batch);
  c->value_offsets = plan.offset;
  aglm_hal_session_desc sd{};
  sd.n_cells = c->n_cells;
  sd.n_batch = c->n_batch;
  sd.n_threads = desc.n_threads;
  sd.kv_type = desc.kv_type;
  sd.value_offsets = c->value_offsets.data();
  sd.arena_bytes = plan.size;
  char msg[1024] = {0};
  const int32_t st = model->backend->session_create(model->program, &sd, &c->session, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
  c->pool.init(c->n_cells, desc.n_seqs);
  *out = std::move(c);
  return aglm_result::ok();
}

aglm_result aglm_context_run_step(aglm_context_core *c, aglm_step &step) {
  step.batch.abort = abort_requested;
  step.batch.abort_user = c;
  char msg[1024] = {0};
  const int32_t st = c->model->backend->session_decode(c->session, &step.batch, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
  return aglm_result::ok();
}
