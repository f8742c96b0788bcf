// The model IR as native code receives it from TS (lib/graph/ir.ts builds it): weights, values and ops (the op set and
// its parameters: enum aglm_op_kind in include/open-autoglm/backend.h). Values are f32 activation matrices
// [rows][width] whose row count is either the batch's token count or its output count; each value is written by
// exactly one op (SSA), so buffer lifetimes can be planned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "open-autoglm/backend.h"

// IR version; lib/graph/ir.ts sends the same number.
constexpr int AGLM_IR_VERSION = 2;

const char *aglm_op_name(aglm_op_kind k);
bool aglm_op_from_name(const std::string &name, aglm_op_kind *out);

struct aglm_weight {
  std::string name;
  int type = 0;         // enum aglm_type
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1}; // ne[0] is the contiguous dimension
  uint64_t offset = 0;  // absolute byte offset in the model file
  uint64_t nbytes = 0;
  int to = -1;          // (optional) type to convert to once at load (the precision planner's choice); -1 = keep
  int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

struct aglm_value {
  int rows = AGLM_ROWS_TOKENS; // AGLM_ROWS_TOKENS or AGLM_ROWS_OUTPUTS
  int64_t width = 0;
};

struct aglm_op {
  aglm_op_kind kind = AGLM_OP_COUNT;
  int out = -1;
  int in[3] = {-1, -1, -1};
  int w[2] = {-1, -1};
  int32_t i[AGLM_OP_INTS] = {0};
  float f[AGLM_OP_FLOATS] = {0};
};

struct aglm_cache_slot {
  int64_t k_width = 0; // n_head_kv * head_dim of the layer using it
  int64_t v_width = 0;
};

struct aglm_graph {
  std::vector<aglm_weight> weights;
  std::vector<aglm_value> values;
  std::vector<aglm_op> ops;
  std::vector<aglm_cache_slot> cache;
  int output = -1; // the logits value: output rows, width n_vocab
  int hidden = -1; // (optional) the hidden states after the final norm: output rows, width n_embd; -1 = none.
                   // A batch asking for them runs only the ops this value depends on (no output projection).
};

// Checks indices, SSA order, shapes, and that weight shapes match the values they act on.
// Does not check weight types against a backend (the backend does that).
aglm_result aglm_graph_validate(const aglm_graph &g);
