// A model's weights as the core hands them to a backend: each one bounds- and shape-checked against the mapped file,
// converted once to the type the precision planner chose (into an owned 64-byte aligned copy, the mapped pages then
// released), and released on the backend's word when it made a copy of its own.
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned.h"
#include "base/mapped-file.h"
#include "core/graph.h"

struct aglm_model_weights {
  const aglm_mapped_file *file = nullptr;
  std::vector<const void *> data;         // per weight: in the mapping, or in owned[i]
  std::vector<int> type;                  // per weight: its type now (after conversion)
  std::vector<uint64_t> nbytes;
  std::vector<aglm_aligned_buffer> owned; // per weight: the converted copy (empty when it is read in place)

  // The backend no longer reads weight w: unmap its pages or free its converted copy.
  void release(int w);
  uint64_t owned_bytes() const;
};

// Checks every weight against the file (known type, whole blocks, byte size = shape, inside the file) and converts
// those with a `to` type, rows split over n_threads.
aglm_result aglm_weights_bind(const aglm_graph &g, const aglm_mapped_file &file, int n_threads, aglm_model_weights *out);
