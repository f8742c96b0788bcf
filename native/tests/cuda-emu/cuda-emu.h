// A host build of the CUDA backend's kernels (native/backends/cuda/kernels/aglm-cuda.cu) for the tests, which run
// where no GPU exists: force-included before the kernels, this header gives the CUDA language pieces they use a
// host meaning. Every CUDA thread of a block is a fiber (emu-driver.cpp) run on one OS thread:
//   - __shared__ variables are function statics (one block runs at a time, launches are serialised);
//   - threadIdx / blockIdx / blockDim / gridDim are globals the scheduler sets before it resumes a fiber;
//   - __syncthreads waits for every live thread of the block, a warp shuffle exchanges values through a per-warp slot
//     between two waits for the live threads of the warp (so a shuffle after part of a warp has left deadlocks,
//     which the scheduler reports, as on a GPU it is undefined);
//   - wmma operations are done whole by every lane on its own copy of the 16 x 16 fragment (f16 inputs, f32 sums), so
//     the operands (pointers, leading dimensions, layouts) are read exactly as the GPU reads them.
// It checks indexing, launch shapes, parameter passing and the host code around the kernels. Data races show only as
// results that change with the order the threads run in (FAKE_CUDA_ORDER=reverse: the tests run both orders); timing
// and the GPU's own arithmetic units it cannot show.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

// The fiber scheduler (emu-driver.cpp).
void aglm_emu_syncthreads();
void aglm_emu_warp_wait();
unsigned aglm_emu_lane();
uint32_t *aglm_emu_warp_slots(); // 32 words for the current warp
[[noreturn]] void aglm_emu_fail(const char *what); // a misuse the GPU would not forgive: said on stderr, then abort

inline void __syncthreads() { aglm_emu_syncthreads(); }

template <typename T> inline T aglm_emu_shfl(T v, unsigned src_lane) {
  static_assert(sizeof(T) == 4, "32-bit shuffles only");
  uint32_t *slot = aglm_emu_warp_slots();
  memcpy(&slot[aglm_emu_lane()], &v, 4);
  aglm_emu_warp_wait();
  T r;
  memcpy(&r, &slot[src_lane % 32u], 4);
  aglm_emu_warp_wait(); // every lane has read before the slots are written again
  return r;
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) { return aglm_emu_shfl(v, aglm_emu_lane() ^ (unsigned)lane_mask); }
template <typename T> inline T __shfl_sync(unsigned, T v, int src_lane, int = 32) { return aglm_emu_shfl(v, (unsigned)src_lane); }

inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return c;
}
inline float __uint_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}
using std::max;
using std::min;

// IEEE half: bits, rounded to nearest even from float.
struct half {
  uint16_t bits;
};
inline float aglm_emu_h2f(half h) {
  const uint32_t s = (uint32_t)(h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1fu, m = h.bits & 0x3ffu;
  if (e == 0) {
    const float v = ldexpf((float)m, -24);
    return s ? -v : v;
  }
  if (e == 31) return __uint_as_float(s | 0x7f800000u | (m << 13));
  return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
}
inline half __float2half(float f) {
  const uint32_t u = __float_as_uint(f), s = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return {(uint16_t)(s | 0x7e00u)};         // NaN
  if (a >= 0x477ff000u) return {(uint16_t)(s | 0x7c00u)};        // rounds to inf
  if (a < 0x38800000u) {                                           // subnormal or zero: multiples of 2^-24
    const float v = fabsf(f) * 16777216.0f;                        // exact: a power-of-two scale
    return {(uint16_t)(s | (uint32_t)nearbyintf(v))};              // round to nearest even (default mode)
  }
  const uint32_t e = (a >> 23) - 112u, m = a & 0x7fffffu;
  uint32_t h = (e << 10) | (m >> 13);
  const uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return {(uint16_t)(s | h)};
}

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

// The whole 16 x 16 operand, element (row, column) at [row * 16 + column].
template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "16 x 16 x 16 only");
  float x[256];
};

template <typename Use, typename T, typename Layout> inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout> &f, float v) {
  for (float &e : f.x) e = v;
}
// A (row-major) and B (col-major) operands from half memory with a leading dimension in elements. Every lane reads
// the same tile; the GPU needs the pointer 256-bit aligned and ldm a multiple of 8, checked here.
template <typename Use, typename Layout> inline void load_matrix_sync(fragment<Use, 16, 16, 16, half, Layout> &f, const half *p, unsigned ldm) {
  if (((uintptr_t)p % 32) != 0 || ldm % 8 != 0) aglm_emu_fail("wmma::load_matrix_sync: a pointer not 32-byte aligned or ldm not a multiple of 8");
  const bool col = std::is_same<Layout, col_major>::value;
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.x[r * 16 + c] = aglm_emu_h2f(p[col ? c * ldm + r : r * ldm + c]);
  aglm_emu_warp_wait(); // warp-collective: the lanes meet, as they do on a GPU
}
template <typename TA, typename LA, typename TB, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, TA, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, TB, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
  float out[256];
  for (int r = 0; r < 16; r++)
    for (int col = 0; col < 16; col++) {
      float s = c.x[r * 16 + col];
      for (int k = 0; k < 16; k++) s += a.x[r * 16 + k] * b.x[k * 16 + col]; // exact products of f16 values
      out[r * 16 + col] = s;
    }
  memcpy(d.x, out, sizeof out);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t layout) {
  if (((uintptr_t)p % 32) != 0 || ldm % 4 != 0) aglm_emu_fail("wmma::store_matrix_sync: a pointer not 32-byte aligned or ldm not a multiple of 4");
  aglm_emu_warp_wait(); // every lane has finished reading what the store may overwrite
  if (aglm_emu_lane() == 0)
    for (int r = 0; r < 16; r++)
      for (int c = 0; c < 16; c++) p[layout == mem_col_major ? c * ldm + r : r * ldm + c] = f.x[r * 16 + c];
  aglm_emu_warp_wait();
}
} // namespace wmma
} // namespace nvcuda
