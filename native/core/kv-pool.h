// The KV cell pool of a context: n_cells cells shared by its sequences. A sequence is the list of cells holding its
// positions 0, 1, ... in order; a cell is free, or held by one or more sequences (a fork shares its source's prefix,
// reference counted). Sequences grow while cells are free; truncating or freeing a sequence returns the cells nobody
// else holds at once. Only the JS thread changes the pool (a running step reads a copy of what it needs).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/status.h"

class aglm_kv_pool {
 public:
  // n_cells cells; at most max_seqs sequences at once.
  void init(int64_t n_cells, int32_t max_seqs);

  aglm_result seq_create(int32_t *id);
  // A new sequence holding the first n cells of src (no copy: the cells are shared).
  aglm_result seq_fork(int32_t src, int64_t n, int32_t *id);
  // Keeps the first n positions of the sequence.
  aglm_result seq_truncate(int32_t id, int64_t n);
  void seq_free(int32_t id);
  bool seq_exists(int32_t id) const { return seqs_.count(id) != 0; }
  // The sequence's cells in position order (null if there is no such sequence).
  const std::vector<int32_t> *seq_cells(int32_t id) const;
  // Appends n new cells to the sequence; false (nothing taken) when fewer than n are free.
  bool seq_append(int32_t id, int64_t n);

  int64_t n_cells() const { return (int64_t)refs_.size(); }
  int64_t cells_free() const { return (int64_t)free_.size(); }
  int64_t cells_used() const { return n_cells() - cells_free(); }
  int32_t n_sequences() const { return (int32_t)seqs_.size(); }
  int32_t max_sequences() const { return max_seqs_; }

 private:
  void drop(int32_t cell);

  std::vector<uint32_t> refs_;  // per cell: how many sequences hold it
  std::vector<int32_t> free_;   // free cells, the next one to hand out last (lowest first at the start)
  std::unordered_map<int32_t, std::vector<int32_t>> seqs_;
  int32_t next_id_ = 0; // ids are never reused, so a stale id can never name a new sequence
  int32_t max_seqs_ = 1;
};
