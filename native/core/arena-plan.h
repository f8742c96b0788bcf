// Plans where each IR value lives in a context's activation arena, reusing memory once a value is dead.
#pragma once

#include <cstdint>
#include <vector>

#include "core/graph.h"

struct aglm_arena_plan {
  std::vector<uint64_t> offset; // byte offset of each value in the arena (64-byte aligned)
  uint64_t size = 0;            // arena bytes needed
};

// max_rows: the most token rows a batch may have (output rows never exceed it).
aglm_arena_plan aglm_plan_arena(const aglm_graph &g, int64_t max_rows);
