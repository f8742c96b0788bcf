// Kernel lab (not a test): Q4_0/Q8_0 matmul variants over the 16-row panel layout (x86-amx/amx-internal.h) for
// batched decoding, timed against avx512 (GGUF rows) and the amx packed kernel in one process, variants alternating.
//   aglm-qlab [threads] [reps]
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/x86-amx/amx-internal.h"

#define UNROLL _Pragma("GCC unroll 16")
#define INL inline __attribute__((always_inline))

namespace {

// Per token and block: the 32 activation bytes as 8 dwords (for vpbroadcastd), the integer bias, the scale.
struct xq {
  int32_t q[8];
  int32_t bias;
  float d;
};

void prep_x(const char *x, int64_t nb, int bias_mul, xq *dst) {
  for (int64_t b = 0; b < nb; b++) {
    const char *blk = x + b * 34;
    memcpy(dst[b].q, blk + 2, 32);
    int32_t s = 0;
    for (int i = 0; i < 32; i++) s += (int8_t)blk[2 + i];
    dst[b].bias = -bias_mul * s;
    uint16_t h;
    memcpy(&h, blk, 2);
    dst[b].d = aglm_fp16_to_fp32(h);
  }
}

// V1: one panel x T tokens, per block the 4 weight vectors unpacked once and used by every token.
template <bool Q8, int T>
INL void v1_panel(const char *panel, int64_t nb, const xq *const *xs, float *const *y, unsigned mask) {
  const int64_t data = Q8 ? 512 : 256;
  const uint16_t *scales = (const uint16_t *)(panel + nb * data);
  const int S = T == 1 ? 2 : 1;
  __m512 f[T];
  UNROLL for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *w = panel + b * data;
    __m512i wv[8];
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) wv[g] = _mm512_xor_si512(_mm512_load_si512((const void *)(w + g * 64)), flip);
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_load_si512((const void *)(w + i * 64));
        wv[i] = _mm512_and_si512(v, low);
        wv[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + b * 16)));
    UNROLL for (int t = 0; t < T; t++) {
      const xq &x = xs[t][b];
      __m512i acc[S];
      acc[0] = _mm512_set1_epi32(x.bias);
      if (S > 1) acc[S - 1] = _mm512_setzero_si512();
      UNROLL for (int g = 0; g < 8; g++) acc[g % S] = _mm512_dpbusd_epi32(acc[g % S], wv[g], _mm512_set1_epi32(x.q[g]));
      const __m512i s = S > 1 ? _mm512_add_epi32(acc[0], acc[S - 1]) : acc[0];
      f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x.d)), f[t]);
    }
  }
  UNROLL for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y[t], (__mmask16)mask, f[t]);
}

// V2: two panels x T tokens (32 rows), weight groups loaded per step so that each activation broadcast serves both.
template <bool Q8, int T>
INL void v2_panels(const char *p0, const char *p1, int64_t nb, const xq *const *xs, float *const *y0, float *const *y1) {
  const int64_t data = Q8 ? 512 : 256;
  const uint16_t *s0 = (const uint16_t *)(p0 + nb * data), *s1 = (const uint16_t *)(p1 + nb * data);
  __m512 f0[T], f1[T];
  UNROLL for (int t = 0; t < T; t++) f0[t] = f1[t] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
  for (int64_t b = 0; b < nb; b++) {
    const char *w0 = p0 + b * data, *w1 = p1 + b * data;
    __m512i a0[T], a1[T];
    UNROLL for (int t = 0; t < T; t++) a0[t] = a1[t] = _mm512_set1_epi32(xs[t][b].bias);
    if (Q8) {
      UNROLL for (int g = 0; g < 8; g++) {
        const __m512i u0 = _mm512_xor_si512(_mm512_load_si512((const void *)(w0 + g * 64)), flip);
        const __m512i u1 = _mm512_xor_si512(_mm512_load_si512((const void *)(w1 + g * 64)), flip);
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bx = _mm512_set1_epi32(xs[t][b].q[g]);
          a0[t] = _mm512_dpbusd_epi32(a0[t], u0, bx);
          a1[t] = _mm512_dpbusd_epi32(a1[t], u1, bx);
        }
      }
    } else {
      UNROLL for (int i = 0; i < 4; i++) {
        const __m512i v0 = _mm512_load_si512((const void *)(w0 + i * 64)), v1 = _mm512_load_si512((const void *)(w1 + i * 64));
        const __m512i l0 = _mm512_and_si512(v0, low), h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low);
        const __m512i l1 = _mm512_and_si512(v1, low), h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low);
        UNROLL for (int t = 0; t < T; t++) {
          const __m512i bl = _mm512_set1_epi32(xs[t][b].q[i]), bh = _mm512_set1_epi32(xs[t][b].q[4 + i]);
          a0[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a0[t], l0, bl), h0, bh);
          a1[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a1[t], l1, bl), h1, bh);
        }
      }
    }
    const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s0 + b * 16)));
    const __m512 d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s1 + b * 16)));
    UNROLL for (int t = 0; t < T; t++) {
      const __m512 xd = _mm512_set1_ps(xs[t][b].d);
      f0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[t]), _mm512_mul_ps(d0, xd), f0[t]);
      f1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[t]), _mm512_mul_ps(d1, xd), f1[t]);
    }
  }
  UNROLL for (int t = 0; t < T; t++) {
    _mm512_storeu_ps(y0[t], f0[t]);
    _mm512_storeu_ps(y1[t], f1[t]);
  }
}

