// The model IR as native code receives it from TS (lib/graph/ir.ts builds it): weights, values and ops.
// Values are f32 activation matrices [rows][width] whose row count is either the batch's token count or its
// output count; each value is written by exactly one op (SSA), so buffer lifetimes can be planned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

// IR version; lib/graph/ir.ts sends the same number.
constexpr int AGLM_IR_VERSION = 1;

enum aglm_op_kind {
  AGLM_OP_EMBED,       // out[t] = row tokens[t] of weight w0 (any type), as f32
  AGLM_OP_RMS_NORM,    // out = rms_norm(in0) * w0;                 f0 = eps
  AGLM_OP_MATMUL,      // out = in0 . w0^T (+ w1 bias if given)
  AGLM_OP_ADD,         // out = in0 + in1
  AGLM_OP_MUL,         // out = in0 * in1
  AGLM_OP_SILU_MUL,    // out = silu(in0) * in1
  AGLM_OP_ROPE,        // out = rope(in0) at each token's position;  i0 heads, i1 head_dim, i2 n_rot, i3 mode,
                       //                                           f0 freq_base, f1 freq_scale
  AGLM_OP_ATTENTION,   // stores in1 (k) and in2 (v) in KV cache slot i0 at the tokens' positions, then
                       // out = causal attention of in0 (q) over the cache; i1 n_head, i2 n_head_kv, i3 head_dim,
                       // f0 scale
  AGLM_OP_OUTPUT_ROWS, // out (output rows) = the rows of in0 whose logits were asked for
  AGLM_OP_COUNT
};

const char *aglm_op_name(aglm_op_kind k);
bool aglm_op_from_name(const std::string &name, aglm_op_kind *out);

enum aglm_rows { AGLM_ROWS_TOKENS = 0, AGLM_ROWS_OUTPUTS = 1 };

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
  aglm_rows rows = AGLM_ROWS_TOKENS;
  int64_t width = 0;
};

struct aglm_op {
  aglm_op_kind kind = AGLM_OP_COUNT;
  int out = -1;
  int in[3] = {-1, -1, -1};
  int w[2] = {-1, -1};
  int32_t i[4] = {0, 0, 0, 0};
  float f[4] = {0, 0, 0, 0};
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
};

// Checks indices, SSA order, shapes, and that weight shapes match the values they act on.
// Does not check weight types against a backend (the backend does that).
aglm_result aglm_graph_validate(const aglm_graph &g);
