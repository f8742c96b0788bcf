// Step building: validation, cell allocation and the batch arrays; rollback.
#include "core/step.h"

#include <algorithm>
#include <string>

namespace {

aglm_result part_error(aglm_step *out, int part, aglm_status s, const std::string &msg) {
  out->failed_part = part;
  return aglm_result::fail(s, msg);
}

} // namespace

aglm_result aglm_step_build(aglm_kv_pool &pool, const aglm_graph_analysis &a, const aglm_step_limits &lim,
                            std::vector<aglm_step_part> parts, aglm_step *out) {
  out->failed_part = -1;
  int64_t n = 0, new_cells = 0;
  std::vector<int32_t> seen;
  for (size_t p = 0; p < parts.size(); p++) {
    const aglm_step_part &part = parts[p];
    const int ip = (int)p;
    const std::vector<int32_t> *cells = pool.seq_cells(part.seq);
    if (!cells) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "no such sequence");
    if (std::find(seen.begin(), seen.end(), part.seq) != seen.end())
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "a sequence appears twice in one step");
    seen.push_back(part.seq);
    if (part.tokens.empty()) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "a part without tokens");
    if (part.out_mode < 0 || part.out_mode > 2) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "unknown output mode");
    if (part.out_mode != 0) {
      if (part.out_kind != AGLM_OUT_LOGITS && part.out_kind != AGLM_OUT_HIDDEN)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "unknown output kind");
      if (lim.out_width[part.out_kind] == 0)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, part.out_kind == AGLM_OUT_HIDDEN ? "this model has no hidden-state output" : "this model has no logits");
      if (!part.out) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "an output without a buffer");
    }
    for (uint32_t t : part.tokens)
      if ((int64_t)t >= a.vocab_rows)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(a.vocab_rows) + ")");
    const int64_t start = (int64_t)cells->size(), end = start + (int64_t)part.tokens.size();
    if (a.non_causal && start != 0)
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT,
                        "a model with non-causal attention evaluates each sequence in one batch from an empty sequence (the batch size must hold all its tokens)");
    if (a.position_rows > 0 && end > a.position_rows)
      return part_error(out, ip, AGLM_ERR_CONTEXT_FULL, "positions up to " + std::to_string(end) + " exceed the model's " +
                                                            std::to_string(a.position_rows) + " position embeddings");
    if (end > pool.n_cells())
      return part_error(out, ip, AGLM_ERR_CONTEXT_FULL, "the sequence would hold " + std::to_string(end) + " positions; the context has " +
                                                            std::to_string(pool.n_cells()) + " cells");
    new_cells += (int64_t)part.tokens.size();
    if (new_cells > pool.cells_free())
      return part_error(out, ip, AGLM_ERR_CONTEXT_FULL, "the context's KV cells are all in use (" + std::to_string(pool.cells_used()) + " of " +
                                                            std::to_string(pool.n_cells()) + "); " + std::to_string(part.tokens.size()) + " more do not fit");
    n += (int64_t)part.tokens.size();
  }
  if (n < 1 || n > lim.n_batch)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "a step carries 1 to " + std::to_string(lim.n_batch) + " tokens, not " + std::to_string(n));

  // Allocate, then lay out the batch.
  out->parts = std::move(parts);
  out->start.clear();
  out->tokens.clear(), out->pos.clear(), out->cell.clear(), out->kv_start.clear(), out->seq_len.clear();
  out->kv_cells.clear(), out->out_rows.clear(), out->out_kind.clear(), out->out.clear();
  for (const aglm_step_part &part : out->parts) {
    const int64_t start = (int64_t)pool.seq_cells(part.seq)->size();
    out->start.push_back(start);
    pool.seq_append(part.seq, (int64_t)part.tokens.size()); // checked above: enough cells are free
    const std::vector<int32_t> &cells = *pool.seq_cells(part.seq);
    const int32_t list = (int32_t)out->kv_cells.size();
    out->kv_cells.insert(out->kv_cells.end(), cells.begin(), cells.end());
    const int64_t count = (int64_t)part.tokens.size();
    const int64_t width = part.out_mode ? lim.out_width[part.out_kind] : 0;
    for (int64_t i = 0; i < count; i++) {
      const int32_t row = (int32_t)out->tokens.size();
      out->tokens.push_back(part.tokens[(size_t)i]);
      out->pos.push_back((int32_t)(start + i));
      out->cell.push_back(cells[(size_t)(start + i)]);
      out->kv_start.push_back(list);
      out->seq_len.push_back((int32_t)cells.size());
      const bool wanted = part.out_mode == 2 || (part.out_mode == 1 && i == count - 1);
      if (!wanted) continue;
      out->out_rows.push_back(row);
      out->out_kind.push_back(part.out_kind);
      out->out.push_back(part.out + (part.out_row0 + (part.out_mode == 2 ? i : 0)) * width);
    }
  }
  aglm_hal_batch &b = out->batch;
  b = aglm_hal_batch{};
  b.n_tokens = (int32_t)out->tokens.size();
  b.tokens = out->tokens.data();
  b.pos = out->pos.data();
  b.cell = out->cell.data();
  b.kv_start = out->kv_start.data();
  b.seq_len = out->seq_len.data();
  b.kv_cells = out->kv_cells.data();
  b.n_out = (int32_t)out->out_rows.size();
  b.out_rows = out->out_rows.data();
  b.out_kind = out->out_kind.data();
  b.out = out->out.data();
  return aglm_result::ok();
}

void aglm_step_rollback(aglm_kv_pool &pool, const aglm_step &s) {
  for (size_t p = s.parts.size(); p-- > 0;)
    if (pool.seq_exists(s.parts[p].seq)) pool.seq_truncate(s.parts[p].seq, s.start[p]);
}
