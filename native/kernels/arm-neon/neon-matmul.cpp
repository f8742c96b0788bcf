// NEON matmul: float weights (F32/F16/BF16, widened to f32, then FMA) here; Q8_0/Q4_0 go to the dotprod object or
// the baseline one (neon-matmul-q*.cpp) after a one-time HWCAP check; other weight types to the reference.
// Decoding (fewer than 4 tokens) walks weight rows one after another (one linear stream); prefill runs tiles of
// 4 rows x 4 tokens over token chunks small enough for L2, so each loaded weight vector serves 4 tokens.
#include <arm_neon.h>
#include <string.h>

#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "kernels/arm-neon/neon-internal.h"
#include "kernels/arm-neon/neon-math.h"
#include "kernels/ref/ref-kernels.h"

namespace {

// Loads of 4 weights as floats from a row of the weight type: full(row, i), and part(row, i, n) for n < 4 values.
struct aglm_f32_load {
  static float32x4_t full(const void *row, int64_t i) { return vld1q_f32((const float *)row + i); }
  static float32x4_t part(const void *row, int64_t i, int64_t n) { return aglm_f32_part((const float *)row + i, n); }
};

struct aglm_f16_load {
  static float32x4_t full(const void *row, int64_t i) { return aglm_h4_to_f32(vld1_u16((const uint16_t *)row + i)); }
  static float32x4_t part(const void *row, int64_t i, int64_t n) {
    return aglm_h4_to_f32(aglm_u16_part((const uint16_t *)row + i, n));
  }
};

struct aglm_bf16_load {
  static float32x4_t full(const void *row, int64_t i) { return aglm_b4_to_f32(vld1_u16((const uint16_t *)row + i)); }
  static float32x4_t part(const void *row, int64_t i, int64_t n) {
    return aglm_b4_to_f32(aglm_u16_part((const uint16_t *)row + i, n));
  }
};

inline const char *aglm_w_row(const aglm_matmul_args *a, int64_t r) {
  return (const char *)a->w + r * (int64_t)a->w_row_bytes;
}
inline const float *aglm_x_row(const aglm_matmul_args *a, int64_t t) {
  return (const float *)((const char *)a->x + t * (int64_t)a->x_row_bytes);
}

// Rows [r, r+R) x tokens [t, t+T): R*T accumulators, each loaded weight vector used T times.
template <class L, int R, int T>
void aglm_float_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const float *x[T];
  float32x4_t acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = aglm_w_row(a, r + i);
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, t + j);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[i][j] = vdupq_n_f32(0.0f);
  const int64_t k = a->k;
  int64_t c = 0;
  for (; c + 4 <= k; c += 4) {
    float32x4_t wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::full(w[i], c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const float32x4_t xv = vld1q_f32(x[j] + c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = vfmaq_f32(acc[i][j], wv[i], xv);
    }
  }
  if (c < k) {
    float32x4_t wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::part(w[i], c, k - c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const float32x4_t xv = aglm_f32_part(x[j] + c, k - c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = vfmaq_f32(acc[i][j], wv[i], xv);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = vaddvq_f32(acc[i][j]);
}

// One weight row x tokens [0, T), T < 4: 16 values per step into 4 accumulator sets (hides the FMA latency).
template <class L, int T>
void aglm_float_row(const aglm_matmul_args *a, int64_t r) {
  const char *w = aglm_w_row(a, r);
  const float *x[T];
  float32x4_t acc[4][T];
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = aglm_x_row(a, j);
  AGLM_UNROLL
  for (int u = 0; u < 4; u++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[u][j] = vdupq_n_f32(0.0f);
  const int64_t k = a->k;
  int64_t c = 0;
  for (; c + 16 <= k; c += 16) {
    AGLM_UNROLL
    for (int u = 0; u < 4; u++) {
      const float32x4_t wv = L::full(w, c + 4 * u);
      AGLM_UNROLL
      for (int j = 0; j < T; j++) acc[u][j] = vfmaq_f32(acc[u][j], wv, vld1q_f32(x[j] + c + 4 * u));
    }
  }
  for (; c < k; c += 4) {
    const int64_t n = k - c < 4 ? k - c : 4;
    const float32x4_t wv = n < 4 ? L::part(w, c, n) : L::full(w, c);
    AGLM_UNROLL
    for (int j = 0; j < T; j++)
      acc[0][j] = vfmaq_f32(acc[0][j], wv, n < 4 ? aglm_f32_part(x[j] + c, n) : vld1q_f32(x[j] + c));
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++)
    a->y[j * a->y_stride + r] = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0][j], acc[1][j]), vaddq_f32(acc[2][j], acc[3][j])));
}

template <class L, int R>
void aglm_float_tile_tokens(const aglm_matmul_args *a, int64_t r, int64_t t, int64_t count) {
  switch (count) {
  case 1: aglm_float_tile<L, R, 1>(a, r, t); break;
  case 2: aglm_float_tile<L, R, 2>(a, r, t); break;
  case 3: aglm_float_tile<L, R, 3>(a, r, t); break;
  default: aglm_float_tile<L, R, 4>(a, r, t); break;
  }
}

// Fewer than 4 tokens: rows one after another. Otherwise tokens in chunks whose activations stay in L2, and per
// chunk 4-row tiles (rows outer) over 4-token tiles.
template <class L>
void aglm_float_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  if (a->n < 4) {
    for (int64_t r = r0; r < r1; r++) {
      if (a->n == 1) aglm_float_row<L, 1>(a, r);
      else if (a->n == 2) aglm_float_row<L, 2>(a, r);
      else aglm_float_row<L, 3>(a, r);
    }
    return;
  }
  int64_t chunk = (256 * 1024) / (a->k * 4 + 64);
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t t1 = a->n - t0 < chunk ? a->n : t0 + chunk;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
      for (int64_t t = t0; t < t1; t += 4) aglm_float_tile_tokens<L, 4>(a, r, t, t1 - t < 4 ? t1 - t : 4);
    for (; r < r1; r++)
      for (int64_t t = t0; t < t1; t += 4) aglm_float_tile_tokens<L, 1>(a, r, t, t1 - t < 4 ? t1 - t : 4);
  }
}

bool aglm_dotprod_probe() {
#if defined(__linux__)
  return (getauxval(AT_HWCAP) >> 20) & 1u; // HWCAP_ASIMDDP
#elif defined(__APPLE__)
  int v = 0;
  size_t len = sizeof v;
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, nullptr, 0) == 0 && v != 0;
#else
  return false;
#endif
}

} // namespace

namespace aglm_neon {

bool dotprod_present() {
  static const bool present = aglm_dotprod_probe();
  return present;
}

void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  switch (a->w_type) {
  case AGLM_TYPE_F32: aglm_float_run<aglm_f32_load>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_float_run<aglm_f16_load>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_float_run<aglm_bf16_load>(a, r0, r1); return;
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0:
    if (dotprod_present()) matmul_q_dotprod(a, r0, r1);
    else matmul_q(a, r0, r1);
    return;
  default: aglm_ref::matmul(a, r0, r1); return; // types this table does not specialise (no-op if ref lacks them too)
  }
}

} // namespace aglm_neon
