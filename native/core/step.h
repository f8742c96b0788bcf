// A step: the tokens of several sequences evaluated together in one forward pass. The core validates the parts,
// gives every token a KV cell (appending to its sequence), and lays out the backend's batch (aglm_hal_batch); a step
// that fails is rolled back (each sequence shortened to its length before the step).
#pragma once

#include <cstdint>
#include <vector>

#include "core/graph-analysis.h"
#include "core/kv-pool.h"
#include "open-autoglm/backend.h"

// One sequence's share of a step.
struct aglm_step_part {
  int32_t seq = -1;
  std::vector<uint32_t> tokens;
  int out_mode = 0;       // 0: no output, 1: the last token's, 2: every token's, 3: every merge-th token's (0, m, 2m, ...)
  int out_kind = AGLM_OUT_LOGITS;
  float *out = nullptr;   // rows of the output width: row out_row0 gets the first output of this part
  int64_t out_row0 = 0;
  // (optional) Input rows: embd_row[i] >= 0 makes token i take row embd_row[i] of embd (rows of the model's input width).
  std::vector<float> embd;
  std::vector<int32_t> embd_row;
  std::vector<int32_t> rope_pos; // (optional) 4 per token (t, h, w, e), token after token
  std::vector<float> grid_pos;   // (optional) 2 per token (x, y)
};

struct aglm_step {
  std::vector<aglm_step_part> parts;
  std::vector<int64_t> start; // per part: its sequence's length before the step
  std::vector<uint32_t> tokens;
  std::vector<int32_t> pos, cell, kv_start, seq_len, kv_cells, out_rows, out_kind;
  std::vector<float> embd, grid_pos;     // rows of input; 2 planes of n_tokens
  std::vector<int32_t> embd_row, rope_pos; // per token; 4 planes of n_tokens
  std::vector<float *> out;
  aglm_hal_batch batch{};
  int failed_part = -1; // after a failed build: the part that could not be taken (-1: the step as a whole)
};

struct aglm_step_limits {
  int64_t n_batch;        // most tokens per step
  int64_t out_width[2];   // floats per output row: logits, hidden (0: that kind is unavailable)
};

// Rows of a merge_rows op must lie within the batch: with `merge` > 1 every wanted output row r needs rows r..r+merge-1
// of its own part (checked by aglm_step_build from the graph).

// Validates the parts and allocates their cells; on failure nothing is allocated and out->failed_part says which part.
aglm_result aglm_step_build(aglm_kv_pool &pool, const aglm_graph_analysis &a, const aglm_step_limits &lim,
                            std::vector<aglm_step_part> parts, aglm_step *out);
// Returns every sequence of the step that still exists to its length before the step.
void aglm_step_rollback(aglm_kv_pool &pool, const aglm_step &s);
