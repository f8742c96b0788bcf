// AVX-512 matmul: Q8_0/Q4_0 weights repacked into 16-row panels (avx512-panel.h) where VNNI is present; else, in
// the GGUF layout: float weights (F32/F16/BF16) by FMA (rows one after another when decoding, 4-row x 4-token tiles
// over L2-sized token chunks for prefill); the quantized types go to the VNNI or AVX512BW objects after a one-time
// cpuid check (Q8_0/Q4_0: avx512-matmul-q*.cpp; Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K: avx512-matmul-ext*.cpp).
#include <immintrin.h>
#include <stdlib.h>

#include <type_traits>
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif

#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"
#include "kernels/x86-avx512/avx512-panel.h"

namespace {

struct aglm_f32_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
  }
};

struct aglm_f16_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
  }
};

struct aglm_bf16_load {
  static __m512 load(const void *row, int64_t i, __mmask16 m) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
};

// Rows [r, r+R) x tokens [t, t+T) for float weights: per 16 values, R weight vectors each used for T tokens.
// One loop with a mask (all ones until the tail) keeps the R x T accumulators in registers.
template <class L, int R, int T>
void aglm_float_tile(const aglm_matmul_args *a, int64_t r, int64_t t) {
  const char *w[R];
  const float *x[T];
  __m512 acc[R][T];
  AGLM_UNROLL
  for (int i = 0; i < R; i++) w[i] = (const char *)a->w + (r + i) * (int64_t)a->w_row_bytes;
  AGLM_UNROLL
  for (int j = 0; j < T; j++) x[j] = (const float *)((const char *)a->x + (t + j) * (int64_t)a->x_row_bytes);
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < a->k; c += 16) {
    const __mmask16 m = aglm_mask16(a->k - c);
    __m512 wv[R];
    AGLM_UNROLL
    for (int i = 0; i < R; i++) wv[i] = L::load(w[i], c, m);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[j] + c);
      AGLM_UNROLL
      for (int i = 0; i < R; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  AGLM_UNROLL
  for (int i = 0; i < R; i++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) a->y[(t + j) * a->y_stride + r + i] = _mm512_reduce_add_ps(acc[i][j]);
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

// One weight row x tokens [0, T) (T < 4, decoding): 64 values per step into 4 accumulator sets to hide the FMA
// latency, the row read front to back (a single linear stream). X loads 16 activations of a row: f32, or the f16
// copy made by aglm_float_decode (X::load(x, i, mask) like L::load).
template <class L, class X, int T>
void aglm_float_row(const aglm_matmul_args *a, const void *const *x, int64_t r) {
  const char *w = (const char *)a->w + r * (int64_t)a->w_row_bytes;
  __m512 acc[4][T];
  AGLM_UNROLL
  for (int u = 0; u < 4; u++)
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[u][j] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 64 <= a->k; c += 64) {
    AGLM_UNROLL
    for (int u = 0; u < 4; u++) {
      const __m512 wv = L::load(w, c + 16 * u, 0xffff);
      AGLM_UNROLL
      for (int j = 0; j < T; j++) acc[u][j] = _mm512_fmadd_ps(wv, X::load(x[j], c + 16 * u, 0xffff), acc[u][j]);
    }
  }
  for (; c < a->k; c += 16) {
    const __mmask16 m = aglm_mask16(a->k - c);
    const __m512 wv = L::load(w, c, m);
    AGLM_UNROLL
    for (int j = 0; j < T; j++) acc[0][j] = _mm512_fmadd_ps(wv, X::load(x[j], c, m), acc[0][j]);
  }
  AGLM_UNROLL
  for (int j = 0; j < T; j++) {
    const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[0][j], acc[1][j]), _mm512_add_ps(acc[2][j], acc[3][j]));
    a->y[j * a->y_stride + r] = _mm512_reduce_add_ps(s);
  }
}

// A thread's f16 copy of the decode activations, kept between calls (freed when the thread exits).
struct aglm_f16_scratch {
  uint16_t *p = nullptr;
  size_t cap = 0;
  ~aglm_f16_scratch() { free(p); }
  uint16_t *get(size_t n) {
    if (n <= cap) return p;
    free(p);
    p = (uint16_t *)aligned_alloc(64, (n * 2 + 63) & ~(size_t)63);
    cap = p ? n : 0;
    return p;
  }
};

// Rounds k activations to f16 (nearest even) into dst; false if any |x| is too large for f16 (or NaN), so the caller
// keeps f32 rather than multiply by infinity.
bool aglm_x_to_f16(const float *x, int64_t k, uint16_t *dst) {
  const __m512 limit = _mm512_set1_ps(65504.0f);
  __mmask16 bad = 0;
  for (int64_t c = 0; c < k; c += 16) {
    const __mmask16 m = aglm_mask16(k - c);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + c);
    bad |= _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(v), limit, _CMP_NLE_UQ);
    _mm256_mask_storeu_epi16(dst + c, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return bad == 0;
}

// Decoding with F16/BF16 weights reads the activations as f16, as llama.cpp does for F16 weights: each f32
// activation read beside a 2-byte weight cost a third of one thread's DRAM stream on Zen 4 (f32 activations of a
// 5632-wide row no longer fit in L1 beside the weights; 64-byte activation loads slowed even k = 2048), measured
// 13-18 GB/s against 22-25 GB/s with f16 activations (decode rows of native/tests/matmul-bench.cpp). The cost is
// one f16 rounding per activation (relative 2^-11), so the kernel tests bound these rows by 2^-11 sum |w x| more.
template <class L, class X, int T>
void aglm_float_decode_rows(const aglm_matmul_args *a, const void *const *x, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) aglm_float_row<L, X, T>(a, x, r);
}

