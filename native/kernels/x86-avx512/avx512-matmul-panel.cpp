// Q8_0 / Q4_0 matmul over the 16-row panel layout (avx512-panel.h), for any number of tokens: per block, VPDPBUSD of
// each 64-byte weight group (Q8_0: w ^ 0x80, i.e. w + 128; Q4_0: the nibbles, w + 8) against 4 activation bytes
// broadcast, into an int32 accumulator per row that starts from the block's bias (-128 or -8 times the sum of its
// activations), so the block dot is exact; then one FMA by d_w * d_x per block, as ref does. Several panels go
// together so each broadcast serves them all: four (64 rows) for one or two tokens, whose four independent accumulator
// chains keep decoding from waiting on VPDPBUSD latency (20-25 % faster than two on Zen 4, native/tests/qlab.cpp),
// two (32 rows) with up to 4 tokens per pass otherwise; the panels' weights stay in L1/L2 while every token of a chunk
// passes over them, so they are read from memory once per chunk. Each (row, token) result is computed the same way
// whatever the tiling, so a sequence batched with others gets exactly what it gets alone.
// Built with -mavx512vnni; called only where AVX512_VNNI is present.
#include <immintrin.h>
#include <string.h>

#include "kernels/x86-avx512/avx512-internal.h"
#include "kernels/x86-avx512/avx512-math.h"
#include "kernels/x86-avx512/avx512-panel.h"

#if defined(__GNUC__) || defined(__clang__)
#define AGLM_PANEL_INLINE inline __attribute__((always_inline))
#else
#define AGLM_PANEL_INLINE __forceinline
#endif

namespace {

// Per token and block: the activation bytes as 8 dwords (for VPBROADCASTD), the integer bias, the scale (48 bytes).
struct xblk {
  int32_t q[8];
  int32_t bias;
  float d;
  int32_t pad[2];
};

// A thread's activation buffer, kept between calls (freed when the thread exits).
struct xbuf {
  xblk *p = nullptr;
  size_t cap = 0;
  ~xbuf() { free(p); }
  xblk *get(size_t n) {
    if (n <= cap) return p;
    free(p);
    p = (xblk *)aligned_alloc(64, (n * sizeof(xblk) + 63) & ~(size_t)63);
    cap = p ? n : 0;
    return p;
  }
};

// One Q8_0 activation row: bytes, bias = -bias_mul * sum(x) (vpsadbw of x + 128, less 32 * 128), scale.
void prep_row(const char *x, int64_t nb, int bias_mul, xblk *dst) {
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *blk = x + b * 34;
    const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
    _mm256_storeu_si256((__m256i *)dst[b].q, q);
    const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(q, flip), _mm256_setzero_si256());
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const int64_t sum = _mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1) - 32 * 128;
    uint16_t h;
    memcpy(&h, blk, 2);
    dst[b].bias = (int32_t)(-bias_mul * sum);
    dst[b].d = _cvtsh_ss(h);
  }
}

// P panels x T tokens (P * T <= 8), all blocks; out[p][t] gets the 16 row results of panel p, token t.
template <bool Q8, int P, int T>
AGLM_PANEL_INLINE void panel_tile(const char *const *panel, int64_t nb, const xblk *const *xs, __m512 (&out)[P][T]) {
  const int64_t data = Q8 ? 512 : 256;
  // Few (panel, token) pairs: two accumulator chains each, so VPDPBUSD latency does not bound decoding.
  const int S = P * T <= 4 ? 2 : 1;
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  __m512 f[P][T];
  AGLM_UNROLL
  for (int p = 0; p < P; p++)
    AGLM_UNROLL
    for (int t = 0; t < T; t++) f[p][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m512i acc[S][P][T];
    AGLM_UNROLL
    for (int p = 0; p < P; p++)
      AGLM_UNROLL
      for (int t = 0; t < T; t++) {
        acc[0][p][t] = _mm512_set1_epi32(xs[t][b].bias);
        if (S > 1) acc[S - 1][p][t] = _mm512_setzero_si512();
      }
    if (Q8) {
      AGLM_UNROLL
      for (int g = 0; g < 8; g++) {
        __m512i w[P];
        AGLM_UNROLL
        for (int p = 0; p < P; p++) w[p] = _mm512_xor_si512(_mm512_load_si512((const void *)(panel[p] + b * data + g * 64)), flip);
        AGLM_UNROLL
        for (int t = 0; t < T; t++) {
          const __m512i bx = _mm512_set1_epi32(xs[t][b].q[g]);
          AGLM_UNROLL
          for (int p = 0; p < P; p++) acc[g % S][p][t] = _mm512_dpbusd_epi32(acc[g % S][p][t], w[p], bx);
        }
      }
    } else {
      AGLM_UNROLL
      for (int i = 0; i < 4; i++) {
        __m512i lo[P], hi[P];
        AGLM_UNROLL
        for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_load_si512((const void *)(panel[p] + b * data + i * 64));
          lo[p] = _mm512_and_si512(v, low);
          hi[p] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        AGLM_UNROLL
        for (int t = 0; t < T; t++) {
          const __m512i bl = _mm512_set1_epi32(xs[t][b].q[i]), bh = _mm512_set1_epi32(xs[t][b].q[4 + i]);
          AGLM_UNROLL
          for (int p = 0; p < P; p++) {
            acc[0][p][t] = _mm512_dpbusd_epi32(acc[0][p][t], lo[p], bl);
            acc[S - 1][p][t] = _mm512_dpbusd_epi32(acc[S - 1][p][t], hi[p], bh);
          }
        }
      }
    }
    AGLM_UNROLL
    for (int p = 0; p < P; p++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(panel[p] + nb * data + b * 32)));
      AGLM_UNROLL
      for (int t = 0; t < T; t++) {
        const __m512i s = S > 1 ? _mm512_add_epi32(acc[0][p][t], acc[S - 1][p][t]) : acc[0][p][t];
        f[p][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xs[t][b].d)), f[p][t]);
      }
    }
  }
  AGLM_UNROLL
  for (int p = 0; p < P; p++)
    AGLM_UNROLL
    for (int t = 0; t < T; t++) out[p][t] = f[p][t];
}

