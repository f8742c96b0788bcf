// A per-thread 64-byte aligned scratch buffer kept between calls (freed when the thread exits). Internal linkage:
// each amx object that includes this gets its own copy, built with its own flags.
#pragma once

#include <stdlib.h>

#ifndef AGLM_UNROLL
#if defined(__clang__)
#define AGLM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define AGLM_UNROLL _Pragma("GCC unroll 16")
#else
#define AGLM_UNROLL
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define AGLM_AMX_INLINE inline __attribute__((always_inline))
#else
#define AGLM_AMX_INLINE __forceinline
#endif

namespace {

struct aglm_amx_scratch {
  void *p = nullptr;
  size_t cap = 0;
  ~aglm_amx_scratch() {
#if defined(_MSC_VER)
    _aligned_free(p);
#else
    free(p);
#endif
  }
};

// Scratch slot `slot` (0 or 1) of this thread, at least `bytes` long; null when out of memory.
inline void *aglm_amx_scratch_get(int slot, size_t bytes) {
  static thread_local aglm_amx_scratch s[2];
  aglm_amx_scratch &b = s[slot];
  bytes = (bytes + 63) & ~(size_t)63;
  if (b.cap >= bytes) return b.p;
#if defined(_MSC_VER)
  _aligned_free(b.p);
  b.p = _aligned_malloc(bytes, 64);
#else
  free(b.p);
  b.p = aligned_alloc(64, bytes);
#endif
  b.cap = b.p ? bytes : 0;
  return b.p;
}

// Lanes [lo, hi) of 16 set, clamped to [0, 16].
inline unsigned aglm_amx_row_mask(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  if (hi <= lo) return 0;
  return ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}

} // namespace
