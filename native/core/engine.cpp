// Model loading (map, validate, analyse, bind, ask the backend) and contexts (session, cell pool, steps).
#include "core/engine.h"

#include <algorithm>

#include "core/arena-plan.h"
#include "core/split.h"

namespace {

// A part's backend released a weight it copied: the core's copy goes when no part reads it any more. Weights the part
// does not read are not its to release.
void release_weight(void *user, int32_t w) {
  auto *part = static_cast<aglm_model_part *>(user);
  const std::vector<uint32_t> &uses = part->analysis.weight_uses;
  if (w < 0 || (size_t)w >= uses.size() || uses[(size_t)w] == 0) return;
  if (--part->owner->weight_refs[(size_t)w] == 0) part->owner->weights.release(w);
}

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

// Creates a part's program (the core's weight copies it no longer needs released as it says so).
aglm_result create_program(aglm_model_core *m, aglm_model_part *part, const aglm_load_request &req) {
  aglm_result r = check_support(part->backend, part->graph, m->weights);
  if (!r.is_ok()) return r;
  aglm_hal_graph_view view;
  aglm_graph_view_build(part->graph, part->analysis, m->weights.data, m->weights.type, m->weights.nbytes, &view);
  part->owner = m;
  aglm_hal_program_desc desc{};
  desc.graph = &view.graph;
  desc.device = 0;
  const bool cpu = std::string(part->backend->name) == "cpu";
  desc.variant = cpu || req.backend == part->backend->name ? req.variant.c_str() : "";
  desc.variant_source = req.variant_source.empty() ? nullptr : req.variant_source.c_str();
  desc.n_threads = req.threads;
  desc.release = release_weight;
  desc.release_user = part;
  char msg[1024] = {0};
  const int32_t st = part->backend->program_create(&desc, &part->program, msg, sizeof msg);
  if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
  part->backend->program_describe(part->program, msg, sizeof msg);
  part->description = msg;
  return aglm_result::ok();
}

} // namespace

aglm_model_core::~aglm_model_core() {
  for (aglm_model_part &p : parts)
    if (p.program) p.backend->program_free(p.program);
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
  const aglm_hal_backend *backend = aglm_registry_get(req.backend, &m->backend_why, &err);
  if (!backend) return aglm_result::fail(AGLM_ERR_BACKEND_UNAVAILABLE, err);
  r = aglm_weights_bind(m->graph, m->file, req.threads, &m->weights);
  if (!r.is_ok()) return r;
  m->n_layers = aglm_graph_layers(m->graph);

  // gpuLayers: the last `gpu_layers` layers (and the output) on the chosen backend, the others on the CPU.
  const bool on_cpu = std::string(backend->name) == "cpu";
  int gpu_layers = on_cpu ? 0 : req.gpu_layers < 0 ? m->n_layers : std::min(req.gpu_layers, m->n_layers);
  const aglm_hal_backend *cpu = nullptr;
  if (!on_cpu && gpu_layers < m->n_layers) {
    std::string why_cpu;
    cpu = aglm_registry_get("cpu", &why_cpu, &err);
    if (!cpu) return aglm_result::fail(AGLM_ERR_BACKEND_UNAVAILABLE, err);
  }
  if (!on_cpu && gpu_layers == 0) { // everything on the CPU
    backend = cpu;
    m->backend_why = "gpuLayers 0: every layer on the CPU";
  }
  const int cut = backend != cpu && cpu ? aglm_graph_layer_cut(m->graph, gpu_layers) : -1;
  if (backend != cpu && cpu && cut < 0)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "gpuLayers " + std::to_string(gpu_layers) + ": the graph has no layer boundary there");
  if (cut >= 0) {
    m->parts.resize(2);
    r = aglm_graph_split(m->graph, cut, &m->parts[0].graph, &m->parts[1].graph, &m->parts[0].hand_width);
    if (!r.is_ok()) return r;
    m->parts[0].backend = cpu;
    m->parts[1].backend = backend;
  } else {
    m->parts.resize(1);
    m->parts[0].graph = m->graph;
    m->parts[0].backend = backend;
  }
  m->gpu_layers = std::string(m->parts.back().backend->name) == "cpu" ? 0 : (cut >= 0 ? gpu_layers : m->n_layers);
  m->weight_refs.assign(m->graph.weights.size(), 0);
  for (aglm_model_part &p : m->parts) {
    p.analysis = aglm_graph_analyse(p.graph);
    for (size_t w = 0; w < p.analysis.weight_uses.size(); w++) m->weight_refs[w] += p.analysis.weight_uses[w] != 0;
  }
  for (aglm_model_part &p : m->parts) {
    r = create_program(m.get(), &p, req);
    if (!r.is_ok()) return r;
    m->description += (m->description.empty() ? "" : "; then ") + p.description;
  }
  if (cut >= 0)
    m->description = std::to_string(m->n_layers - gpu_layers) + " of " + std::to_string(m->n_layers) + " layers on " + m->parts[0].description +
                     "; " + std::to_string(gpu_layers) + " and the output on " + m->parts[1].description;
  m->backend = m->parts.back().backend;
  m->program = m->parts.back().program;
  m->n_vocab = m->graph.values[m->graph.output].width;
  m->n_hidden = m->graph.hidden >= 0 ? m->graph.values[m->graph.hidden].width : 0;
  *out = std::move(m);
  return aglm_result::ok();
}

