// The model IR as native code receives it from TS (lib/graph/ir.ts builds it): weights, values and ops.
// Values are f32 activation matrices [rows][width] whose row count is either the batch's token count or its
// output count; each value is written by exactly one op (SSA), so buffer lifetimes can be planned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

// IR version; lib/graph/ir.ts sends the same number.
constexpr int AGLM_IR_VERSION = 2;

enum aglm_op_kind {
  AGLM_OP_EMBED,       // out[t] = row tokens[t] of weight w0 (any type), as f32
  AGLM_OP_RMS_NORM,    // out = rms_norm(in0) * w0;                 f0 = eps
  AGLM_OP_MATMUL,      // out = in0 . w0^T (+ w1 bias if given)
  AGLM_OP_ADD,         // out = in0 + in1
  AGLM_OP_MUL,         // out = in0 * in1
  AGLM_OP_SILU_MUL,    // out = silu(in0) * in1
  AGLM_OP_ROPE,        // out = rope(in0) at each token's position;  i0 heads, i1 head_dim, i2 n_rot, i3 mode,
                       // i4 n_ctx_orig (YaRN); f0 freq_base, f1 freq_scale, f2 ext_factor (YaRN, 0 = off),
                       // f3 attn_factor (cos/sin scale, 0 taken as 1), f4 beta_fast, f5 beta_slow;
                       // w0 (optional) frequency factors [n_rot/2]: frequency i is divided by w0[i] (Llama 3)
  AGLM_OP_ATTENTION,   // stores in1 (k) and in2 (v) in KV cache slot i0 at the tokens' positions, then
                       // out = causal attention of in0 (q) over the cache; i1 n_head, i2 n_head_kv, i3 head_dim,
                       // i4 sliding window (0 = none; else a token at position p sees positions > p - window);
                       // i5 non-causal (1: every token of the batch sees every position up to the batch's last;
                       // the batch must start the context, see cpu_session_decode); f0 scale
  AGLM_OP_OUTPUT_ROWS, // out (output rows) = the rows of in0 whose logits were asked for
  AGLM_OP_LAYER_NORM,  // out = (in0 - mean) / sqrt(variance + eps) * w0 (+ w1, optional bias); f0 = eps
  AGLM_OP_GELU,        // out = gelu(in0), ggml's tanh form: x / (1 + exp(-2 sqrt(2/pi) x (1 + 0.044715 x^2)))
  AGLM_OP_EMBED_POSITIONS, // out[t] = row (position of token t) of weight w0 (any type), as f32 (learned absolute
                           // position embeddings); positions must be < w0's rows
  AGLM_OP_ADD_VECTOR,  // out[t] = in0[t] + w0 (a vector of `width` elements, e.g. BERT's token-type row)
  AGLM_OP_COUNT
};

const char *aglm_op_name(aglm_op_kind k);
bool aglm_op_from_name(const std::string &name, aglm_op_kind *out);

enum aglm_rows { AGLM_ROWS_TOKENS = 0, AGLM_ROWS_OUTPUTS = 1 };

// Integer and float parameters an op carries at most (op.i, op.f).
constexpr int AGLM_OP_INTS = 8;
constexpr int AGLM_OP_FLOATS = 8;

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
