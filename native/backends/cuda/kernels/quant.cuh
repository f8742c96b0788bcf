// The CUDA backend's weight arithmetic, shared by the device kernels and the host tests: dequantization of every
// weight type the CPU reads (GGUF block layouts, kernels/kernels.h), activations quantized to Q8_1 blocks, and the
// dp4a dot product of one 32-value chunk of a weight row with one Q8_1 block, per type.
//
// The unit is the chunk: 32 consecutive values of a row (one block of the 32-blocks, one sub-block of a K-quant's
// 256). Every weight type pairs with Q8_1 activations here (the CPU pairs the K-quants with Q8_K): one activation
// layout serves every kernel, and the integer sums per chunk are what dp4a computes. Dequantization repeats the
// reference's float operations in its order, so on the host it is bit-identical to aglm_dequantize_row.
#pragma once

#include "cuda-common.cuh"

#define AGLM_CU_CHUNK 32

// ---- dequantization: the 32 values of chunk c of a row ----------------------------------------------------------

template <int T> struct aglm_cu_type;
template <> struct aglm_cu_type<AGLM_TYPE_F32> { enum { chunk_bytes = 128, per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_F16> { enum { chunk_bytes = 64, per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_BF16> { enum { chunk_bytes = 64, per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q8_0> { typedef aglm_block_q8_0 block; enum { per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q4_0> { typedef aglm_block_q4_0 block; enum { per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q4_1> { typedef aglm_block_q4_1 block; enum { per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q5_0> { typedef aglm_block_q5_0 block; enum { per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q5_1> { typedef aglm_block_q5_1 block; enum { per_block = 32 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q4_K> { typedef aglm_block_q4_K block; enum { per_block = 256 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q5_K> { typedef aglm_block_q5_K block; enum { per_block = 256 }; };
template <> struct aglm_cu_type<AGLM_TYPE_Q6_K> { typedef aglm_block_q6_K block; enum { per_block = 256 }; };

// 4-bit (and 5th-bit) values j and j + 16 of a 32-block (Q4_0, Q4_1, Q5_0, Q5_1: byte j holds both nibbles).
AGLM_HD void aglm_cu_q_nibbles(const uint8_t *qs, uint32_t qh, int *q) {
  for (int j = 0; j < 16; j++) {
    q[j] = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
    q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
  }
}

// Sub-block j's 6-bit scale and min of a Q4_K/Q5_K super-block (aglm_ref::k4_scale_min).
AGLM_HD void aglm_cu_k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// Q6_K: chunk c (0..7) of a super-block is quarter c % 4 of half c / 4; its ql bytes, nibble and qh bit pair.
AGLM_HD int aglm_cu_q6_value(const aglm_block_q6_K *b, int c, int l) {
  const int h = c / 4, qd = c % 4;
  const uint8_t ql = b->ql[64 * h + (qd & 1) * 32 + l], qh = b->qh[32 * h + l];
  return ((ql >> (4 * (qd >> 1))) & 15) | ((qh >> (2 * qd)) & 3) << 4;
}

template <int T> AGLM_HD void aglm_cu_dequant_chunk(const void *row, int64_t c, float *y) {
  if constexpr (T == AGLM_TYPE_F32) {
    for (int j = 0; j < 32; j++) y[j] = ((const float *)row)[32 * c + j];
  } else if constexpr (T == AGLM_TYPE_F16) {
    for (int j = 0; j < 32; j++) y[j] = aglm_cu_h2f(((const uint16_t *)row)[32 * c + j]);
  } else if constexpr (T == AGLM_TYPE_BF16) {
    for (int j = 0; j < 32; j++) y[j] = aglm_cu_bf2f(((const uint16_t *)row)[32 * c + j]);
  } else if constexpr (T == AGLM_TYPE_Q8_0) {
    const aglm_block_q8_0 *b = (const aglm_block_q8_0 *)row + c;
    const float d = aglm_cu_h2f(b->d);
    for (int j = 0; j < 32; j++) y[j] = (float)b->qs[j] * d;
  } else if constexpr (T == AGLM_TYPE_Q4_0) {
    const aglm_block_q4_0 *b = (const aglm_block_q4_0 *)row + c;
    const float d = aglm_cu_h2f(b->d);
    for (int j = 0; j < 16; j++) {
      y[j] = (float)((b->qs[j] & 0x0f) - 8) * d;
      y[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
    }
  } else if constexpr (T == AGLM_TYPE_Q4_1 || T == AGLM_TYPE_Q5_1) {
    const typename aglm_cu_type<T>::block *b = (const typename aglm_cu_type<T>::block *)row + c;
    uint32_t qh = 0;
    if constexpr (T == AGLM_TYPE_Q5_1) qh = aglm_cu_load_u32(b->qh);
    const float d = aglm_cu_h2f(b->d), m = aglm_cu_h2f(b->m);
    int q[32];
    aglm_cu_q_nibbles(b->qs, qh, q);
    for (int j = 0; j < 32; j++) y[j] = q[j] * d + m;
  } else if constexpr (T == AGLM_TYPE_Q5_0) {
    const aglm_block_q5_0 *b = (const aglm_block_q5_0 *)row + c;
    const float d = aglm_cu_h2f(b->d);
    int q[32];
    aglm_cu_q_nibbles(b->qs, aglm_cu_load_u32(b->qh), q);
    for (int j = 0; j < 32; j++) y[j] = (q[j] - 16) * d;
  } else if constexpr (T == AGLM_TYPE_Q4_K || T == AGLM_TYPE_Q5_K) {
    const typename aglm_cu_type<T>::block *b = (const typename aglm_cu_type<T>::block *)row + c / 8;
    const int j = (int)(c % 8);
    int sc, m;
    aglm_cu_k4_scale_min(b->scales, j, &sc, &m);
    const float d1 = aglm_cu_h2f(b->d) * sc, m1 = aglm_cu_h2f(b->dmin) * m;
    const uint8_t *qs = b->qs + 32 * (j / 2);
    for (int l = 0; l < 32; l++) {
      int q = j % 2 ? qs[l] >> 4 : qs[l] & 15;
      if constexpr (T == AGLM_TYPE_Q5_K) q |= ((b->qh[l] >> j) & 1) << 4;
      y[l] = d1 * q - m1;
    }
  } else if constexpr (T == AGLM_TYPE_Q6_K) {
    const aglm_block_q6_K *b = (const aglm_block_q6_K *)row + c / 8;
    const int cc = (int)(c % 8);
    const float d = aglm_cu_h2f(b->d);
    for (int l = 0; l < 32; l++) y[l] = d * b->scales[2 * cc + l / 16] * (aglm_cu_q6_value(b, cc, l) - 32);
  }
}

// ---- activations: Q8_1 blocks (llama.cpp's rule, bit-identical to aglm_ref::quantize_row_q8_1) ------------------

// roundf clamped to [-127, 127], NaN -> 0.
AGLM_HD int aglm_cu_q8_round(float v) {
  const float r = roundf(v);
  if (r != r) return 0;
  return r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r;
}

// The block's scale from the largest magnitude (a max: the same in any order, so a warp's reduction gives it exactly).
AGLM_HD float aglm_cu_q8_scale(float amax) { return amax / 127.0f; }
AGLM_HD float aglm_cu_q8_inv(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }
// s = d * sum(q): d before its half rounding, as the reference.
AGLM_HD uint16_t aglm_cu_q8_1_sum(int qsum, float d) { return aglm_cu_f2h((float)qsum * d); }

// One block, serially (the host; the device spreads it over a warp with the same three functions).
AGLM_HD void aglm_cu_quantize_q8_1(const float *x, aglm_block_q8_1 *y) {
  float amax = 0.0f;
  for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
  const float d = aglm_cu_q8_scale(amax), id = aglm_cu_q8_inv(d);
  int sum = 0;
  for (int j = 0; j < 32; j++) {
    y->qs[j] = (int8_t)aglm_cu_q8_round(x[j] * id);
    sum += y->qs[j];
  }
  y->d = aglm_cu_f2h(d);
  y->s = aglm_cu_q8_1_sum(sum, d);
}

// ---- dp4a dot products: chunk c of a weight row . the chunk's Q8_1 block ---------------------------------------

// Bit 4 of each byte of a word from 4 consecutive bits (b0 -> byte 0 ...): the 5th bit of four 5-bit values.
AGLM_HD int aglm_cu_bits_to_bytes4(uint32_t bits) {
  return (int)(((bits & 1u) << 4) | ((bits & 2u) << 11) | ((bits & 4u) << 18) | ((bits & 8u) << 25));
}

// Integer sums of a 32-block of nibbles (and 5th bits) against x: sum q*x and sum x.
AGLM_HD void aglm_cu_isum_nibbles(const uint8_t *qs, uint32_t qh, const int8_t *x, int *qx, int *sx) {
  int s = 0, t = 0;
  for (int i = 0; i < 4; i++) {
    const uint32_t w = aglm_cu_load_u32(qs + 4 * i);
    const int lo = (int)(w & 0x0f0f0f0fu) | aglm_cu_bits_to_bytes4((qh >> (4 * i)) & 15u);
    const int hi = (int)((w >> 4) & 0x0f0f0f0fu) | aglm_cu_bits_to_bytes4((qh >> (16 + 4 * i)) & 15u);
    const int xl = aglm_cu_load_i32(x + 4 * i), xh = aglm_cu_load_i32(x + 16 + 4 * i);
    s = aglm_cu_dp4a(lo, xl, s);
    s = aglm_cu_dp4a(hi, xh, s);
    t = aglm_cu_dp4a(0x01010101, xl, t);
    t = aglm_cu_dp4a(0x01010101, xh, t);
  }
  *qx = s;
  *sx = t;
}

// Float weights against a Q8_1 block would lose the activations' precision: F32/F16/BF16 rows take f32 activations
// (aglm_cu_dot_chunk_f below); this covers the quantized types.
template <int T> AGLM_HD float aglm_cu_dot_chunk_q(const void *row, int64_t c, const aglm_block_q8_1 *x) {
  const float dx = aglm_cu_h2f(x->d);
  if constexpr (T == AGLM_TYPE_Q8_0) {
    const aglm_block_q8_0 *b = (const aglm_block_q8_0 *)row + c;
    int s = 0;
    for (int i = 0; i < 8; i++) s = aglm_cu_dp4a(aglm_cu_load_i32(b->qs + 4 * i), aglm_cu_load_i32(x->qs + 4 * i), s);
    return (float)s * (aglm_cu_h2f(b->d) * dx);
  } else if constexpr (T == AGLM_TYPE_Q4_0 || T == AGLM_TYPE_Q5_0) {
    const typename aglm_cu_type<T>::block *b = (const typename aglm_cu_type<T>::block *)row + c;
    uint32_t qh = 0;
    if constexpr (T == AGLM_TYPE_Q5_0) qh = aglm_cu_load_u32(b->qh);
    int qx, sx;
    aglm_cu_isum_nibbles(b->qs, qh, x->qs, &qx, &sx);
    const int offset = T == AGLM_TYPE_Q4_0 ? 8 : 16; // value = (q - offset) * d
    return (float)(qx - offset * sx) * (aglm_cu_h2f(b->d) * dx);
  } else if constexpr (T == AGLM_TYPE_Q4_1 || T == AGLM_TYPE_Q5_1) {
    const typename aglm_cu_type<T>::block *b = (const typename aglm_cu_type<T>::block *)row + c;
    uint32_t qh = 0;
    if constexpr (T == AGLM_TYPE_Q5_1) qh = aglm_cu_load_u32(b->qh);
    int qx, sx;
    aglm_cu_isum_nibbles(b->qs, qh, x->qs, &qx, &sx);
    // value = q d + m: sum = d dx sum(q x) + m (dx sum x), the last factor being the block's s (the reference's form)
    return (aglm_cu_h2f(b->d) * dx) * (float)qx + aglm_cu_h2f(b->m) * aglm_cu_h2f(x->s);
  } else if constexpr (T == AGLM_TYPE_Q4_K || T == AGLM_TYPE_Q5_K) {
    const typename aglm_cu_type<T>::block *b = (const typename aglm_cu_type<T>::block *)row + c / 8;
    const int j = (int)(c % 8);
    int sc, m;
    aglm_cu_k4_scale_min(b->scales, j, &sc, &m);
    const uint8_t *qs = b->qs + 32 * (j / 2);
    int s = 0, t = 0;
    for (int i = 0; i < 8; i++) {
      const uint32_t w = aglm_cu_load_u32(qs + 4 * i);
      int q = (int)((j % 2 ? w >> 4 : w) & 0x0f0f0f0fu);
      if constexpr (T == AGLM_TYPE_Q5_K) q |= (int)(((aglm_cu_load_u32(b->qh + 4 * i) >> j) & 0x01010101u) << 4);
      const int xi = aglm_cu_load_i32(x->qs + 4 * i);
      s = aglm_cu_dp4a(q, xi, s);
      t = aglm_cu_dp4a(0x01010101, xi, t);
    }
    return dx * (aglm_cu_h2f(b->d) * (float)(sc * s) - aglm_cu_h2f(b->dmin) * (float)(m * t));
  } else if constexpr (T == AGLM_TYPE_Q6_K) {
    const aglm_block_q6_K *b = (const aglm_block_q6_K *)row + c / 8;
    const int cc = (int)(c % 8), h = cc / 4, qd = cc % 4;
    const uint8_t *ql = b->ql + 64 * h + (qd & 1) * 32, *qh = b->qh + 32 * h;
    int total = 0;
    for (int g = 0; g < 2; g++) { // two groups of 16, each with its scale
      int s = 0, t = 0;
      for (int i = 4 * g; i < 4 * g + 4; i++) {
        const uint32_t lo = (aglm_cu_load_u32(ql + 4 * i) >> (4 * (qd >> 1))) & 0x0f0f0f0fu;
        const uint32_t hi = ((aglm_cu_load_u32(qh + 4 * i) >> (2 * qd)) & 0x03030303u) << 4;
        const int xi = aglm_cu_load_i32(x->qs + 4 * i);
        s = aglm_cu_dp4a((int)(lo | hi), xi, s);
        t = aglm_cu_dp4a(0x01010101, xi, t);
      }
      total += b->scales[2 * cc + g] * (s - 32 * t);
    }
    return (aglm_cu_h2f(b->d) * dx) * (float)total;
  } else {
    return 0.0f;
  }
}

// Float weights: chunk c of the row against 32 f32 activations, multiplied in float as the reference does.
template <int T> AGLM_HD float aglm_cu_dot_chunk_f(const void *row, int64_t c, const float *x) {
  float w[32];
  aglm_cu_dequant_chunk<T>(row, c, w);
  float s = 0.0f;
  for (int j = 0; j < 32; j++) s += w[j] * x[j];
  return s;
}

// Whether a weight type is quantized (dp4a against Q8_1) or float (against f32).
AGLM_HD bool aglm_cu_type_quantized(int t) {
  return t == AGLM_TYPE_Q8_0 || t == AGLM_TYPE_Q4_0 || t == AGLM_TYPE_Q4_1 || t == AGLM_TYPE_Q5_0 || t == AGLM_TYPE_Q5_1 ||
         t == AGLM_TYPE_Q4_K || t == AGLM_TYPE_Q5_K || t == AGLM_TYPE_Q6_K;
}
AGLM_HD bool aglm_cu_type_supported(int t) {
  return t == AGLM_TYPE_F32 || t == AGLM_TYPE_F16 || t == AGLM_TYPE_BF16 || aglm_cu_type_quantized(t);
}
// Values per block of a supported type (the row length must be a multiple): 1 for the float types, whose rows may
// have any length (the kernels read the last, partial chunk of 32 value by value: aglm_cu_float_at).
AGLM_HD int aglm_cu_type_block_values(int t) {
  return t == AGLM_TYPE_F32 || t == AGLM_TYPE_F16 || t == AGLM_TYPE_BF16 ? 1 : t == AGLM_TYPE_Q4_K || t == AGLM_TYPE_Q5_K || t == AGLM_TYPE_Q6_K ? 256 : 32;
}
// Value i of a row of a float type.
template <int T> AGLM_HD float aglm_cu_float_at(const void *row, int64_t i) {
  if constexpr (T == AGLM_TYPE_F32) return ((const float *)row)[i];
  else if constexpr (T == AGLM_TYPE_F16) return aglm_cu_h2f(((const uint16_t *)row)[i]);
  else return aglm_cu_bf2f(((const uint16_t *)row)[i]);
}
// Bytes of a row of k values (k a multiple of the type's block values); 0 for a type the kernels do not read.
AGLM_HD uint64_t aglm_cu_row_bytes(int t, int64_t k) {
  int per = 32, bytes = 0;
  switch (t) {
    case AGLM_TYPE_F32: per = 1, bytes = 4; break;
    case AGLM_TYPE_F16:
    case AGLM_TYPE_BF16: per = 1, bytes = 2; break;
    case AGLM_TYPE_Q8_0: bytes = 34; break;
    case AGLM_TYPE_Q4_0: bytes = 18; break;
    case AGLM_TYPE_Q4_1: bytes = 20; break;
    case AGLM_TYPE_Q5_0: bytes = 22; break;
    case AGLM_TYPE_Q5_1: bytes = 24; break;
    case AGLM_TYPE_Q4_K: per = 256, bytes = 144; break;
    case AGLM_TYPE_Q5_K: per = 256, bytes = 176; break;
    case AGLM_TYPE_Q6_K: per = 256, bytes = 210; break;
    default: return 0;
  }
  return (uint64_t)(k / per) * (uint64_t)bytes;
}