template <class L, class X>
void aglm_float_decode_n(const aglm_matmul_args *a, const void *const *x, int64_t r0, int64_t r1) {
  if (a->n == 1) aglm_float_decode_rows<L, X, 1>(a, x, r0, r1);
  else if (a->n == 2) aglm_float_decode_rows<L, X, 2>(a, x, r0, r1);
  else aglm_float_decode_rows<L, X, 3>(a, x, r0, r1);
}

struct aglm_x_f32 {
  // Two 32-byte loads: a 64-byte load (or FMA memory operand) per weight vector slowed the decode stream on Zen 4.
  static __m512 load(const void *x, int64_t i, __mmask16 m) {
    const float *p = (const float *)x + i;
    if (m == 0xffff) return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps(p + 8), 1);
    return _mm512_maskz_loadu_ps(m, p);
  }
};

struct aglm_x_f16 {
  static __m512 load(const void *x, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)x + i));
  }
};

template <class L, bool F16X>
void aglm_float_decode(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const void *x[3];
  for (int j = 0; j < a->n; j++) x[j] = (const char *)a->x + j * (int64_t)a->x_row_bytes;
  if (F16X) {
    static thread_local aglm_f16_scratch scratch;
    uint16_t *h = scratch.get((size_t)(a->n * a->k));
    bool ok = h != nullptr;
    for (int j = 0; ok && j < a->n; j++) ok = aglm_x_to_f16((const float *)x[j], a->k, h + j * a->k);
    if (ok) {
      const void *xh[3];
      for (int j = 0; j < a->n; j++) xh[j] = h + j * a->k;
      return aglm_float_decode_n<L, aglm_x_f16>(a, xh, r0, r1);
    }
  }
  aglm_float_decode_n<L, aglm_x_f32>(a, x, r0, r1);
}

// Fewer than 4 tokens: rows one after another. Otherwise tokens in chunks whose activations stay in L2 (~256 KiB),
// and per chunk 4-row tiles (rows outer) over 4-token tiles, so each weight row is fetched from memory once per chunk.
template <class L>
void aglm_float_run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->n <= 0 || r1 <= r0) return;
  if (a->n < 4) return aglm_float_decode<L, !std::is_same<L, aglm_f32_load>::value>(a, r0, r1);
  int64_t chunk = (256 * 1024) / (a->k * 4 + 64);
  chunk = chunk < 4 ? 4 : chunk > 64 ? 64 : chunk & ~(int64_t)3;
  for (int64_t t0 = 0; t0 < a->n; t0 += chunk) {
    const int64_t tc = a->n - t0 < chunk ? a->n - t0 : chunk;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
      for (int64_t t = t0; t < t0 + tc; t += 4) aglm_float_tile_tokens<L, 4>(a, r, t, t0 + tc - t < 4 ? t0 + tc - t : 4);
    for (; r < r1; r++)
      for (int64_t t = t0; t < t0 + tc; t += 4) aglm_float_tile_tokens<L, 1>(a, r, t, t0 + tc - t < 4 ? t0 + tc - t : 4);
  }
}

// cpuid leaf 7 ECX bit 11, read once.
bool aglm_vnni_present() {
  static const bool present = [] {
#if defined(_MSC_VER)
    int r[4];
    __cpuidex(r, 7, 0);
    return ((r[2] >> 11) & 1) != 0;
#else
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((c >> 11) & 1u);
#endif
  }();
  return present;
}

} // namespace

namespace aglm_avx512 {

bool panel_q_enabled() { return aglm_vnni_present(); }

size_t repack_size(int w_type, int64_t rows, int64_t k) { return panel_q_enabled() ? repack_size_q(w_type, rows, k) : 0; }

void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_packed) { // only Q8_0 / Q4_0 are repacked (repack_size), only where VNNI runs
    if (a->w_type == AGLM_TYPE_Q8_0 || a->w_type == AGLM_TYPE_Q4_0) matmul_panel_q(a, r0, r1);
    return;
  }
  switch (a->w_type) {
  case AGLM_TYPE_F32: aglm_float_run<aglm_f32_load>(a, r0, r1); return;
  case AGLM_TYPE_F16: aglm_float_run<aglm_f16_load>(a, r0, r1); return;
  case AGLM_TYPE_BF16: aglm_float_run<aglm_bf16_load>(a, r0, r1); return;
  case AGLM_TYPE_Q8_0:
  case AGLM_TYPE_Q4_0:
    if (aglm_vnni_present()) matmul_q_vnni(a, r0, r1);
    else matmul_q(a, r0, r1);
    return;
  case AGLM_TYPE_Q4_1:
  case AGLM_TYPE_Q5_0:
  case AGLM_TYPE_Q5_1:
  case AGLM_TYPE_Q4_K:
  case AGLM_TYPE_Q5_K:
  case AGLM_TYPE_Q6_K:
    if (aglm_vnni_present()) matmul_ext_vnni(a, r0, r1);
    else matmul_ext(a, r0, r1);
    return;
  default: return;
  }
}

} // namespace aglm_avx512
