// Graph analysis (weight uses, rope configurations, the ops behind the hidden output) and the plain-C graph view.
#include "core/graph-analysis.h"

#include <algorithm>

namespace {

bool same_rope(const aglm_hal_rope &a, const aglm_hal_rope &b) {
  return a.n_rot == b.n_rot && a.n_ctx_orig == b.n_ctx_orig && a.freq_base == b.freq_base &&
         a.freq_scale == b.freq_scale && a.ext_factor == b.ext_factor && a.attn_factor == b.attn_factor &&
         a.beta_fast == b.beta_fast && a.beta_slow == b.beta_slow && a.freq_factors == b.freq_factors && a.mode == b.mode &&
         a.sections[0] == b.sections[0] && a.sections[1] == b.sections[1] && a.sections[2] == b.sections[2];
}

uint32_t weight_use(const aglm_op &op, int slot) {
  switch (op.kind) {
    case AGLM_OP_MATMUL: return slot == 0 ? AGLM_WEIGHT_MATMUL : AGLM_WEIGHT_VECTOR; // w1: the bias
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: return AGLM_WEIGHT_ROWS;
    case AGLM_OP_EMBED_INTERP: return AGLM_WEIGHT_VECTOR; // read whole as f32
    default: return AGLM_WEIGHT_VECTOR; // norm weights and biases, rope frequency factors, add_vector
  }
}

} // namespace

aglm_graph_analysis aglm_graph_analyse(const aglm_graph &g) {
  aglm_graph_analysis a;
  a.weight_uses.assign(g.weights.size(), 0);
  a.op_rope.assign(g.ops.size(), -1);
  a.op_flags.assign(g.ops.size(), 0);
  for (size_t i = 0; i < g.ops.size(); i++) {
    const aglm_op &op = g.ops[i];
    for (int slot = 0; slot < 2; slot++)
      if (op.w[slot] >= 0) a.weight_uses[op.w[slot]] |= weight_use(op, slot);
    if (op.kind == AGLM_OP_ATTENTION && op.i[5]) a.non_causal = true;
    if (op.kind == AGLM_OP_EMBED) {
      const int64_t rows = g.weights[op.w[0]].ne[1];
      a.vocab_rows = a.vocab_rows == 0 ? rows : std::min(a.vocab_rows, rows);
      a.has_embed = true;
      if (a.input_width == 0) a.input_width = g.weights[op.w[0]].ne[0];
    }
    if (op.kind == AGLM_OP_INPUT) {
      a.has_input_op = true;
      a.input_width = g.values[op.out].width;
    }
    if (op.kind == AGLM_OP_EMBED_INTERP) a.has_interp = true;
    if (op.kind == AGLM_OP_MERGE_ROWS) a.merge = std::max(a.merge, op.i[0]);
    if (op.kind == AGLM_OP_ROPE && (op.i[3] == 8 || op.i[3] == 24)) a.multi_rope = true;
    if (op.kind == AGLM_OP_EMBED_POSITIONS) {
      const int64_t rows = g.weights[op.w[0]].ne[1];
      a.position_rows = a.position_rows == 0 ? rows : std::min(a.position_rows, rows);
    }
    if (op.kind != AGLM_OP_ROPE) continue;
    aglm_hal_rope c{};
    c.n_rot = op.i[2];
    c.n_ctx_orig = op.i[4];
    c.freq_base = op.f[0];
    c.freq_scale = op.f[1];
    c.ext_factor = op.f[2];
    c.attn_factor = op.f[3] == 0 ? 1.0f : op.f[3];
    c.beta_fast = op.f[4];
    c.beta_slow = op.f[5];
    c.freq_factors = op.w[0];
    c.mode = op.i[3];
    if (c.mode == 8 || c.mode == 24)
      for (int k = 0; k < 3; k++) c.sections[k] = op.i[5 + k];
    size_t j = 0;
    while (j < a.ropes.size() && !same_rope(a.ropes[j], c)) j++;
    if (j == a.ropes.size()) a.ropes.push_back(c);
    a.op_rope[i] = (int32_t)j;
  }
  // The ops the hidden value depends on, walking the graph backwards from it.
  if (g.hidden >= 0) {
    std::vector<char> needed(g.values.size(), 0);
    needed[g.hidden] = 1;
    for (size_t i = g.ops.size(); i-- > 0;) {
      const aglm_op &op = g.ops[i];
      if (!needed[op.out]) continue;
      a.op_flags[i] |= AGLM_OPF_FOR_HIDDEN;
      for (int in : op.in)
        if (in >= 0) needed[in] = 1;
    }
  }
  return a;
}

void aglm_graph_view_build(const aglm_graph &g, const aglm_graph_analysis &a, const std::vector<const void *> &data,
                           const std::vector<int> &types, const std::vector<uint64_t> &nbytes, aglm_hal_graph_view *out) {
  out->weights.resize(g.weights.size());
  for (size_t i = 0; i < g.weights.size(); i++) {
    const aglm_weight &w = g.weights[i];
    aglm_hal_weight &h = out->weights[i];
    h.name = w.name.c_str();
    h.type = types[i];
    h.n_dims = w.n_dims;
    for (int d = 0; d < 4; d++) h.ne[d] = w.ne[d];
    h.data = data[i];
    h.nbytes = nbytes[i];
    h.uses = a.weight_uses[i];
  }
  out->values.resize(g.values.size());
  for (size_t i = 0; i < g.values.size(); i++) out->values[i] = {g.values[i].rows, g.values[i].width};
  out->ops.resize(g.ops.size());
  for (size_t i = 0; i < g.ops.size(); i++) {
    const aglm_op &op = g.ops[i];
    aglm_hal_op &h = out->ops[i];
    h.kind = op.kind;
    h.out = op.out;
    for (int k = 0; k < 3; k++) h.in[k] = op.in[k];
    for (int k = 0; k < 2; k++) h.w[k] = op.w[k];
    for (int k = 0; k < AGLM_OP_INTS; k++) h.i[k] = op.i[k];
    for (int k = 0; k < AGLM_OP_FLOATS; k++) h.f[k] = op.f[k];
    h.rope = a.op_rope[i];
    h.flags = a.op_flags[i];
  }
  out->cache.resize(g.cache.size());
  for (size_t i = 0; i < g.cache.size(); i++) out->cache[i] = {g.cache[i].k_width, g.cache[i].v_width};
  out->ropes = a.ropes;
  aglm_hal_graph &v = out->graph;
  v.weights = out->weights.data();
  v.n_weights = (int32_t)out->weights.size();
  v.values = out->values.data();
  v.n_values = (int32_t)out->values.size();
  v.ops = out->ops.data();
  v.n_ops = (int32_t)out->ops.size();
  v.cache = out->cache.data();
  v.n_cache = (int32_t)out->cache.size();
  v.ropes = out->ropes.data();
  v.n_ropes = (int32_t)out->ropes.size();
  v.output = g.output;
  v.hidden = g.hidden;
}