// Lanes [lo, hi) of 16 set, clamped to [0, 16].
inline __mmask16 row_mask(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  return hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

struct job {
  const aglm_matmul_args *a;
  int64_t nb, t0; // blocks per row, first token of the chunk
  size_t pb;      // bytes per panel
  const xblk *xs; // [chunk tokens][nb]
};

// Panels [p, p + P) x chunk tokens [t, t + T); rows outside [r0, r1) are not written.
template <bool Q8, int P, int T>
void run_tile(const job &j, int64_t p, int64_t t, int64_t r0, int64_t r1) {
  const aglm_matmul_args *a = j.a;
  const char *panel[P];
  const xblk *xs[T];
  AGLM_UNROLL
  for (int i = 0; i < P; i++) panel[i] = (const char *)a->w + (p + i) * j.pb;
  AGLM_UNROLL
  for (int i = 0; i < T; i++) xs[i] = j.xs + (t + i) * j.nb;
  __m512 out[P][T];
  panel_tile<Q8, P, T>(panel, j.nb, xs, out);
  AGLM_UNROLL
  for (int i = 0; i < P; i++) {
    const int64_t base = (p + i) * 16;
    const __mmask16 m = row_mask(r0 - base, r1 - base);
    AGLM_UNROLL
    for (int k = 0; k < T; k++) _mm512_mask_storeu_ps(a->y + (j.t0 + t + k) * a->y_stride + base, m, out[i][k]);
  }
}

template <bool Q8, int P>
void run_tokens(const job &j, int64_t p, int64_t t, int64_t count, int64_t r0, int64_t r1) {
  switch (count) {
  case 1: run_tile<Q8, P, 1>(j, p, t, r0, r1); break;
  case 2: run_tile<Q8, P, 2>(j, p, t, r0, r1); break;
  case 3: run_tile<Q8, P < 2 ? P : 2, 3>(j, p, t, r0, r1); break;
  default: run_tile<Q8, P < 2 ? P : 2, 4>(j, p, t, r0, r1); break;
  }
}

// Panels [p, p + P) over every token of the chunk: 4-panel groups take tokens two at a time, 2-panel groups four at
// a time (a 4-panel group with more tokens runs as two 2-panel groups).
template <bool Q8, int P>
void run_panels(const job &j, int64_t p, int64_t tc, int64_t r0, int64_t r1) {
  if (P == 4 && tc > 2) {
    run_panels<Q8, 2>(j, p, tc, r0, r1);
    run_panels<Q8, 2>(j, p + 2, tc, r0, r1);
    return;
  }
  const int64_t step = P == 4 ? 2 : 4;
  for (int64_t t = 0; t < tc; t += step) run_tokens<Q8, P>(j, p, t, tc - t < step ? tc - t : step, r0, r1);
}

template <bool Q8>
void run(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32;
  job j = {a, nb, 0, aglm_avx512::panel_bytes_q(a->w_type, a->k), nullptr};
  if (a->n <= 0 || r1 <= r0 || nb <= 0 || !j.pb) return;
  // Tokens in chunks whose prepared activations stay around 256 KiB (L2).
  int64_t chunk = (256 * 1024) / (int64_t)(nb * sizeof(xblk));
  chunk = chunk < 4 ? 4 : chunk > 128 ? 128 : chunk & ~(int64_t)3;
  if (chunk > a->n) chunk = a->n;
  static thread_local xbuf buf;
  xblk *xs = buf.get((size_t)(chunk * nb));
  if (!xs) return; // out of memory: nothing sensible to fall back to for the packed layout
  j.xs = xs;
  const int64_t p0 = r0 / 16, p1 = (r1 + 15) / 16;
  for (j.t0 = 0; j.t0 < a->n; j.t0 += chunk) {
    const int64_t tc = a->n - j.t0 < chunk ? a->n - j.t0 : chunk;
    for (int64_t t = 0; t < tc; t++)
      prep_row((const char *)a->x + (j.t0 + t) * (int64_t)a->x_row_bytes, nb, Q8 ? 128 : 8, xs + t * nb);
    int64_t p = p0;
    if (tc <= 2)
      for (; p + 4 <= p1; p += 4) run_panels<Q8, 4>(j, p, tc, r0, r1);
    for (; p + 2 <= p1; p += 2) run_panels<Q8, 2>(j, p, tc, r0, r1);
    for (; p < p1; p++) run_panels<Q8, 1>(j, p, tc, r0, r1);
  }
}

} // namespace

namespace aglm_avx512 {

void matmul_panel_q(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0) run<true>(a, r0, r1);
  else if (a->w_type == AGLM_TYPE_Q4_0) run<false>(a, r0, r1);
}

} // namespace aglm_avx512