template <bool Q8, int T>
void v1_range(const aglm_matmul_args *a, const xq *xs, int64_t nb, int64_t t0, int64_t p0, int64_t p1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const xq *xr[T];
  float *y[T];
  for (int64_t p = p0; p < p1; p++) {
    UNROLL for (int t = 0; t < T; t++) {
      xr[t] = xs + (t0 + t) * nb;
      y[t] = a->y + (t0 + t) * a->y_stride + p * 16;
    }
    v1_panel<Q8, T>((const char *)a->w + p * pb, nb, xr, y, 0xffff);
  }
}

template <bool Q8, int T>
void v2_range(const aglm_matmul_args *a, const xq *xs, int64_t nb, int64_t t0, int64_t p0, int64_t p1) {
  const size_t pb = aglm_amx::panel_bytes(a->w_type, a->k);
  const xq *xr[T];
  float *y0[T], *y1[T];
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) {
    UNROLL for (int t = 0; t < T; t++) {
      xr[t] = xs + (t0 + t) * nb;
      y0[t] = a->y + (t0 + t) * a->y_stride + p * 16;
      y1[t] = y0[t] + 16;
    }
    v2_panels<Q8, T>((const char *)a->w + p * pb, (const char *)a->w + (p + 1) * pb, nb, xr, y0, y1);
  }
  if (p < p1) v1_range<Q8, T>(a, xs, nb, t0, p, p1);
}

typedef void (*range_fn)(const aglm_matmul_args *, const xq *, int64_t, int64_t, int64_t, int64_t);

template <bool Q8, int V>
range_fn pick(int T) {
  if (V == 1) {
    switch (T) {
    case 1: return v1_range<Q8, 1>;
    case 2: return v1_range<Q8, 2>;
    case 3: return v1_range<Q8, 3>;
    case 4: return v1_range<Q8, 4>;
    case 5: return v1_range<Q8, 5>;
    case 6: return v1_range<Q8, 6>;
    case 7: return v1_range<Q8, 7>;
    default: return v1_range<Q8, 8>;
    }
  }
  switch (T) {
  case 1: return v2_range<Q8, 1>;
  case 2: return v2_range<Q8, 2>;
  case 3: return v2_range<Q8, 3>;
  default: return v2_range<Q8, 4>;
  }
}

// A whole matmul with variant V: activations prepared, token tiles of up to 8 (V1) or 4 (V2).
template <int V>
void run_v(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  const int64_t nb = a->k / 32;
  static thread_local std::vector<xq> xs;
  xs.resize((size_t)(a->n * nb));
  const bool q8 = a->w_type == AGLM_TYPE_Q8_0;
  for (int64_t t = 0; t < a->n; t++) prep_x((const char *)a->x + t * a->x_row_bytes, nb, q8 ? 128 : 8, xs.data() + t * nb);
  const int64_t p0 = r0 / 16, p1 = r1 / 16;
  const int tile = V == 1 ? 8 : 4;
  for (int64_t t0 = 0; t0 < a->n; t0 += tile) {
    const int T = (int)std::min<int64_t>(tile, a->n - t0);
    range_fn f = q8 ? pick<true, V>(T) : pick<false, V>(T);
    f(a, xs.data(), nb, t0, p0, p1);
  }
}

// ---- harness ------------------------------------------------------------------------------------------------------

