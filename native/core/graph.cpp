// IR op names and the structural validation of a graph received from TS.
#include "core/graph.h"

#include <cmath>
#include <cstring>

static const char *const kOpNames[AGLM_OP_COUNT] = {
    "embed", "rms_norm", "matmul", "add", "mul", "silu_mul", "rope", "attention", "output_rows",
    "layer_norm", "gelu", "embed_positions", "add_vector", "input", "embed_interp", "merge_rows", "gelu_erf",
};

const char *aglm_op_name(aglm_op_kind k) { return k < AGLM_OP_COUNT ? kOpNames[k] : "?"; }

bool aglm_op_from_name(const std::string &name, aglm_op_kind *out) {
  for (int k = 0; k < AGLM_OP_COUNT; k++) {
    if (name == kOpNames[k]) {
      *out = (aglm_op_kind)k;
      return true;
    }
  }
  return false;
}

namespace {

struct checker {
  const aglm_graph &g;
  std::vector<char> defined;
  std::string error;

  bool fail(size_t op, const std::string &msg) {
    error = "graph op " + std::to_string(op) + " (" + aglm_op_name(g.ops[op].kind) + "): " + msg;
    return false;
  }
  const aglm_value *use(size_t op, int v) {
    if (v < 0 || (size_t)v >= g.values.size() || !defined[v]) return nullptr;
    return &g.values[v];
  }
  const aglm_weight *weight(int w) { return w >= 0 && (size_t)w < g.weights.size() ? &g.weights[w] : nullptr; }

