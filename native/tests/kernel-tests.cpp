// The kernel test program: the scalar reference against definitions, then every CPU variant this machine can run
// against the reference. Prints one line per check and ends with "N passed, M failed"; exits 1 on any failure.
//
// Tolerances (|variant - ref| must not exceed them; "exact" means bit-identical):
//   quantize_row_q8_0, dequantize_row, add, mul, rope ............. exact (same IEEE operations in the same order)
//   matmul F32/F16/BF16 ........................................... 1e-5 * sum_i |w_i x_i|   (float dot, any order)
//   matmul Q8_0/Q4_0, random scales ............................... 1e-5 * sum_b |d_w d_x| sum_i |w_i x_i|
//   matmul Q8_0/Q4_0, unit scales (d = 1), k <= 256 ................ exact (integer sums, every partial sum < 2^24)
//   rms_norm ...................................................... 1e-6 * |ref|  (only the double sum order differs)
//   silu_mul ...................................................... 1e-6 * |ref| + 1e-37 (vector expf within ~2 ulp)
//   attention ..................................................... 1e-5 * max_j |v_j|  (out is a convex mix of v)
// The reference itself is checked against double-precision definitions with the same kinds of bounds.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "backends/cpu/cpu-features.h"
#include "backends/cpu/cpu-variants.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#if defined(__x86_64__)
#include "kernels/x86-avx512/avx512-internal.h"
#endif

namespace {

int g_passed = 0, g_failed = 0;

void check(bool ok, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("%s %s\n", ok ? "PASS" : "FAIL", msg);
  (ok ? g_passed : g_failed)++;
}

// splitmix64: fixed seeds, identical streams on every machine.
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next() >> 40) * (1.0 / 16777216.0)); }
  int range(int lo, int hi) { return lo + (int)(next() % (uint64_t)(hi - lo + 1)); }
};

std::vector<float> random_floats(rng &r, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float &f : v) f = r.uniform(lo, hi);
  return v;
}

bool same_bits_or_nan(float a, float b) { return aglm_fp32_bits(a) == aglm_fp32_bits(b) || (a != a && b != b); }

double fp16_definition(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const double v = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024.0 + m, e - 25);
  return s ? -v : v;
}

// ---- reference vs definitions -------------------------------------------------------------------------------

void test_fp16_patterns() {
  int bad_value = 0, bad_trip = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    const float f = aglm_fp16_to_fp32((aglm_fp16_t)h);
    const double want = fp16_definition((uint16_t)h);
    if (!((double)f == want || (f != f && want != want))) bad_value++;
    const aglm_fp16_t back = aglm_fp32_to_fp16(f);
    const bool nan = ((h >> 10) & 31) == 31 && (h & 1023);
    if (nan ? (back & 0x7c00) != 0x7c00 || !(back & 0x3ff) || (back & 0x8000) != (h & 0x8000) : back != h) bad_trip++;
  }
  check(bad_value == 0, "ref fp16->fp32 matches the IEEE definition for all 65536 patterns (%d wrong)", bad_value);
  check(bad_trip == 0, "ref fp16->fp32->fp16 round-trips all 65536 patterns, NaN stays NaN (%d wrong)", bad_trip);
}

// Midpoints between neighbouring halves round to the even one; one float ulp either side rounds to the nearer one.
void test_fp16_ties() {
  int bad = 0;
  for (uint32_t h = 0; h < 0x7bff; h++) {
    for (int sign = 0; sign < 2; sign++) {
      const uint16_t s = sign ? 0x8000 : 0, lo = (uint16_t)(h | s), hi = (uint16_t)((h + 1) | s);
      const float mid = (float)((fp16_definition(lo) + fp16_definition(hi)) / 2);
      const float away = sign ? -INFINITY : INFINITY;
      if (aglm_fp32_to_fp16(mid) != ((h & 1) ? hi : lo)) bad++;
      if (aglm_fp32_to_fp16(nextafterf(mid, away)) != hi) bad++;
      if (aglm_fp32_to_fp16(nextafterf(mid, 0.0f)) != lo) bad++;
    }
  }
  check(bad == 0, "ref fp32->fp16 rounds every midpoint to even and its float neighbours to nearest (%d wrong)", bad);
  const bool edges = aglm_fp32_to_fp16(65519.99f) == 0x7bff && aglm_fp32_to_fp16(65520.0f) == 0x7c00 &&
                     aglm_fp32_to_fp16(-1e6f) == 0xfc00 && aglm_fp32_to_fp16(INFINITY) == 0x7c00 &&
                     aglm_fp32_to_fp16(ldexpf(1.0f, -25)) == 0 &&
                     aglm_fp32_to_fp16(nextafterf(ldexpf(1.0f, -25), 1.0f)) == 1 &&
                     aglm_fp32_to_fp16(ldexpf(3.0f, -25)) == 2 && aglm_fp32_to_fp16(1e-10f) == 0 &&
                     aglm_fp32_to_fp16(-0.0f) == 0x8000 && aglm_fp32_to_fp16(ldexpf(1023.5f, -24)) == 0x400 &&
                     (aglm_fp32_to_fp16(NAN) & 0x7fff) > 0x7c00 &&
                     (aglm_fp32_to_fp16(aglm_fp32_from_bits(0x7f800001u)) & 0x7fff) > 0x7c00;
  check(edges, "ref fp32->fp16 overflow to inf, underflow to 0, subnormal ties, sNaN stays NaN");
}

