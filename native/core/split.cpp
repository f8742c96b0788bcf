// Graph splitting at a layer boundary (split.h).
#include "core/split.h"

#include <algorithm>
#include <map>

namespace {

// Per value: the op defining it and its last use (the graph's outputs are used "after" the last op).
void lifetimes(const aglm_graph &g, std::vector<int> *def, std::vector<int> *last) {
  def->assign(g.values.size(), -1);
  last->assign(g.values.size(), -1);
  for (size_t i = 0; i < g.ops.size(); i++) {
    const aglm_op &op = g.ops[i];
    (*def)[(size_t)op.out] = (int)i;
    for (int in : op.in)
      if (in >= 0) (*last)[(size_t)in] = std::max((*last)[(size_t)in], (int)i);
  }
  const int end = (int)g.ops.size();
  if (g.output >= 0) (*last)[(size_t)g.output] = end;
  if (g.hidden >= 0) (*last)[(size_t)g.hidden] = end;
}

// The values crossing a cut before op `at`.
std::vector<int> crossing(const std::vector<int> &def, const std::vector<int> &last, int at) {
  std::vector<int> out;
  for (size_t v = 0; v < def.size(); v++)
    if (def[v] >= 0 && def[v] < at && last[v] >= at) out.push_back((int)v);
  return out;
}

} // namespace

int aglm_graph_layers(const aglm_graph &g) {
  int n = 0;
  for (const aglm_op &op : g.ops) n += op.kind == AGLM_OP_ATTENTION;
  return n;
}

int aglm_graph_layer_cut(const aglm_graph &g, int layers) {
  std::vector<int> att;
  for (size_t i = 0; i < g.ops.size(); i++)
    if (g.ops[i].kind == AGLM_OP_ATTENTION) att.push_back((int)i);
  const int total = (int)att.size();
  if (layers <= 0 || layers >= total) return -1;
  const int first_second = att[(size_t)(total - layers)], lo = att[(size_t)(total - layers - 1)];
  std::vector<int> def, last;
  lifetimes(g, &def, &last);
  for (int at = first_second; at > lo; at--) {
    const std::vector<int> c = crossing(def, last, at);
    if (c.size() == 1 && g.values[(size_t)c[0]].rows == AGLM_ROWS_TOKENS) return at;
  }
  return -1;
}

aglm_result aglm_graph_split(const aglm_graph &g, int at, aglm_graph *first, aglm_graph *second, int64_t *width) {
  std::vector<int> def, last;
  lifetimes(g, &def, &last);
  const std::vector<int> c = crossing(def, last, at);
  if (at <= 0 || at >= (int)g.ops.size() || c.size() != 1 || g.values[(size_t)c[0]].rows != AGLM_ROWS_TOKENS)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "the graph cannot be split before op " + std::to_string(at));
  const int handed = c[0];
  *width = g.values[(size_t)handed].width;

  // A value of g in `part` (added on first use).
  auto value_in = [&g](aglm_graph *part, std::map<int, int> *vmap, int v) {
    auto it = vmap->find(v);
    if (it != vmap->end()) return it->second;
    const int n = (int)part->values.size();
    part->values.push_back(g.values[(size_t)v]);
    (*vmap)[v] = n;
    return n;
  };
  // Renumbers the values and cache slots ops [from, to) use into `part`.
  auto build = [&](int from, int to, aglm_graph *part, std::map<int, int> *vmap) {
    part->weights = g.weights;
    std::map<int, int> smap;
    auto value = [&](int v) { return value_in(part, vmap, v); };
    for (int i = from; i < to; i++) {
      aglm_op op = g.ops[(size_t)i];
      for (int &in : op.in)
        if (in >= 0) in = value(in);
      op.out = value(op.out);
      if (op.kind == AGLM_OP_ATTENTION) {
        auto it = smap.find(op.i[0]);
        if (it == smap.end()) {
          it = smap.emplace(op.i[0], (int)part->cache.size()).first;
          part->cache.push_back(g.cache[(size_t)op.i[0]]);
        }
        op.i[0] = it->second;
      }
      part->ops.push_back(op);
    }
  };

  // First: ops [0, at), then the crossing rows as output rows (the batch asks for every token).
  *first = aglm_graph{};
  std::map<int, int> m1;
  build(0, at, first, &m1);
  aglm_op rows;
  rows.kind = AGLM_OP_OUTPUT_ROWS;
  rows.in[0] = value_in(first, &m1, handed);
  rows.out = (int)first->values.size();
  first->values.push_back({AGLM_ROWS_OUTPUTS, *width});
  first->ops.push_back(rows);
  first->output = rows.out;
  first->hidden = -1;

  // Second: the handed rows as its input, then ops [at, n).
  *second = aglm_graph{};
  std::map<int, int> m2;
  second->values.push_back({AGLM_ROWS_TOKENS, *width});
  m2[handed] = 0;
  aglm_op input;
  input.kind = AGLM_OP_INPUT;
  input.out = 0;
  second->ops.push_back(input);
  build(at, (int)g.ops.size(), second, &m2);
  second->output = value_in(second, &m2, g.output);
  second->hidden = g.hidden >= 0 ? value_in(second, &m2, g.hidden) : -1;
  aglm_result r = aglm_graph_validate(*first);
  if (r.is_ok()) r = aglm_graph_validate(*second);
  return r;
}
