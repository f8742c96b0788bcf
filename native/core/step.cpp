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
    if (part.out_mode < 0 || part.out_mode > 3) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "unknown output mode");
    const int64_t count = (int64_t)part.tokens.size();
    if (part.out_mode == 3 && (a.merge < 1 || count % a.merge != 0))
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "every-merge-th outputs need a model that merges rows and a multiple of its merge size of tokens");
    if (a.merge > 1 && part.out_mode != 0 && part.out_mode != 3)
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "a model that merges rows gives outputs every merge-th token only");
    // Input rows, rope positions, grid coordinates.
    if (!part.embd_row.empty()) {
      if (a.input_width == 0) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "this model takes no input rows");
      if ((int64_t)part.embd_row.size() != count) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "one input-row index per token");
      if (part.embd.size() % (size_t)a.input_width != 0)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "input rows must be " + std::to_string(a.input_width) + " floats each");
      const int64_t n_rows = (int64_t)(part.embd.size() / (size_t)a.input_width);
      for (int32_t r : part.embd_row)
        if (r < -1 || r >= n_rows) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "an input-row index outside the part's rows");
    }
    if (a.has_input_op)
      for (int64_t t = 0; t < count; t++)
        if (part.embd_row.empty() || part.embd_row[(size_t)t] < 0)
          return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "this model reads input rows: every token needs one");
    if (!part.rope_pos.empty() && (int64_t)part.rope_pos.size() != 4 * count)
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "four rope positions per token");
    if (!part.grid_pos.empty() && (int64_t)part.grid_pos.size() != 2 * count)
      return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "two grid coordinates per token");
    if (part.out_mode != 0) {
      if (part.out_kind != AGLM_OUT_LOGITS && part.out_kind != AGLM_OUT_HIDDEN)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "unknown output kind");
      if (lim.out_width[part.out_kind] == 0)
        return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, part.out_kind == AGLM_OUT_HIDDEN ? "this model has no hidden-state output" : "this model has no logits");
      if (!part.out) return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "an output without a buffer");
    }
    if (a.has_embed)
      for (int64_t t = 0; t < count; t++) {
        if (!part.embd_row.empty() && part.embd_row[(size_t)t] >= 0) continue;
        const uint32_t id = part.tokens[(size_t)t];
        if ((int64_t)id >= a.vocab_rows)
          return part_error(out, ip, AGLM_ERR_INVALID_ARGUMENT, "token id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(a.vocab_rows) + ")");
      }
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
  out->embd.clear(), out->embd_row.clear(), out->rope_pos.clear(), out->grid_pos.clear();
  bool any_embd = false, any_rope = false, any_grid = false;
  for (const aglm_step_part &part : out->parts) {
    any_embd |= !part.embd_row.empty();
    any_rope |= !part.rope_pos.empty();
    any_grid |= !part.grid_pos.empty();
  }
  std::vector<int32_t> rope_tok; // token-major (t, h, w, e) until transposed into planes below
  std::vector<float> grid_tok;
  for (const aglm_step_part &part : out->parts) {
    const int64_t count0 = (int64_t)part.tokens.size();
    if (any_embd) {
      const int32_t base = (int32_t)(out->embd.size() / (size_t)std::max<int64_t>(1, a.input_width));
      for (int64_t i = 0; i < count0; i++)
        out->embd_row.push_back(part.embd_row.empty() || part.embd_row[(size_t)i] < 0 ? -1 : base + part.embd_row[(size_t)i]);
      out->embd.insert(out->embd.end(), part.embd.begin(), part.embd.end());
    }
    const int64_t start0 = (int64_t)pool.seq_cells(part.seq)->size();
    if (any_rope) {
      if (!part.rope_pos.empty()) rope_tok.insert(rope_tok.end(), part.rope_pos.begin(), part.rope_pos.end());
      else
        for (int64_t i = 0; i < count0; i++) {
          const int32_t p = (int32_t)(start0 + i);
          rope_tok.insert(rope_tok.end(), {p, p, p, 0});
        }
    }
    if (any_grid) {
      if (!part.grid_pos.empty()) grid_tok.insert(grid_tok.end(), part.grid_pos.begin(), part.grid_pos.end());
      else grid_tok.insert(grid_tok.end(), (size_t)(2 * count0), 0.0f);
    }
  }
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
      // A token that takes an input row has no table row to gather: it reads row 0, then the input row replaces it.
      out->tokens.push_back(!part.embd_row.empty() && part.embd_row[(size_t)i] >= 0 ? 0u : part.tokens[(size_t)i]);
      out->pos.push_back((int32_t)(start + i));
      out->cell.push_back(cells[(size_t)(start + i)]);
      out->kv_start.push_back(list);
      out->seq_len.push_back((int32_t)cells.size());
      const bool wanted = part.out_mode == 2 || (part.out_mode == 1 && i == count - 1) || (part.out_mode == 3 && i % a.merge == 0);
      if (!wanted) continue;
      out->out_rows.push_back(row);
      out->out_kind.push_back(part.out_kind);
      const int64_t k = part.out_mode == 2 ? i : part.out_mode == 3 ? i / a.merge : 0;
      out->out.push_back(part.out + (part.out_row0 + k) * width);
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
  const size_t n_tok = out->tokens.size();
  if (any_embd) {
    b.embd = out->embd.data();
    b.embd_width = (int32_t)a.input_width;
    b.embd_row = out->embd_row.data();
  }
  if (any_rope) {
    out->rope_pos.resize(4 * n_tok);
    for (size_t t = 0; t < n_tok; t++)
      for (int k = 0; k < 4; k++) out->rope_pos[k * n_tok + t] = rope_tok[4 * t + k];
    b.rope_pos = out->rope_pos.data();
  }
  if (any_grid) {
    out->grid_pos.resize(2 * n_tok);
    for (size_t t = 0; t < n_tok; t++)
      for (int k = 0; k < 2; k++) out->grid_pos[k * n_tok + t] = grid_tok[2 * t + k];
    b.grid_pos = out->grid_pos.data();
  }
  return aglm_result::ok();
}

void aglm_step_rollback(aglm_kv_pool &pool, const aglm_step &s) {
  for (size_t p = s.parts.size(); p-- > 0;)
    if (pool.seq_exists(s.parts[p].seq)) pool.seq_truncate(s.parts[p].seq, s.start[p]);
}