// Nearest bf16 by comparing distances in double; ties to the even pattern.
uint16_t bf16_definition(float f) {
  const uint32_t x = aglm_fp32_bits(f);
  const uint16_t lo = (uint16_t)(x >> 16), hi = (uint16_t)(lo + 1);
  const double hv = (hi & 0x7fff) == 0x7f80 ? ldexp(hi & 0x8000 ? -1.0 : 1.0, 128) : aglm_bf16_to_fp32(hi); // inf: 2^128
  const double dl = fabs((double)f - (double)aglm_bf16_to_fp32(lo));
  const double dh = fabs(hv - (double)f);
  if (dl != dh) return dl < dh ? lo : hi;
  return (lo & 1) ? hi : lo;
}

void test_bf16() {
  rng r(11);
  int bad = 0;
  for (int i = 0; i < 2000000; i++) {
    const uint32_t bits = (uint32_t)r.next() & 0xff7fffffu; // exponent < 255 (finite)
    const float f = aglm_fp32_from_bits(bits);
    if (aglm_fp32_to_bf16(f) != bf16_definition(f)) bad++;
  }
  for (uint32_t h = 0; h < 65536; h++) {
    const float f = aglm_bf16_to_fp32((aglm_bf16_t)h);
    if (f == f && aglm_fp32_to_bf16(f) != h) bad++;
  }
  check(bad == 0, "ref fp32->bf16 rounds to nearest even (2M random floats) and round-trips all bf16 (%d wrong)", bad);
  const uint32_t nans[] = {0x7f800001u, 0x7fc00000u, 0xff800001u, 0x7fffffffu, 0x7f80ffffu};
  bool ok = aglm_fp32_to_bf16(INFINITY) == 0x7f80 && aglm_fp32_to_bf16(3.4028235e38f) == 0x7f80 &&
            aglm_fp32_to_bf16(aglm_fp32_from_bits(0x3f808000u)) == 0x3f80 &&
            aglm_fp32_to_bf16(aglm_fp32_from_bits(0x3f818000u)) == 0x3f82;
  for (uint32_t n : nans) {
    const float b = aglm_bf16_to_fp32(aglm_fp32_to_bf16(aglm_fp32_from_bits(n)));
    ok = ok && b != b;
  }
  check(ok, "ref fp32->bf16 edge cases: inf, overflow to inf, ties, NaN (incl. signalling) stays NaN");
}

void test_type_tables() {
  const int types[] = {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q4_0, AGLM_TYPE_Q4_1, AGLM_TYPE_Q5_0,
                       AGLM_TYPE_Q5_1, AGLM_TYPE_Q8_0, AGLM_TYPE_Q8_1, AGLM_TYPE_Q2_K, AGLM_TYPE_Q3_K, AGLM_TYPE_Q4_K,
                       AGLM_TYPE_Q5_K, AGLM_TYPE_Q6_K, AGLM_TYPE_Q8_K};
  const size_t sizes[][2] = {{1, 4},    {1, 2},    {1, 2},    {32, 18},  {32, 20},  {32, 22},  {32, 24}, {32, 34},
                             {32, 36},  {256, 84}, {256, 110}, {256, 144}, {256, 176}, {256, 210}, {256, 292}};
  bool ok = aglm_type_block_size(4) == 0 && aglm_type_block_bytes(99) == 0;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    ok = ok && aglm_type_block_size(types[i]) == sizes[i][0] && aglm_type_block_bytes(types[i]) == sizes[i][1];
  check(ok, "ref block sizes and bytes for every aglm_type (llama.cpp layouts)");
  std::vector<float> x(64, 1.0f), y(64);
  std::vector<uint8_t> buf(512);
  ok = aglm_row_bytes(AGLM_TYPE_Q8_0, 64) == 68 && aglm_row_bytes(AGLM_TYPE_Q4_K, 512) == 288 &&
       aglm_row_bytes(AGLM_TYPE_Q8_0, 40) == 0 && aglm_row_bytes(AGLM_TYPE_F16, 7) == 14 &&
       aglm_quantize_row(AGLM_TYPE_Q4_0, x.data(), buf.data(), 64) == 36 &&
       aglm_quantize_row(AGLM_TYPE_Q8_0, x.data(), buf.data(), 40) == 0 &&
       aglm_quantize_row(AGLM_TYPE_Q4_K, x.data(), buf.data(), 256) == 0 &&
       aglm_quantize_row(AGLM_TYPE_BF16, x.data(), buf.data(), 5) == 10 &&
       aglm_dequantize_row(AGLM_TYPE_Q4_0, buf.data(), y.data(), 64) == 1 &&
       aglm_dequantize_row(AGLM_TYPE_Q5_0, buf.data(), y.data(), 64) == 0 &&
       aglm_dequantize_row(AGLM_TYPE_Q8_0, buf.data(), y.data(), 33) == 0;
  check(ok, "ref row_bytes / quantize_row / dequantize_row sizes and unsupported-type results");
}

// Rows with varied scales plus blocks that stress the rules: zeros, ties at d = 1, tiny values, inf, NaN.
std::vector<float> quant_test_row(rng &r, int64_t k) {
  std::vector<float> x(k);
  for (int64_t i = 0; i < k; i++) x[i] = r.uniform(-1, 1) * (i / 32 % 3 == 0 ? 1e-3f : i / 32 % 3 == 1 ? 1.0f : 500.0f);
  return x;
}

