// What every CUDA kernel's shared arithmetic stands on: AGLM_HD (__host__ __device__ under nvcc, plain inline for the
// host compiler, so cuda-host-tests runs the same functions on the CPU), unaligned loads, half/bfloat16 conversion
// bit for bit as kernels/fp16.h, a portable dp4a, and the reduction order of a thread block written out so the host
// can reproduce it exactly.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h" // the GGUF block layouts (plain C structs, shared with the CPU kernels)

#if defined(__CUDACC__)
#define AGLM_HD __host__ __device__ __forceinline__
#else
#define AGLM_HD inline
#endif

// Threads of a warp, and of the thread blocks the row kernels (norms, mat-vec) use.
#define AGLM_CU_WARP 32
#define AGLM_CU_ROW_THREADS 256

AGLM_HD float aglm_cu_bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

AGLM_HD uint32_t aglm_cu_f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

// Block fields are only 2-byte aligned (Q4_0 is 18 bytes, Q6_K 210): 32-bit words are read as two halves, which the
// device can always do and which is what a misaligned int load would fault on.
AGLM_HD uint32_t aglm_cu_load_u32(const uint8_t *p) {
  const uint16_t *h = (const uint16_t *)(const void *)p;
  return (uint32_t)h[0] | (uint32_t)h[1] << 16;
}
AGLM_HD int aglm_cu_load_i32(const int8_t *p) { return (int)aglm_cu_load_u32((const uint8_t *)p); }

// IEEE half -> float, exact (kernels/fp16.h's aglm_fp16_to_fp32, written with the device's bit casts).
AGLM_HD float aglm_cu_h2f(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return aglm_cu_bits_f32(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return aglm_cu_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
  const float sub = (float)man * (1.0f / 16777216.0f);
  return sign ? -sub : sub;
}

// float -> IEEE half, round to nearest even (kernels/fp16.h's aglm_fp32_to_fp16 step for step, so activation scales
// written on the device are the bytes the CPU writes).
AGLM_HD uint16_t aglm_cu_f2h(float f) {
  const uint32_t x = aglm_cu_f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);
  if (ax < 0x38800000u) {
    if (ax < 0x33000000u) return (uint16_t)sign;
    const uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t h = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

AGLM_HD float aglm_cu_bf2f(uint16_t b) { return aglm_cu_bits_f32((uint32_t)b << 16); }

// Sum of the four signed byte products of a and b, plus c: the device's dp4a instruction (sm_61 and later), and its
// definition on the host.
AGLM_HD int aglm_cu_dp4a(int a, int b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(a, b, c);
#else
  for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return c;
#endif
}

// The reduction order of a warp's butterfly (__shfl_xor_sync with offsets 16, 8, 4, 2, 1): lane 0 ends with
// p[0..32) summed pairwise at those distances. The host runs this loop; the device the shuffles, same additions.
AGLM_HD float aglm_cu_tree_sum32(float *p) {
  for (int off = AGLM_CU_WARP / 2; off > 0; off /= 2)
    for (int i = 0; i < off; i++) p[i] += p[i + off];
  return p[0];
}

// A row kernel's block sum on the host: each of AGLM_CU_ROW_THREADS partials, warp by warp as above, then the warp
// sums (padded with zeros to a warp) the same way, as the device does through shared memory.
AGLM_HD float aglm_cu_block_sum_host(float *partials) {
  float warps[AGLM_CU_WARP] = {0};
  for (int w = 0; w < AGLM_CU_ROW_THREADS / AGLM_CU_WARP; w++) warps[w] = aglm_cu_tree_sum32(partials + w * AGLM_CU_WARP);
  return aglm_cu_tree_sum32(warps);
}
