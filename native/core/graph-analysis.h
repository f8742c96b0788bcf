// What the core learns from a validated graph once, for every backend: how each weight is read, the distinct rope
// configurations, which ops the hidden-state output depends on, and the facts batch validation needs. It also builds
// the plain-C view of the graph (aglm_hal_graph) that crosses the HAL.
#pragma once

#include <cstdint>
#include <vector>

#include "core/graph.h"
#include "open-autoglm/backend.h"

struct aglm_graph_analysis {
  std::vector<uint32_t> weight_uses; // per weight: AGLM_WEIGHT_* bits
  std::vector<aglm_hal_rope> ropes;  // distinct rope configurations
  std::vector<int32_t> op_rope;      // per op: index into ropes, or -1
  std::vector<uint32_t> op_flags;    // per op: AGLM_OPF_* bits
  bool non_causal = false;           // some attention op sees every position of its sequence
  int64_t position_rows = 0;         // rows of the smallest position-embedding table (0: none): positions must be below
  int64_t vocab_rows = 0;            // rows of the smallest token-embedding table: token ids must be below
  bool has_embed = false;            // some op reads token ids (embed)
  int64_t input_width = 0;           // width of input rows (input ops, or embed ops fed input rows); 0: no input op
  bool has_input_op = false;         // some op reads input rows only (every token must bring one)
  bool multi_rope = false;           // some rope op reads 4-plane positions (modes 8, 24)
  bool has_interp = false;           // some op reads grid_pos
  int32_t merge = 0;                 // rows a merge_rows op merges (0: none); outputs then come every merge-th token
};

aglm_graph_analysis aglm_graph_analyse(const aglm_graph &g);

// The plain-C graph a backend receives (aglm_hal_graph), pointing into this object's arrays: keep it alive while the
// view is used. Weight data pointers and types come from `data` / `types` (the bound, converted weights).
struct aglm_hal_graph_view {
  std::vector<aglm_hal_weight> weights;
  std::vector<aglm_hal_value> values;
  std::vector<aglm_hal_op> ops;
  std::vector<aglm_hal_cache_slot> cache;
  std::vector<aglm_hal_rope> ropes;
  aglm_hal_graph graph{};
};

void aglm_graph_view_build(const aglm_graph &g, const aglm_graph_analysis &a, const std::vector<const void *> &data,
                           const std::vector<int> &types, const std::vector<uint64_t> &nbytes, aglm_hal_graph_view *out);