void quant_special_blocks(std::vector<float> &x) { // needs x.size() >= 192
  for (int j = 0; j < 32; j++) x[j] = 0.0f;
  const float ties[8] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, 126.5f, -126.5f};
  for (int j = 0; j < 32; j++) x[32 + j] = ties[j % 8] + (j >= 8 ? (float)(j % 3) : 0.0f) * (j % 2 ? 1 : -1);
  x[32] = 127.0f;
  for (int j = 0; j < 32; j++) x[64 + j] = 1e-40f * (float)(j - 16);
  for (int j = 0; j < 32; j++) x[96 + j] = (float)(j - 16);
  x[100] = INFINITY;
  for (int j = 0; j < 32; j++) x[128 + j] = (float)(j - 10) * 0.25f;
  x[130] = NAN;
  for (int j = 0; j < 32; j++) x[160 + j] = j == 7 ? -3.0f : (float)(j % 7) * 0.4f; // negative max for Q4_0
}

void test_q8_0_definition() {
  rng r(21);
  const int64_t k = 32 * 40;
  std::vector<float> x = quant_test_row(r, k);
  quant_special_blocks(x);
  std::vector<aglm_block_q8_0> q(k / 32);
  aglm_kernels_ref.quantize_row_q8_0(x.data(), q.data(), k);
  int bad_bits = 0, bad_err = 0;
  for (int64_t b = 0; b < k / 32; b++) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fabsf(x[b * 32 + j]) > amax ? fabsf(x[b * 32 + j]) : amax;
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f, ds = aglm_fp16_to_fp32(q[b].d);
    if (q[b].d != aglm_fp32_to_fp16(d)) bad_bits++;
    for (int j = 0; j < 32; j++) {
      const float v = x[b * 32 + j], p = v * id;
      const int want = p != p ? 0 : p > 127.0f ? 127 : p < -127.0f ? -127 : (int)roundf(p);
      if (q[b].qs[j] != want) bad_bits++;
      // |x - q d_stored| <= d/2 (rounding) + 127 |d - d_stored| (the fp16 rounding of d) + float slack
      const double err = fabs((double)v - (double)q[b].qs[j] * ds);
      if (isfinite(v) && isfinite(d) && err > 0.5 * d + 127.0 * fabs((double)d - ds) + 1e-6 * fabs(v) + 1e-45) bad_err++;
    }
  }
  check(bad_bits == 0 && q[1].qs[1] == 3 && q[1].qs[2] == -3 && q[1].qs[3] == 1,
        "ref quantize Q8_0 = llama.cpp rule (d = amax/127 as fp16, q = roundf(x/d), ties away, in [-127, 127]; %d wrong)", bad_bits);
  check(bad_err == 0, "ref Q8_0 round trip |x - q d| <= d/2 + 127 |d - fp16(d)| (%d over)", bad_err);
}

void test_q4_0_definition() {
  rng r(22);
  const int64_t k = 32 * 40;
  std::vector<float> x = quant_test_row(r, k);
  quant_special_blocks(x);
  std::vector<aglm_block_q4_0> q(k / 32);
  std::vector<float> y(k);
  aglm_quantize_row(AGLM_TYPE_Q4_0, x.data(), q.data(), k);
  aglm_dequantize_row(AGLM_TYPE_Q4_0, q.data(), y.data(), k);
  int bad_bits = 0, bad_err = 0;
  for (int64_t b = 0; b < k / 32; b++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
      if (amax < fabsf(x[b * 32 + j])) amax = fabsf(x[b * 32 + j]), max = x[b * 32 + j];
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f, ds = aglm_fp16_to_fp32(q[b].d);
    if (q[b].d != aglm_fp32_to_fp16(d)) bad_bits++;
    for (int j = 0; j < 32; j++) {
      const float v = x[b * 32 + j], p = v * id + 8.5f;
      const int want = !(p > 0.0f) ? 0 : p >= 15.0f ? 15 : (int)p;
      const int got = j < 16 ? q[b].qs[j] & 15 : q[b].qs[j - 16] >> 4;
      if (got != want) bad_bits++;
      // |x - (q-8) d_stored| <= |d|/2, or |d| where q clamps to 15, + 8 |d - d_stored| + float slack
      const double lim = (v * id < 7.5f ? 0.5 : 1.0) * fabs(d) + 8.0 * fabs((double)d - ds) + 1e-6 * fabs(v) + 1e-45;
      if (isfinite(v) && isfinite(d) && fabs((double)v - (double)y[b * 32 + j]) > lim) bad_err++;
    }
  }
  check(bad_bits == 0, "ref quantize Q4_0 = llama.cpp rule (d = max/-8, q = min(15, (int8)(x/d + 8.5)), nibbles j|j+16; "
                       "%d wrong)", bad_bits);
  check(bad_err == 0, "ref Q4_0 round trip |x - (q-8) d| <= |d|/2 (|d| where clamped) + 8 |d - fp16(d)| (%d over)",
        bad_err);
}

// ---- hand-computed cases ------------------------------------------------------------------------------------

aglm_matmul_args matmul_args(int type, const void *w, size_t wrb, const void *x, size_t xrb, float *y, int64_t ys,
                             int64_t n, int64_t k, int64_t m) {
  aglm_matmul_args a;
  a.w = w, a.w_row_bytes = wrb, a.w_type = type, a.x = x, a.x_row_bytes = xrb, a.y = y, a.y_stride = ys;
  a.n = n, a.k = k, a.m = m;
  return a;
}

