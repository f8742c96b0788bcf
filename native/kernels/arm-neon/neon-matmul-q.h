// The NEON Q8_0/Q4_0 x Q8_0 matmul, shared by neon-matmul-q.cpp (baseline armv8-a: vmull/vmlal/vpadal) and
// neon-matmul-q-dotprod.cpp (armv8.2-a+dotprod: sdot). The including file first defines
//   int32x4_t aglm_q_dot(int32x4_t acc, int8x16_t w, int8x16_t x)  // acc + products of w and x summed into 4 lanes
// and then uses the kernels below; everything here has internal linkage, so each object gets its own copy built with
// its own flags.
//
// A block's integer dot is exact in int32 (|sum| <= 32 * 128 * 127), then converted to float and multiplied by
// d_w * d_x. Four such dots are reduced together with pairwise adds (vpaddq) into one vector, so one conversion and
// one FMA serve four blocks (decode: four consecutive blocks of a row; prefill: one block of a row for four tokens).
// Decoding (fewer than 4 tokens) walks weight rows one after another (one linear stream per thread); prefill runs
// 4 rows x 4 tokens tiles over token chunks small enough for L2, so each loaded weight block serves 4 tokens.
#pragma once

#include <arm_neon.h>

#include "kernels/arm-neon/neon-math.h"
#include "kernels/kernels.h"

namespace {

// Q8_0 weight block (34 bytes): the 32 signed values as they are.
struct aglm_q8_0_block {
  static const int bytes = 34;
  static inline void values(const char *b, int8x16_t &lo, int8x16_t &hi) {
    lo = vld1q_s8((const int8_t *)(b + 2));
    hi = vld1q_s8((const int8_t *)(b + 18));
  }
};

// Q4_0 weight block (18 bytes): low nibbles are values 0..15, high nibbles 16..31; value = nibble - 8.
struct aglm_q4_0_block {
  static const int bytes = 18;
  static inline void values(const char *b, int8x16_t &lo, int8x16_t &hi) {
    const uint8x16_t q = vld1q_u8((const uint8_t *)(b + 2));
    const int8x16_t eight = vdupq_n_s8(8);
    lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
    hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
  }
};

// The integer dot of one weight block (lo, hi) with the Q8_0 activation block at xb, in 4 int32 lanes.
inline int32x4_t aglm_q_block_dot(int8x16_t lo, int8x16_t hi, const char *xb) {
  const int32x4_t s = aglm_q_dot(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)(xb + 2)));
  return aglm_q_dot(s, hi, vld1q_s8((const int8_t *)(xb + 18)));
}

// The fp16 scale at p into lane L of v.
template <int L>
inline uint16x4_t aglm_q_scale_lane(const char *p, uint16x4_t v) {
  return vld1_lane_u16((const uint16_t *)p, v, L);
}

// Lane i = sum of the lanes of s[i].
inline int32x4_t aglm_q_reduce4(const int32x4_t (&s)[4]) {
  return vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
}

// One weight row x tokens [0, T), T < 4: four blocks per step, lane u of the accumulator holds block b + u.
template <class B, int T>
void aglm_q_row(const aglm_matmul_args *a, int64_t r) {
  const char *w = (const char *)a->w + r * (int64_t)a->w_row_bytes;
  const char *x[T];
  float32x4_t acc[T];
  float tail[T];
  AGLM_UNROLL
  for (int j = 0; j < T; j++) {
    x[j] = (const char *)a->x + j * (int64_t)a->x_row_bytes;
    acc[j] = vdupq_n_f32(0.0f);
    tail[j] = 0.0f;
  }
  const int64_t nb = a->k / 32;
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const char *wb = w + b * B::bytes;
    int32x4_t s[T][4];
    uint16x4_t dwh = vdup_n_u16(0);
    AGLM_UNROLL
    for (int u = 0; u < 4; u++) {
      int8x16_t lo, hi;
      B::values(wb + u * B::bytes, lo, hi);
      AGLM_UNROLL
      for (int j = 0; j < T; j++) s[j][u] = aglm_q_block_dot(lo, hi, x[j] + (b + u) * 34);
    }
    dwh = aglm_q_scale_lane<0>(wb, dwh);
    dwh = aglm_q_scale_lane<1>(wb + B::bytes, dwh);
    dwh = aglm_q_scale_lane<2>(wb + 2 * B::bytes, dwh);
    dwh = aglm_q_scale_lane<3>(wb + 3 * B::bytes, dwh);
    const float32x4_t dw = aglm_h4_to_f32(dwh);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const char *xb = x[j] + b * 34;
      uint16x4_t dxh = vdup_n_u16(0);
      dxh = aglm_q_scale_lane<0>(xb, dxh);
      dxh = aglm_q_scale_lane<1>(xb + 34, dxh);
      dxh = aglm_q_scale_lane<2>(xb + 68, dxh);
      dxh = aglm_q_scale_lane<3>(xb + 102, dxh);
      acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(aglm_q_reduce4(s[j])), vmulq_f32(dw, aglm_h4_to_f32(dxh)));
    }
  }
  for (; b < nb; b++) {
    const char *wb = w + b * B::bytes;
    int8x16_t lo, hi;
    B::values(wb, lo, hi);
    const float dw = aglm_h_to_f32(wb);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const char *xb = x[j] + b * 34;
      tail[j] += (float)vaddvq_s32(aglm_q_block_dot(lo, hi, xb)) * (dw * aglm_h_to_f32(xb));
    }
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) a->y[j * a->y_stride + r] = vaddvq_f32(acc[j]) + tail[j];
}

