// A read-only memory mapping of a whole model file (weights are read in place, never copied whole).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

// Tells the OS that the whole pages inside [base + offset, base + offset + size) of a mapping will not be read
// again (their data was converted into an owned copy), so they stop counting against the process's memory.
void aglm_mapped_release(const uint8_t *base, uint64_t offset, uint64_t size);

class aglm_mapped_file {
 public:
  aglm_mapped_file() = default;
  ~aglm_mapped_file();
  aglm_mapped_file(const aglm_mapped_file &) = delete;
  aglm_mapped_file &operator=(const aglm_mapped_file &) = delete;

  aglm_result open(const std::string &path);
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
#ifdef _WIN32
  void *file_ = nullptr;
  void *mapping_ = nullptr;
#endif
};