void test_hand_matmul(const aglm_kernels *K) {
  const float w[6] = {1, 2, 3, 4, 5, 6}, x[6] = {1, 0, -1, 0.5f, 0.25f, 2};
  uint16_t w16[6], wb[6];
  for (int i = 0; i < 6; i++) w16[i] = aglm_fp32_to_fp16(w[i]), wb[i] = aglm_fp32_to_bf16(w[i]);
  bool ok = true;
  const void *ws[3] = {w, w16, wb};
  const int ts[3] = {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16};
  for (int i = 0; i < 3; i++) {
    float y[4] = {0};
    aglm_matmul_args a = matmul_args(ts[i], ws[i], 3 * (i ? 2 : 4), x, 12, y, 2, 2, 3, 2);
    K->matmul(&a, 0, 2);
    ok = ok && y[0] == -2 && y[1] == -2 && y[2] == 7 && y[3] == 15.25f;
  }
  aglm_block_q8_0 wq, xq;
  aglm_block_q4_0 w4;
  wq.d = 0x3c00, xq.d = aglm_fp32_to_fp16(0.5f), w4.d = aglm_fp32_to_fp16(2.0f);
  for (int j = 0; j < 32; j++) wq.qs[j] = (int8_t)(j + 1), xq.qs[j] = 2;
  for (int j = 0; j < 16; j++) w4.qs[j] = (uint8_t)(j | (15 - j) << 4); // values j-8 and 7-j
  float y = 0;
  aglm_matmul_args a = matmul_args(AGLM_TYPE_Q8_0, &wq, 34, &xq, 34, &y, 1, 1, 32, 1);
  K->matmul(&a, 0, 1);
  ok = ok && y == 528.0f; // sum (j+1) * 2 * 0.5
  a = matmul_args(AGLM_TYPE_Q4_0, &w4, 18, &xq, 34, &y, 1, 1, 32, 1);
  K->matmul(&a, 0, 1);
  ok = ok && y == -32.0f; // sum_j ((j-8) + (7-j)) * 2 * 2 * 0.5
  check(ok, "%s matmul hand cases: F32/F16/BF16 2x3, Q8_0 sum = 528, Q4_0 sum = -32", K->name);
}

void test_hand_ops(const aglm_kernels *K) {
  // attention: scores (0, ln 3) -> p = (1/4, 3/4); out = p0 (4, 0) + p1 (0, 8) = (1, 6)
  const float q[2] = {1, 0}, k[4] = {0, 0, logf(3.0f), 0}, v[4] = {4, 0, 0, 8};
  float out[2], scratch[2];
  const int32_t n_kv[1] = {2};
  aglm_attn_args at = {q, 2, k, v, 2, out, 2, n_kv, 1, 1, 2, 1.0f};
  K->attention(&at, 0, 0, scratch);
  check(fabsf(out[0] - 1) < 1e-6f && fabsf(out[1] - 6) < 1e-5f, "%s attention hand case (1, 6): got (%g, %g)",
        K->name, out[0], out[1]);
  // rope: 90 degrees; normal pairs (x0,x1), neox pairs (x0,x2),(x1,x3); dims past n_rot untouched
  float xn[6] = {1, 2, 3, 4, 5, 6}, xx[6] = {1, 2, 3, 4, 5, 6};
  const float cs[4] = {0, 1, 0, 1};
  K->rope(xn, 1, 6, 4, cs, 0);
  K->rope(xx, 1, 6, 4, cs, 2);
  const float wn[6] = {-2, 1, -4, 3, 5, 6}, wx[6] = {-3, -4, 1, 2, 5, 6};
  check(memcmp(xn, wn, sizeof xn) == 0 && memcmp(xx, wx, sizeof xx) == 0, "%s rope hand cases (normal, neox, n_rot < "
        "head_dim)", K->name);
  // rms_norm: x = (3, 4), mean square 12.5
  const float xr[2] = {3, 4}, wr[2] = {1, 2};
  float yr[2];
  K->rms_norm(xr, wr, yr, 2, 0.0f);
  const float s = 1.0f / sqrtf(12.5f);
  check(fabsf(yr[0] - 3 * s) < 1e-6f && fabsf(yr[1] - 8 * s) < 1e-6f, "%s rms_norm hand case", K->name);
  const float g[3] = {0, 20, -20}, u[3] = {5, 2, 1};
  float ys[3];
  K->silu_mul(g, u, ys, 3);
  check(ys[0] == 0 && fabsf(ys[1] - 40) < 1e-5f && fabsf(ys[2] + 20 * expf(-20)) < 1e-12f, "%s silu_mul hand case",
        K->name);
}

// ---- reference vs double-precision definitions --------------------------------------------------------------

// |ref - exact| for a float matmul is within 1e-5 of sum |terms|.
void test_ref_matmul_definition() {
  rng r(31);
  const int64_t n = 3, k = 1000, m = 9;
  std::vector<float> w = random_floats(r, m * k, -1, 1), x = random_floats(r, n * k, -1, 1), y(n * m);
  aglm_matmul_args a = matmul_args(AGLM_TYPE_F32, w.data(), k * 4, x.data(), k * 4, y.data(), m, n, k, m);
  aglm_kernels_ref.matmul(&a, 0, m);
  double worst = 0;
  for (int64_t t = 0; t < n; t++)
    for (int64_t i = 0; i < m; i++) {
      double exact = 0, mag = 0;
      for (int64_t c = 0; c < k; c++) exact += (double)w[i * k + c] * x[t * k + c], mag += fabs(w[i * k + c] * x[t * k + c]);
      worst = fmax(worst, fabs(y[t * m + i] - exact) / (1e-5 * mag));
    }
  check(worst <= 1.0, "ref matmul F32 vs double definition (max err/tol %.3g)", worst);
}

