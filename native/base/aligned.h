// 64-byte aligned host allocations with a single owner (aglm_aligned_buffer), used for arenas and repacked weights.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

constexpr size_t AGLM_ALIGN = 64;

inline size_t aglm_align_up(size_t n, size_t a = AGLM_ALIGN) { return (n + a - 1) / a * a; }

struct aglm_aligned_free {
  void operator()(void *p) const { std::free(p); }
};

// Owns `size` bytes aligned to 64; null when size is 0 or the allocation failed (callers check).
class aglm_aligned_buffer {
 public:
  aglm_aligned_buffer() = default;
  bool allocate(size_t size) {
    size_ = 0;
    ptr_.reset();
    if (size == 0) return true;
    void *p = std::aligned_alloc(AGLM_ALIGN, aglm_align_up(size));
    if (!p) return false;
    std::memset(p, 0, aglm_align_up(size));
    ptr_.reset(p);
    size_ = size;
    return true;
  }
  void *data() const { return ptr_.get(); }
  template <typename T> T *as() const { return static_cast<T *>(ptr_.get()); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<void, aglm_aligned_free> ptr_;
  size_t size_ = 0;
};