aglm_context_core::~aglm_context_core() {
  for (size_t i = 0; i < sessions.size(); i++)
    if (sessions[i]) model->parts[i].backend->session_free(sessions[i]);
}

uint64_t aglm_context_core::memory_bytes() const {
  uint64_t n = 0;
  for (size_t i = 0; i < sessions.size(); i++) {
    const aglm_hal_backend *b = model->parts[i].backend;
    if (sessions[i] && b->session_memory) n += b->session_memory(sessions[i]);
  }
  return n + hand.size() * sizeof(float);
}

aglm_result aglm_context_create(const std::shared_ptr<aglm_model_core> &model, const aglm_context_desc &desc,
                                std::shared_ptr<aglm_context_core> *out) {
  if (desc.n_cells < 1 || desc.n_batch < 1 || desc.n_threads < 1 || desc.n_seqs < 1)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "context size, batch size, sequences and threads must be positive");
  auto c = std::make_shared<aglm_context_core>();
  c->model = model;
  c->n_cells = desc.n_cells;
  c->n_batch = std::min(desc.n_batch, desc.n_cells);
  c->sessions.assign(model->parts.size(), nullptr);
  c->value_offsets.resize(model->parts.size());
  for (size_t i = 0; i < model->parts.size(); i++) {
    const aglm_model_part &part = model->parts[i];
    const aglm_arena_plan plan = aglm_plan_arena(part.graph, c->n_batch);
    c->value_offsets[i] = plan.offset;
    aglm_hal_session_desc sd{};
    sd.n_cells = c->n_cells;
    sd.n_batch = c->n_batch;
    sd.n_threads = desc.n_threads;
    sd.kv_type = desc.kv_type;
    sd.value_offsets = c->value_offsets[i].data();
    sd.arena_bytes = plan.size;
    char msg[1024] = {0};
    const int32_t st = part.backend->session_create(part.program, &sd, &c->sessions[i], msg, sizeof msg);
    if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
    if (part.hand_width) c->hand.assign((size_t)(c->n_batch * part.hand_width), 0.0f);
  }
  c->iota.resize((size_t)c->n_batch);
  for (int64_t i = 0; i < c->n_batch; i++) c->iota[(size_t)i] = (int32_t)i;
  c->pool.init(c->n_cells, desc.n_seqs);
  *out = std::move(c);
  return aglm_result::ok();
}

aglm_result aglm_context_run_step(aglm_context_core *c, aglm_step &step) {
  step.batch.abort = abort_requested;
  step.batch.abort_user = c;
  char msg[1024] = {0};
  const std::vector<aglm_model_part> &parts = c->model->parts;
  const int32_t n = step.batch.n_tokens;
  for (size_t i = 0; i < parts.size(); i++) {
    aglm_hal_batch b = step.batch;
    std::vector<float *> rows;
    if (i > 0) { // the rows the part before handed on are this part's input rows
      b.embd = c->hand.data();
      b.embd_width = (int32_t)parts[i - 1].hand_width;
      b.embd_row = c->iota.data();
    }
    std::vector<int32_t> kinds;
    if (parts[i].hand_width) { // every token's rows, as the part's output (its graph ends in output_rows), handed on
      rows.resize((size_t)n);
      for (int32_t t = 0; t < n; t++) rows[(size_t)t] = c->hand.data() + (size_t)t * parts[i].hand_width;
      kinds.assign((size_t)n, AGLM_OUT_LOGITS);
      b.n_out = n;
      b.out_rows = c->iota.data();
      b.out_kind = kinds.data();
      b.out = rows.data();
    }
    const int32_t st = parts[i].backend->session_decode(c->sessions[i], &b, msg, sizeof msg);
    if (st != AGLM_OK) return aglm_result::fail((aglm_status)st, msg);
  }
  return aglm_result::ok();
}