void test_ref_attention_definition() {
  rng r(32);
  const int64_t hd = 64, n = 50;
  std::vector<float> q = random_floats(r, hd, -2, 2), k = random_floats(r, n * hd, -2, 2),
                     v = random_floats(r, n * hd, -1, 1), out(hd), scratch(n);
  const int32_t n_kv[1] = {(int32_t)n};
  aglm_attn_args at = {q.data(), hd, k.data(), v.data(), hd, out.data(), hd, n_kv, 1, 1, hd, 0.125f};
  aglm_kernels_ref.attention(&at, 0, 0, scratch.data());
  std::vector<double> s(n);
  double max = -1e300, sum = 0, worst = 0;
  for (int64_t j = 0; j < n; j++) {
    s[j] = 0;
    for (int64_t d = 0; d < hd; d++) s[j] += (double)q[d] * k[j * hd + d];
    s[j] *= 0.125;
    max = fmax(max, s[j]);
  }
  for (int64_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - max));
  for (int64_t d = 0; d < hd; d++) {
    double o = 0;
    for (int64_t j = 0; j < n; j++) o += s[j] / sum * v[j * hd + d];
    worst = fmax(worst, fabs(o - out[d]) / 1e-5);
  }
  check(worst <= 1.0, "ref attention vs double definition (max err/tol %.3g)", worst);
}

// ---- variant vs reference ------------------------------------------------------------------------------------

void test_quantize(const aglm_kernels *K) {
  rng r(41);
  for (int64_t k : {32, 64, 96, 192, 4096}) {
    std::vector<float> x = quant_test_row(r, k);
    if (k >= 192) quant_special_blocks(x);
    std::vector<uint8_t> want(k / 32 * 34), got(k / 32 * 34, 0xAA);
    aglm_kernels_ref.quantize_row_q8_0(x.data(), want.data(), k);
    K->quantize_row_q8_0(x.data(), got.data(), k);
    check(want == got, "%s quantize_row_q8_0 k=%lld exact%s", K->name, (long long)k,
          k >= 192 ? " (zeros, ties, tiny, inf, NaN blocks)" : "");
  }
}

void test_dequantize(const aglm_kernels *K) {
  rng r(42);
  const int types[] = {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0};
  for (int type : types) {
    const bool quant = aglm_type_block_size(type) == 32;
    std::vector<long long> ks = quant ? std::vector<long long>{32, 96, 4096, 40} : std::vector<long long>{1, 15, 16, 17, 100, 4096};
    int bad = 0;
    for (long long k : ks) {
      const long long kq = quant ? k / 32 * 32 : k;
      std::vector<uint8_t> src(aglm_row_bytes(type, kq) + 34);
      for (uint8_t &b : src) b = (uint8_t)r.next();
      if (quant) // keep the fp16 scales finite
        for (long long b = 0; b < kq / 32; b++) src[b * aglm_type_block_bytes(type) + 1] &= 0x3b;
      std::vector<float> want(k, 7.0f), got(k, 9.0f);
      aglm_kernels_ref.dequantize_row(type, src.data(), want.data(), k);
      K->dequantize_row(type, src.data(), got.data(), k);
      for (long long i = 0; i < k; i++) bad += !same_bits_or_nan(want[i], got[i]);
    }
    check(bad == 0, "%s dequantize_row type %d exact (k %s; %d wrong)", K->name, type,
          quant ? "32, 96, 4096, 40 (partial block -> 0)" : "1, 15, 16, 17, 100, 4096", bad);
  }
}

// A weight matrix of `type` [m][k] with row padding, and the activation rows [n][k] the matmul wants.
struct matmul_case {
  int type;
  int64_t n, k, m, ys;
  size_t wrb, xrb;
  std::vector<uint8_t> w, x;
  std::vector<float> wf;  // dequantized weights [m][k]
  std::vector<float> xf;  // activations as floats [n][k] (dequantized Q8_0 where quantized)
  std::vector<float> dxs; // Q8_0 activation scales [n][k/32]
};

void matmul_case_fill(matmul_case &c, rng &r, bool unit_scales) {
  const bool quant = c.type == AGLM_TYPE_Q8_0 || c.type == AGLM_TYPE_Q4_0;
  c.wrb = aglm_row_bytes(c.type, c.k) + 8;
  c.xrb = quant ? aglm_row_bytes(AGLM_TYPE_Q8_0, c.k) + 4 : (size_t)c.k * 4 + 12;
  // The last rows end exactly at the end of their buffers, so an over-read shows up under AddressSanitizer.
  const size_t x_bytes = quant ? aglm_row_bytes(AGLM_TYPE_Q8_0, c.k) : (size_t)c.k * 4;
  c.w.assign(c.wrb * (c.m - 1) + aglm_row_bytes(c.type, c.k), 0), c.x.assign(c.xrb * (c.n - 1) + x_bytes, 0);
  c.wf.resize(c.m * c.k), c.xf.resize(c.n * c.k);
  for (int64_t i = 0; i < c.m; i++) {
    std::vector<float> row = random_floats(r, c.k, -1, 1);
    for (int64_t j = 0; j < c.k; j++) row[j] *= (j / 32 % 2) ? 1.0f : 0.01f;
    uint8_t *dst = c.w.data() + i * c.wrb;
    aglm_quantize_row(c.type, row.data(), dst, c.k);
    if (unit_scales)
      for (int64_t b = 0; b < c.k / 32; b++) {
        aglm_fp16_t one = 0x3c00;
        uint8_t *blk = dst + b * aglm_type_block_bytes(c.type);
        memcpy(blk, &one, 2);
        if (c.type == AGLM_TYPE_Q8_0) for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)r.range(0, 255); // incl. -128
      }
    aglm_dequantize_row(c.type, dst, c.wf.data() + i * c.k, c.k);
  }
  for (int64_t t = 0; t < c.n; t++) {
    std::vector<float> row = random_floats(r, c.k, -3, 3);
    uint8_t *dst = c.x.data() + t * c.xrb;
    if (!quant) {
      memcpy(dst, row.data(), c.k * 4);
      memcpy(c.xf.data() + t * c.k, row.data(), c.k * 4);
      continue;
    }
    aglm_kernels_ref.quantize_row_q8_0(row.data(), dst, c.k);
    if (unit_scales)
      for (int64_t b = 0; b < c.k / 32; b++) {
        aglm_fp16_t one = 0x3c00;
        memcpy(dst + b * 34, &one, 2);
      }
    aglm_dequantize_row(AGLM_TYPE_Q8_0, dst, c.xf.data() + t * c.k, c.k);
  }
}

