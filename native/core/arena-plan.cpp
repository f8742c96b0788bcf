// Arena planning: values are placed in definition order at the lowest offset that does not overlap any value
// still alive (defined before and used at or after this op). The graph output (and hidden output) stay alive to the end.
#include "core/arena-plan.h"

#include <algorithm>

#include "base/aligned.h"

aglm_arena_plan aglm_plan_arena(const aglm_graph &g, int64_t max_rows) {
  const size_t nv = g.values.size();
  std::vector<int64_t> def(nv, -1), last(nv, -1);
  for (size_t i = 0; i < g.ops.size(); i++) {
    const aglm_op &op = g.ops[i];
    def[op.out] = (int64_t)i;
    last[op.out] = std::max<int64_t>(last[op.out], (int64_t)i);
    for (int in : op.in)
      if (in >= 0) last[in] = std::max<int64_t>(last[in], (int64_t)i);
  }
  if (g.output >= 0) last[g.output] = (int64_t)g.ops.size();
  if (g.hidden >= 0) last[g.hidden] = (int64_t)g.ops.size();

  struct live { uint64_t begin, end; int64_t last; };
  std::vector<live> alive;
  aglm_arena_plan plan;
  plan.offset.assign(nv, 0);
  for (size_t i = 0; i < g.ops.size(); i++) {
    int v = g.ops[i].out;
    // Values whose last use is before this op are dead; inputs of this op (last >= i) stay alive.
    alive.erase(std::remove_if(alive.begin(), alive.end(), [&](const live &l) { return l.last < (int64_t)i; }),
                alive.end());
    uint64_t bytes = aglm_align_up((uint64_t)max_rows * (uint64_t)g.values[v].width * sizeof(float));
    std::sort(alive.begin(), alive.end(), [](const live &a, const live &b) { return a.begin < b.begin; });
    uint64_t at = 0;
    for (const live &l : alive) {
      if (l.begin >= at + bytes) break;
      at = std::max(at, l.end);
    }
    plan.offset[v] = at;
    plan.size = std::max(plan.size, at + bytes);
    alive.push_back({at, at + bytes, last[v]});
  }
  return plan;
}