  bool check_op(size_t i) {
    const aglm_op &op = g.ops[i];
    if (op.out < 0 || (size_t)op.out >= g.values.size()) return fail(i, "output value index out of range");
    if (defined[op.out]) return fail(i, "value " + std::to_string(op.out) + " is written twice");
    const aglm_value &out = g.values[op.out];
    if (out.width <= 0) return fail(i, "output width must be positive");
    const aglm_value *a = nullptr, *b = nullptr, *c = nullptr;
    auto need_in = [&](int n) {
      const aglm_value **slots[3] = {&a, &b, &c};
      for (int k = 0; k < n; k++) {
        *slots[k] = use(i, op.in[k]);
        if (!*slots[k]) return fail(i, "input " + std::to_string(k) + " is not a value defined earlier");
      }
      return true;
    };
    switch (op.kind) {
      case AGLM_OP_EMBED: {
        const aglm_weight *w = weight(op.w[0]);
        if (!w) return fail(i, "missing table weight");
        if (w->ne[0] != out.width || out.rows != AGLM_ROWS_TOKENS) return fail(i, "table width mismatch");
        break;
      }
      case AGLM_OP_RMS_NORM: {
        if (!need_in(1)) return false;
        const aglm_weight *w = weight(op.w[0]);
        if (!w || w->nelements() != a->width) return fail(i, "norm weight must have `width` elements");
        if (a->width != out.width || a->rows != out.rows) return fail(i, "shape mismatch");
        if (!(op.f[0] > 0)) return fail(i, "eps must be positive");
        break;
      }
      case AGLM_OP_MATMUL: {
        if (!need_in(1)) return false;
        const aglm_weight *w = weight(op.w[0]);
        if (!w || w->n_dims != 2) return fail(i, "matmul weight must be 2-D");
        if (w->ne[0] != a->width) return fail(i, "weight " + w->name + " has " + std::to_string(w->ne[0]) +
                                                  " columns but the input has width " + std::to_string(a->width));
        if (w->ne[1] != out.width || a->rows != out.rows) return fail(i, "output shape mismatch for " + w->name);
        if (op.w[1] >= 0) {
          const aglm_weight *bias = weight(op.w[1]);
          if (!bias || bias->nelements() != out.width) return fail(i, "bias must have `width` elements");
        }
        break;
      }
      case AGLM_OP_ADD:
      case AGLM_OP_MUL:
      case AGLM_OP_SILU_MUL:
        if (!need_in(2)) return false;
        if (a->width != out.width || b->width != out.width || a->rows != out.rows || b->rows != out.rows)
          return fail(i, "operands and output must have the same shape");
        break;
      case AGLM_OP_ROPE: {
        if (!need_in(1)) return false;
        int heads = op.i[0], hd = op.i[1], n_rot = op.i[2], mode = op.i[3];
        if (heads <= 0 || hd <= 0 || (int64_t)heads * hd != a->width) return fail(i, "heads * head_dim != width");
        if (n_rot <= 0 || n_rot > hd || n_rot % 2) return fail(i, "n_rot must be even and within head_dim");
        if (mode != 0 && mode != 2 && mode != 8 && mode != 24) return fail(i, "unknown rope mode " + std::to_string(mode));
        if (mode == 8 || mode == 24) {
          if (op.i[5] < 0 || op.i[6] < 0 || op.i[7] < 0) return fail(i, "rope sections must not be negative");
          if (op.w[0] >= 0) return fail(i, "multi-section rope takes no frequency factors");
        }
        if (mode == 8 && (int64_t)op.i[5] + op.i[6] + op.i[7] > n_rot / 2)
          return fail(i, "rope sections cover more than n_rot / 2 pairs");
        if (mode == 24 && (op.i[5] <= 0 || op.i[6] <= 0 || (int64_t)op.i[5] + op.i[6] != n_rot / 2))
          return fail(i, "vision rope needs two sections covering n_rot / 2 pairs");
        if (!(op.f[0] > 0) || !(op.f[1] > 0)) return fail(i, "freq_base and freq_scale must be positive");
        if (op.i[4] < 0) return fail(i, "n_ctx_orig must not be negative");
        for (int k = 2; k < 6; k++)
          if (!std::isfinite(op.f[k])) return fail(i, "rope YaRN parameters must be finite");
        if (op.w[0] >= 0) {
          const aglm_weight *ff = weight(op.w[0]);
          if (!ff || ff->nelements() != n_rot / 2) return fail(i, "frequency factors must have n_rot / 2 elements");
        }
        if (a->width != out.width || a->rows != AGLM_ROWS_TOKENS || out.rows != AGLM_ROWS_TOKENS)
          return fail(i, "shape mismatch");
        break;
      }
      case AGLM_OP_ATTENTION: {
        if (!need_in(3)) return false;
        int slot = op.i[0], nh = op.i[1], nkv = op.i[2], hd = op.i[3];
        if (slot < 0 || (size_t)slot >= g.cache.size()) return fail(i, "cache slot out of range");
        if (nh <= 0 || nkv <= 0 || hd <= 0 || nh % nkv) return fail(i, "n_head must be a multiple of n_head_kv");
        if (op.i[4] < 0) return fail(i, "the sliding window must not be negative");
        if (op.i[5] != 0 && op.i[5] != 1) return fail(i, "the non-causal flag must be 0 or 1");
        if (op.i[5] && op.i[4]) return fail(i, "non-causal attention has no sliding window");
        if (a->width != (int64_t)nh * hd || out.width != a->width) return fail(i, "q width != n_head * head_dim");
        if (b->width != (int64_t)nkv * hd || c->width != b->width) return fail(i, "k/v width != n_head_kv * head_dim");
        if (g.cache[slot].k_width != b->width || g.cache[slot].v_width != c->width)
          return fail(i, "k/v width differs from the cache slot's");
        if (a->rows != AGLM_ROWS_TOKENS || b->rows != AGLM_ROWS_TOKENS || c->rows != AGLM_ROWS_TOKENS ||
            out.rows != AGLM_ROWS_TOKENS)
          return fail(i, "attention works on token rows");
        break;
      }
      case AGLM_OP_OUTPUT_ROWS:
        if (!need_in(1)) return false;
        if (a->rows != AGLM_ROWS_TOKENS || out.rows != AGLM_ROWS_OUTPUTS || a->width != out.width)
          return fail(i, "output_rows maps token rows to output rows of the same width");
        break;
      case AGLM_OP_LAYER_NORM: {
        if (!need_in(1)) return false;
        const aglm_weight *w = weight(op.w[0]);
        if (!w || w->nelements() != a->width) return fail(i, "norm weight must have `width` elements");
        if (op.w[1] >= 0) {
          const aglm_weight *bias = weight(op.w[1]);
          if (!bias || bias->nelements() != a->width) return fail(i, "norm bias must have `width` elements");
        }
        if (a->width != out.width || a->rows != out.rows) return fail(i, "shape mismatch");
        if (!(op.f[0] > 0)) return fail(i, "eps must be positive");
        break;
      }
      case AGLM_OP_GELU:
        if (!need_in(1)) return false;
        if (a->width != out.width || a->rows != out.rows) return fail(i, "shape mismatch");
        break;
      case AGLM_OP_EMBED_POSITIONS: {
        const aglm_weight *w = weight(op.w[0]);
        if (!w || w->n_dims != 2) return fail(i, "missing position table weight");
        if (w->ne[0] != out.width || out.rows != AGLM_ROWS_TOKENS) return fail(i, "table width mismatch");
        break;
      }
      case AGLM_OP_ADD_VECTOR: {
        if (!need_in(1)) return false;
        const aglm_weight *w = weight(op.w[0]);
        if (!w || w->nelements() != a->width) return fail(i, "the vector must have `width` elements");
        if (a->width != out.width || a->rows != out.rows) return fail(i, "shape mismatch");
        break;
      }
      case AGLM_OP_INPUT:
        if (out.rows != AGLM_ROWS_TOKENS) return fail(i, "input rows are token rows");
        break;
      case AGLM_OP_EMBED_INTERP: {
        const aglm_weight *w = weight(op.w[0]);
        if (!w) return fail(i, "missing grid weight");
        if (op.i[0] <= 0 || op.i[1] <= 0) return fail(i, "the grid needs positive columns and rows");
        if (w->ne[0] != out.width || w->nelements() != out.width * op.i[0] * op.i[1] || out.rows != AGLM_ROWS_TOKENS)
          return fail(i, "the grid weight must be [width][rows * columns]");
        break;
      }
      case AGLM_OP_MERGE_ROWS:
        if (!need_in(1)) return false;
        if (op.i[0] < 1) return fail(i, "merge_rows merges at least one row");
        if (a->rows != AGLM_ROWS_TOKENS || out.rows != AGLM_ROWS_OUTPUTS || out.width != a->width * op.i[0])
          return fail(i, "merge_rows maps token rows to output rows i0 times as wide");
        break;
      case AGLM_OP_GELU_ERF:
        if (!need_in(1)) return false;
        if (a->width != out.width || a->rows != out.rows) return fail(i, "shape mismatch");
        break;
      default:
        return fail(i, "unknown op");
    }
    defined[op.out] = 1;
    return true;
  }
};

} // namespace