// Tolerance of output (t, i): 1e-5 * sum |w x| (quantized: of the dequantized values, i.e. sum_b |d_w d_x| sum |q q|).
double matmul_tolerance(const matmul_case &c, int64_t t, int64_t i) {
  double mag = 0;
  for (int64_t j = 0; j < c.k; j++) mag += fabs((double)c.wf[i * c.k + j] * c.xf[t * c.k + j]);
  return 1e-5 * mag + 1e-30;
}

// Runs ref and K over rows [r0, r1) and returns the worst err/tol (exact: any difference counts as infinite);
// *canary_ok is cleared if anything outside [r0, r1) or the stride padding was written.
double matmul_compare(const aglm_kernels *K, const matmul_case &c, int64_t r0, int64_t r1, bool exact, bool *canary_ok) {
  const float canary = -12345.0f;
  std::vector<float> want(c.n * c.ys, canary), got(c.n * c.ys, canary);
  aglm_matmul_args a = matmul_args(c.type, c.w.data(), c.wrb, c.x.data(), c.xrb, want.data(), c.ys, c.n, c.k, c.m);
  aglm_kernels_ref.matmul(&a, r0, r1);
  a.y = got.data();
  K->matmul(&a, r0, r1);
  double worst = 0;
  for (int64_t t = 0; t < c.n; t++)
    for (int64_t i = 0; i < c.ys; i++) {
      const float wv = want[t * c.ys + i], gv = got[t * c.ys + i];
      if (i < r0 || i >= r1) {
        if (gv != canary || wv != canary) *canary_ok = false;
        continue;
      }
      const double err = fabs((double)wv - gv);
      worst = fmax(worst, exact ? (err == 0 ? 0 : INFINITY) : err / matmul_tolerance(c, t, i));
    }
  return worst;
}

const char *type_name(int type) {
  switch (type) {
  case AGLM_TYPE_F32: return "F32";
  case AGLM_TYPE_F16: return "F16";
  case AGLM_TYPE_BF16: return "BF16";
  case AGLM_TYPE_Q8_0: return "Q8_0";
  default: return "Q4_0";
  }
}

void test_matmul_type(const aglm_kernels *K, int type, rng &r) {
  const bool quant = type == AGLM_TYPE_Q8_0 || type == AGLM_TYPE_Q4_0;
  const std::vector<int64_t> ks = quant ? std::vector<int64_t>{32, 64, 96, 288, 800, 4096}
                                        : std::vector<int64_t>{1, 7, 16, 17, 100, 333, 1024, 4096};
  for (int64_t k : ks) {
    double worst = 0;
    bool canary_ok = true;
    for (int64_t n : {1, 3, 7, 16})
      for (int64_t m : {1, 5, 37}) {
        matmul_case c;
        c.type = type, c.n = n, c.k = k, c.m = m, c.ys = m + 3;
        matmul_case_fill(c, r, false);
        worst = fmax(worst, matmul_compare(K, c, 0, m, false, &canary_ok));
        if (m == 37) worst = fmax(worst, matmul_compare(K, c, 3, 30, false, &canary_ok));
      }
    if (k == 4096) { // several token chunks (the variants pack/tile tokens in chunks of at most 64)
      matmul_case c;
      c.type = type, c.n = 75, c.k = k, c.m = 9, c.ys = 11;
      matmul_case_fill(c, r, false);
      worst = fmax(worst, matmul_compare(K, c, 1, 9, false, &canary_ok));
    }
    check(worst <= 1.0 && canary_ok, "%s matmul %s k=%lld n=1,3,7,16%s m=1,5,37 rows [0,m) and [3,30) (max err/tol %.3g%s)",
          K->name, type_name(type), (long long)k, k == 4096 ? " (and n=75)" : "", worst,
          canary_ok ? "" : ", wrote outside its rows");
  }
}

// Unit scales make every product an integer, so any summation order gives the same float: must be bit-exact.
void test_matmul_unit_scales(const aglm_kernels *K, int type, rng &r) {
  double worst = 0;
  bool canary_ok = true;
  for (int64_t k : {32, 96, 256})
    for (int64_t n : {1, 3, 7, 16}) {
      matmul_case c;
      c.type = type, c.n = n, c.k = k, c.m = 37, c.ys = 40;
      matmul_case_fill(c, r, true);
      worst = fmax(worst, matmul_compare(K, c, 0, 37, true, &canary_ok));
    }
  check(worst == 0 && canary_ok, "%s matmul %s unit scales k=32,96,256 n=1,3,7,16 bit-exact integer block sums",
        K->name, type_name(type));
}

