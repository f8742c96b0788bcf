// KV cell bookkeeping: allocation, sharing and release of cells per sequence.
#include "core/kv-pool.h"

void aglm_kv_pool::init(int64_t n_cells, int32_t max_seqs) {
  refs_.assign((size_t)n_cells, 0);
  free_.resize((size_t)n_cells);
  for (int64_t i = 0; i < n_cells; i++) free_[(size_t)i] = (int32_t)(n_cells - 1 - i);
  seqs_.clear();
  max_seqs_ = max_seqs < 1 ? 1 : max_seqs;
}

aglm_result aglm_kv_pool::seq_create(int32_t *id) {
  if ((int32_t)seqs_.size() >= max_seqs_)
    return aglm_result::fail(AGLM_ERR_NO_SEQUENCE_LEFT, "the context's " + std::to_string(max_seqs_) +
                                                            " sequences are all in use; dispose one or create the context with more `sequences`");
  *id = next_id_++;
  seqs_[*id];
  return aglm_result::ok();
}

aglm_result aglm_kv_pool::seq_fork(int32_t src, int64_t n, int32_t *id) {
  auto it = seqs_.find(src);
  if (it == seqs_.end()) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "no such sequence");
  if (n < 0 || n > (int64_t)it->second.size()) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "fork length out of range");
  aglm_result r = seq_create(id);
  if (!r.is_ok()) return r;
  const std::vector<int32_t> &from = seqs_[src];
  std::vector<int32_t> &to = seqs_[*id];
  to.assign(from.begin(), from.begin() + n);
  for (int32_t c : to) refs_[c]++;
  return aglm_result::ok();
}

void aglm_kv_pool::drop(int32_t cell) {
  if (--refs_[cell] == 0) free_.push_back(cell);
}

aglm_result aglm_kv_pool::seq_truncate(int32_t id, int64_t n) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "no such sequence");
  std::vector<int32_t> &cells = it->second;
  if (n < 0 || n > (int64_t)cells.size()) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "truncation length out of range");
  while ((int64_t)cells.size() > n) {
    drop(cells.back());
    cells.pop_back();
  }
  return aglm_result::ok();
}

void aglm_kv_pool::seq_free(int32_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  for (auto c = it->second.rbegin(); c != it->second.rend(); ++c) drop(*c);
  seqs_.erase(it);
}

const std::vector<int32_t> *aglm_kv_pool::seq_cells(int32_t id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : &it->second;
}

bool aglm_kv_pool::seq_append(int32_t id, int64_t n) {
  auto it = seqs_.find(id);
  if (it == seqs_.end() || n > (int64_t)free_.size()) return false;
  for (int64_t i = 0; i < n; i++) {
    const int32_t c = free_.back();
    free_.pop_back();
    refs_[c] = 1;
    it->second.push_back(c);
  }
  return true;
}