aglm_result aglm_graph_validate(const aglm_graph &g) {
  for (const aglm_weight &w : g.weights) {
    if (w.n_dims < 1 || w.n_dims > 4) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "weight " + w.name + ": bad n_dims");
    for (int d = 0; d < 4; d++)
      if (w.ne[d] <= 0) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "weight " + w.name + ": bad shape");
  }
  checker c{g, std::vector<char>(g.values.size(), 0), {}};
  for (size_t i = 0; i < g.ops.size(); i++)
    if (!c.check_op(i)) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, c.error);
  int64_t input_width = 0;
  for (const aglm_op &op : g.ops) {
    int64_t w = 0;
    if (op.kind == AGLM_OP_INPUT) w = g.values[op.out].width;
    if (op.kind == AGLM_OP_EMBED) w = g.weights[op.w[0]].ne[0];
    if (w == 0) continue;
    if (input_width != 0 && input_width != w)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "input and embed ops read input rows of different widths");
    input_width = w;
  }
  if (g.output < 0 || (size_t)g.output >= g.values.size() || !c.defined[g.output])
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "graph output is not a defined value");
  if (g.values[g.output].rows != AGLM_ROWS_OUTPUTS)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "graph output must have output rows");
  if (g.hidden != -1) {
    if (g.hidden < 0 || (size_t)g.hidden >= g.values.size() || !c.defined[g.hidden])
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "graph hidden output is not a defined value");
    if (g.values[g.hidden].rows != AGLM_ROWS_OUTPUTS)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "graph hidden output must have output rows");
  }
  return aglm_result::ok();
}