void test_matmul_unsupported(const aglm_kernels *K) {
  uint8_t w[64] = {0};
  float x[32] = {0}, y[2] = {5.0f, 5.0f};
  aglm_matmul_args a = matmul_args(AGLM_TYPE_Q4_1, w, 20, x, 128, y, 1, 1, 32, 2);
  K->matmul(&a, 0, 2);
  check(y[0] == 5.0f && y[1] == 5.0f && K->matmul_act_type(AGLM_TYPE_Q4_1) == -1 &&
            K->matmul_act_type(AGLM_TYPE_Q4_0) == AGLM_TYPE_Q8_0 && K->matmul_act_type(AGLM_TYPE_BF16) == AGLM_TYPE_F32,
        "%s matmul_act_type and unsupported weight types (no-op)", K->name);
}

void test_rms_norm(const aglm_kernels *K) {
  rng r(51);
  double worst = 0;
  for (int64_t n : {1, 7, 16, 17, 100, 4096}) {
    std::vector<float> x = random_floats(r, n, -3, 3), w = random_floats(r, n, -2, 2), want(n), got(n);
    aglm_kernels_ref.rms_norm(x.data(), w.data(), want.data(), n, 1e-5f);
    K->rms_norm(x.data(), w.data(), got.data(), n, 1e-5f);
    K->rms_norm(x.data(), w.data(), x.data(), n, 1e-5f); // in place
    for (int64_t i = 0; i < n; i++) {
      worst = fmax(worst, fabs((double)want[i] - got[i]) / (1e-6 * fabs(want[i]) + 1e-37));
      worst = fmax(worst, got[i] == x[i] ? 0.0 : INFINITY);
    }
  }
  check(worst <= 1.0, "%s rms_norm n=1,7,16,17,100,4096 and in place (max err/tol %.3g)", K->name, worst);
}

void test_rope(const aglm_kernels *K) {
  rng r(52);
  bool ok = true;
  for (int mode : {0, 2})
    for (int64_t hd : {64, 128, 80}) {
      const int64_t n_rot = hd == 80 ? 32 : hd;
      std::vector<float> x = random_floats(r, 4 * hd, -2, 2), y = x, cs(n_rot);
      for (int64_t i = 0; i < n_rot / 2; i++) cs[2 * i] = cosf(0.3f * i), cs[2 * i + 1] = sinf(0.3f * i);
      aglm_kernels_ref.rope(x.data(), 4, hd, n_rot, cs.data(), mode);
      K->rope(y.data(), 4, hd, n_rot, cs.data(), mode);
      ok = ok && x == y;
    }
  check(ok, "%s rope modes 0/2, head_dim 64/128/80, n_rot = head_dim and 32 (exact)", K->name);
}

// n_head = 8 query heads over n_head_kv KV heads; one token per n_kv value.
double attention_compare(const aglm_kernels *K, rng &r, int64_t hd, int64_t n_head_kv) {
  const std::vector<int32_t> n_kv = {0, 1, 2, 3, 5, 17, 64, 100, 255, 300};
  const int64_t n_head = 8, nt = (int64_t)n_kv.size(), ctx = 300;
  const int64_t q_stride = n_head * hd + 5, kv_stride = n_head_kv * hd + 3;
  std::vector<float> q = random_floats(r, nt * q_stride, -2, 2), k = random_floats(r, ctx * kv_stride, -2, 2),
                     v = random_floats(r, ctx * kv_stride, -1, 1), want(nt * q_stride, 3.0f), got(nt * q_stride, 3.0f),
                     scratch(ctx);
  aglm_attn_args a = {q.data(), q_stride, k.data(), v.data(), kv_stride, want.data(), q_stride, n_kv.data(),
                      n_head, n_head_kv, hd, 1.0f / sqrtf((float)hd)};
  double worst = 0;
  for (int64_t t = 0; t < nt; t++)
    for (int64_t h = 0; h < n_head; h++) {
      a.out = want.data();
      aglm_kernels_ref.attention(&a, t, h, scratch.data());
      a.out = got.data();
      K->attention(&a, t, h, scratch.data());
    }
  for (int64_t i = 0; i < nt * q_stride; i++) { // max|v| = 1; a plain compare (GCC 12 aarch64 -O3 ICEs on fmax here)
    const double e = fabs((double)want[i] - got[i]) / 1e-5;
    worst = e > worst ? e : worst;
  }
  return worst;
}

void test_attention(const aglm_kernels *K) {
  rng r(53);
  for (int64_t hd : {4, 36, 64, 128, 200})
    for (int64_t n_head_kv : {8, 2, 1}) {
      const double worst = attention_compare(K, r, hd, n_head_kv);
      check(worst <= 1.0, "%s attention head_dim=%lld n_head=8 n_head_kv=%lld n_kv=0..300 (max err/tol %.3g)", K->name,
            (long long)hd, (long long)n_head_kv, worst);
    }
}