// Rows [r, r+R) x tokens [t, t+T), T <= 4: lane j of acc[i] holds row r+i for token t+j.
template <class B, int R, int T>
void aglm_q_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const char *x[T];
  float32x4_t acc[R];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) {
    w[i] = (const char *)a->w + (r + i) * (int64_t)a->w_row_bytes;
    acc[i] = vdupq_n_f32(0.0f);
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = (const char *)a->x + (t + j) * (int64_t)a->x_row_bytes;
  const int64_t nb = a->k / 32;
  for (int64_t b = 0; b < nb; b++) {
    int8x16_t xl[T], xh[T];
    uint16x4_t dxh = vdup_n_u16(0);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const char *xb = x[j] + b * 34;
      xl[j] = vld1q_s8((const int8_t *)(xb + 2));
      xh[j] = vld1q_s8((const int8_t *)(xb + 18));
    }
    dxh = aglm_q_scale_lane<0>(x[0] + b * 34, dxh);
    if (T > 1) dxh = aglm_q_scale_lane<1>(x[T > 1 ? 1 : 0] + b * 34, dxh);
    if (T > 2) dxh = aglm_q_scale_lane<2>(x[T > 2 ? 2 : 0] + b * 34, dxh);
    if (T > 3) dxh = aglm_q_scale_lane<3>(x[T > 3 ? 3 : 0] + b * 34, dxh);
    const float32x4_t dx = aglm_h4_to_f32(dxh);
    AGLM_UNROLL
    for (int i = 0; i < R; i++) {
      const char *wb = w[i] + b * B::bytes;
      int8x16_t lo, hi;
      B::values(wb, lo, hi);
      int32x4_t s[4];
      AGLM_UNROLL
      for (int j = 0; j < 4; j++) {
        if (j < T) s[j] = aglm_q_dot(aglm_q_dot(vdupq_n_s32(0), lo, xl[j < T ? j : 0]), hi, xh[j < T ? j : 0]);
        else s[j] = vdupq_n_s32(0);
      }
      acc[i] = vfmaq_f32(acc[i], vcvtq_f32_s32(aglm_q_reduce4(s)), vmulq_n_f32(dx, aglm_h_to_f32(wb)));
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++) {
    float out[4];
    vst1q_f32(out, acc[i]);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = out[j];
  }
}

template <class B, int R>
void aglm_q_tile_tokens(const aglm_matmul_args *a, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_q_tile<B, R, 1>(a, r, t); break;
  case 2: aglm_q_tile<B, R, 2>(a, r, t); break;
  case 3: aglm_q_tile<B, R, 3>(a, r, t); break;
  default: aglm_q_tile<B, R, 4>(a, r, t); break;
  }
}

// Fewer than 4 tokens: rows one after another. Otherwise tokens in chunks whose activations stay in L2, and per
// chunk 4-row tiles (rows outer) over 4-token tiles.
template <class B>
void aglm_q_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  if (a->n < 4) {
    for (int64_t r = r0; r < r1; r++) {
      if (a->n == 1) aglm_q_row<B, 1>(a, r);
      else if (a->n == 2) aglm_q_row<B, 2>(a, r);
      else aglm_q_row<B, 3>(a, r);
    }
    return;
  }
  int64_t chunk = (256 * 1024) / (a->k / 32 * 34 + 64);
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t t1 = a->n - t0 < chunk ? a->n : t0 + chunk;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
      for (int64_t t = t0; t < t1; t += 4) aglm_q_tile_tokens<B, 4>(a, r, t, t1 - t < 4 ? t1 - t : 4);
    for (; r < r1; r++)
      for (int64_t t = t0; t < t1; t += 4) aglm_q_tile_tokens<B, 1>(a, r, t, t1 - t < 4 ? t1 - t : 4);
  }
}

// The entry point body: Q8_0 and Q4_0 weights (other types are not routed here).
inline void aglm_q_matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) aglm_q_run<aglm_q8_0_block>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) aglm_q_run<aglm_q4_0_block>(a, r0, r1);
}

} // namespace