uint64_t g_state = 88172645463325252ull;
float frand() {
  g_state ^= g_state << 13, g_state ^= g_state >> 7, g_state ^= g_state << 17;
  return (float)((g_state >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

typedef void (*matmul_fn)(const aglm_matmul_args *a, int64_t r0, int64_t r1);

double run_threads(matmul_fn fn, const aglm_matmul_args &a, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  if (threads == 1) fn(&a, 0, a.m);
  else {
    std::vector<std::thread> ts;
    const int64_t per = (a.m / threads + 15) / 16 * 16;
    for (int t = 0; t < threads; t++) {
      const int64_t r0 = std::min<int64_t>(a.m, t * per), r1 = t == threads - 1 ? a.m : std::min<int64_t>(a.m, r0 + per);
      ts.emplace_back([&, r0, r1] { fn(&a, r0, r1); });
    }
    for (auto &t : ts) t.join();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void amx_packed(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx::matmul_packed(a, r0, r1); }

} // namespace

int main(int argc, char **argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 9;
  const int types[] = {AGLM_TYPE_Q4_0, AGLM_TYPE_Q8_0};
  const int64_t shapes[][2] = {{2048, 5632}, {5632, 2048}};
  const int ns[] = {1, 2, 4, 8};
  const char *names[] = {"avx512", "amx-pk", "v1", "v2"};
  const matmul_fn fns[] = {aglm_kernels_avx512.matmul, amx_packed, run_v<1>, run_v<2>};
  const bool packed[] = {false, true, true, true};
  const int nf = 4, copies = 24;
  printf("%d thread(s), median of %d, ms per call\n", threads, reps);
  for (int type : types)
    for (const auto &s : shapes)
      for (int n : ns) {
        const int64_t k = s[0], m = s[1];
        const size_t row = aglm_row_bytes(type, k), xrow = aglm_row_bytes(AGLM_TYPE_Q8_0, k);
        std::vector<float> f(k);
        std::vector<std::vector<char>> w(copies, std::vector<char>(row * m)), wp(copies);
        for (int64_t r = 0; r < m; r++) {
          for (float &v : f) v = frand();
          aglm_quantize_row(type, f.data(), w[0].data() + r * row, k);
        }
        for (int c = 0; c < copies; c++) {
          if (c) w[c] = w[0];
          wp[c].resize(aglm_amx::repack_size(type, m, k) + 64);
          aglm_amx::repack(type, w[c].data(), wp[c].data(), m, k);
        }
        std::vector<char> x(xrow * n);
        for (int t = 0; t < n; t++) {
          for (float &v : f) v = frand() * 3;
          aglm_kernels_ref.quantize_row_q8_0(f.data(), x.data() + t * xrow, k);
        }
        std::vector<std::vector<float>> y(nf, std::vector<float>(n * m));
        auto args = [&](int fi, int c) {
          aglm_matmul_args a{};
          a.w = packed[fi] ? (const void *)wp[c].data() : (const void *)w[c].data();
          a.w_row_bytes = row, a.w_type = type, a.x = x.data(), a.x_row_bytes = xrow, a.y = y[fi].data(), a.y_stride = m;
          a.n = n, a.k = k, a.m = m, a.w_packed = packed[fi];
          return a;
        };
        std::vector<std::vector<double>> ts(nf);
        for (int fi = 0; fi < nf; fi++) run_threads(fns[fi], args(fi, 0), threads);
        double worst = 0;
        for (int fi = 1; fi < nf; fi++)
          for (size_t i = 0; i < y[0].size(); i++) worst = std::max(worst, (double)fabsf(y[fi][i] - y[0][i]) / (fabsf(y[0][i]) + 1));
        for (int r = 0; r < reps; r++)
          for (int fi = 0; fi < nf; fi++) ts[fi].push_back(run_threads(fns[fi], args(fi, (r * nf + fi + 1) % copies), threads));
        printf("%s %5lldx%-5lld n=%d:", type == AGLM_TYPE_Q4_0 ? "Q4_0" : "Q8_0", (long long)k, (long long)m, n);
        for (int fi = 0; fi < nf; fi++) {
          std::sort(ts[fi].begin(), ts[fi].end());
          printf("  %s %.3f", names[fi], ts[fi][ts[fi].size() / 2] * 1e3);
        }
        printf("  (max rel diff %.2g)\n", worst);
      }
  return 0;
}