void test_silu_mul(const aglm_kernels *K) {
  rng r(54);
  double worst = 0;
  for (int64_t n : {1, 15, 16, 17, 1000}) {
    std::vector<float> g = random_floats(r, n, -20, 20), u = random_floats(r, n, -3, 3), want(n), got(n);
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 88.7f, -88.7f, 89.0f, -89.0f, 100.0f,
                             -100.0f, 1e4f, -1e4f, -87.5f, 87.5f, INFINITY, -INFINITY};
    if (n == 1000) memcpy(g.data(), special, sizeof special);
    aglm_kernels_ref.silu_mul(g.data(), u.data(), want.data(), n);
    K->silu_mul(g.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; i++)
      worst = fmax(worst, want[i] == got[i] ? 0.0 : fabs((double)want[i] - got[i]) / (1e-6 * fabs(want[i]) + 1e-37));
  }
  check(worst <= 1.0, "%s silu_mul n=1,15,16,17,1000 incl. +-0, +-88..100, +-inf (max err/tol %.3g)", K->name, worst);
}

void test_add_mul(const aglm_kernels *K) {
  rng r(55);
  bool ok = true;
  for (int64_t n : {1, 15, 16, 17, 1000}) {
    std::vector<float> a = random_floats(r, n, -5, 5), b = random_floats(r, n, -5, 5), w(n), g(n);
    aglm_kernels_ref.add(a.data(), b.data(), w.data(), n);
    K->add(a.data(), b.data(), g.data(), n);
    ok = ok && w == g;
    aglm_kernels_ref.mul(a.data(), b.data(), w.data(), n);
    K->mul(a.data(), b.data(), g.data(), n);
    ok = ok && w == g;
  }
  check(ok, "%s add and mul n=1,15,16,17,1000 (exact)", K->name);
}

void test_variant(const aglm_kernels *K) {
  test_hand_matmul(K);
  test_hand_ops(K);
  if (K == &aglm_kernels_ref) return;
  test_quantize(K);
  test_dequantize(K);
  rng r(61);
  for (int type : {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0}) test_matmul_type(K, type, r);
  test_matmul_unit_scales(K, AGLM_TYPE_Q8_0, r);
  test_matmul_unit_scales(K, AGLM_TYPE_Q4_0, r);
  test_matmul_unsupported(K);
  test_rms_norm(K);
  test_rope(K);
  test_attention(K);
  test_silu_mul(K);
  test_add_mul(K);
}

#if defined(__x86_64__)
// The avx512 table with its quantized matmul forced onto the AVX512BW (non-VNNI) object, so that path is tested on
// VNNI machines too.
void avx512_bw_matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0 || a->w_type == AGLM_TYPE_Q4_0) aglm_avx512::matmul_q(a, r0, r1);
  else aglm_kernels_avx512.matmul(a, r0, r1);
}

const aglm_kernels avx512_without_vnni = [] {
  aglm_kernels k = aglm_kernels_avx512;
  k.name = "avx512-no-vnni";
  k.matmul = avx512_bw_matmul;
  return k;
}();
#endif

// ---- CPU variant selection ------------------------------------------------------------------------------------

void test_selection() {
  aglm_cpu_features none;
  memset(&none, 0, sizeof none);
  const aglm_kernels *k = nullptr;
  char why[512];
  bool ok = aglm_cpu_select_for(&none, nullptr, &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_ref &&
            aglm_cpu_select_for(&none, "ref", &k, why, sizeof why) == AGLM_OK &&
            aglm_cpu_select_for(&none, "nope", &k, why, sizeof why) == AGLM_ERR_BACKEND_UNAVAILABLE &&
            strstr(why, "ref") != nullptr;
#if defined(__x86_64__)
  ok = ok && aglm_cpu_select_for(&none, "avx512", &k, why, sizeof why) == AGLM_ERR_BACKEND_UNAVAILABLE &&
       strstr(why, "avx512f") != nullptr && strstr(why, "avx2") != nullptr;
  aglm_cpu_features avx2 = none;
  avx2.avx = avx2.avx2 = avx2.fma = avx2.f16c = avx2.os_saves_avx = true;
  ok = ok && aglm_cpu_select_for(&avx2, "", &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_avx2;
  aglm_cpu_features all = avx2;
  all.avx512f = all.avx512bw = all.avx512vl = all.avx512dq = all.os_saves_avx512 = true;
  ok = ok && aglm_cpu_select_for(&all, nullptr, &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_avx512;
#endif
  check(ok, "cpu selection: best by score, forced names, unknown name and missing features refused");
  ok = aglm_cpu_select(nullptr, &k, why, sizeof why) == AGLM_OK;
  check(ok, "cpu selection on this machine: %s", why);
}

} // namespace

int main() {
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  char feats[512];
  aglm_cpu_features_string(&f, feats, sizeof feats);
  printf("cpu: %s / %s\nfeatures: %s\n", f.vendor, f.brand, feats);
  test_fp16_patterns();
  test_fp16_ties();
  test_bf16();
  test_type_tables();
  test_q8_0_definition();
  test_q4_0_definition();
  test_ref_matmul_definition();
  test_ref_attention_definition();
  test_selection();
  for (int i = 0; i < aglm_cpu_variant_count(); i++) {
    const aglm_cpu_variant *v = aglm_cpu_variant_at(i);
    if (v->score(&f) <= 0) {
      char missing[256];
      v->missing(&f, missing, sizeof missing);
      printf("SKIP %s: this CPU lacks %s\n", v->name, missing);
      continue;
    }
    test_variant(v->kernels);
#if defined(__x86_64__)
    if (v->kernels == &aglm_kernels_avx512 && f.avx512vnni) test_variant(&avx512_without_vnni);
#endif
  }
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
