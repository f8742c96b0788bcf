// The kernel test program: the scalar reference against definitions, then every CPU variant this machine can run
// against the reference. Prints one line per check and ends with "N passed, M failed"; exits 1 on any failure.
//
// Tolerances (|variant - ref| must not exceed them; "exact" means bit-identical):
//   quantize_row_q8_0, quantize_row_act, dequantize_row, add, mul, rope  exact (same IEEE operations in the same order)
//   matmul F32/F16/BF16 ........................................... 1e-5 * sum_i |w_i x_i|   (float dot, any order;
//                                                                   avx512 decoding F16/BF16: vs ref on f16-rounded x)
//   matmul Q8_0/Q4_0/Q5_0/Q6_K, random scales ..................... 1e-5 * sum_b |d_w d_x| sum_i |w_i x_i|
//   matmul Q4_1/Q5_1/Q4_K/Q5_K, random scales ..................... 1e-5 * sum_i (|a_i| + |b_i|) |x_i|, w = a - b (scale
//                                                                   part, min part: the terms before they cancel)
//   matmul Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, unit scales (d = 1), k <= 256 . exact (integer sums, every partial sum < 2^24)
//   matmul Q4_K/Q5_K/Q6_K, unit d, small sub-scales, k <= 768 ...... exact (sum of all term magnitudes < 2^24)
//   rms_norm ...................................................... 1e-6 * |ref|  (only the double sum order differs)
//   silu_mul ...................................................... 1e-6 * |ref| + 1e-37 (vector expf within ~2 ulp)
//   attention_group ............................................... 1e-5 * max_j |v_j|  (out is a convex mix of v)
// The reference itself is checked against double-precision definitions with the same kinds of bounds.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "backends/cpu/cpu-features.h"
#include "backends/cpu/cpu-variants.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref-kernels.h"
#if defined(__x86_64__)
#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-avx512/avx512-internal.h"

// amx-tiles-emulated.cpp (linked into this program only): the AMX matmul over a scalar model of the tile instructions.
namespace aglm_amx_test {
void matmul_tiles_emulated(const aglm_matmul_args *a, int64_t r0, int64_t r1);
int emulated_faults();
} // namespace aglm_amx_test
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
       aglm_quantize_row(AGLM_TYPE_Q2_K, x.data(), buf.data(), 256) == 0 &&
       aglm_quantize_row(AGLM_TYPE_Q4_K, x.data(), buf.data(), 256) == 144 &&
       aglm_quantize_row(AGLM_TYPE_Q4_K, x.data(), buf.data(), 64) == 0 &&
       aglm_quantize_row(AGLM_TYPE_Q5_1, x.data(), buf.data(), 64) == 48 &&
       aglm_quantize_row(AGLM_TYPE_BF16, x.data(), buf.data(), 5) == 10 &&
       aglm_dequantize_row(AGLM_TYPE_Q4_0, buf.data(), y.data(), 64) == 1 &&
       aglm_dequantize_row(AGLM_TYPE_Q5_0, buf.data(), y.data(), 64) == 1 &&
       aglm_dequantize_row(AGLM_TYPE_Q3_K, buf.data(), y.data(), 256) == 0 &&
       aglm_dequantize_row(AGLM_TYPE_Q6_K, buf.data(), y.data(), 64) == 0 &&
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
  a.w_packed = 0;
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
  aglm_attn_args at = {q, 2, k, v, 2, out, 2, n_kv, 1, 1, 2, 1.0f, AGLM_TYPE_F32, nullptr};
  K->attention_group(&at, 0, 0, scratch);
  check(fabsf(out[0] - 1) < 1e-6f && fabsf(out[1] - 6) < 1e-5f, "%s attention hand case (1, 6): got (%g, %g)",
        K->name, out[0], out[1]);
  // The same through a row list: cache rows 3 and 1 of 4 (the others hold values that would change the result).
  const float k4[8] = {9, 9, logf(3.0f), 0, 9, 9, 0, 0}, v4[8] = {-50, 50, 0, 8, 50, -50, 4, 0};
  const int32_t rows[2] = {3, 1};
  const int32_t *row_lists[1] = {rows};
  aglm_attn_args ar = {q, 2, k4, v4, 2, out, 2, n_kv, 1, 1, 2, 1.0f, AGLM_TYPE_F32, row_lists};
  K->attention_group(&ar, 0, 0, scratch);
  check(fabsf(out[0] - 1) < 1e-6f && fabsf(out[1] - 6) < 1e-5f, "%s attention hand case through rows {3, 1}: got (%g, %g)",
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
  aglm_attn_args at = {q.data(), hd, k.data(), v.data(), hd, out.data(), hd, n_kv, 1, 1, hd, 0.125f, AGLM_TYPE_F32, nullptr};
  aglm_ref::attention(&at, 0, 0, scratch.data());
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

// layer_norm and gelu (BERT) against double-precision definitions. layer_norm: within 1e-6 of |x^ w| + |mean scale
// w| + |b| (x^ = (x - mean) scale; the second term covers the float rounding of the mean). gelu: the tanh form
// 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)) in double, within (1e-6 + 2e-7 |2u|) |gelu| (exp of a rounded argument)
// + 1e-37.
// The mean of x and 1 / sqrt(variance + eps), in double (the definition layer_norm is held to).
void layer_norm_stats(const std::vector<float> &x, double eps, double *mean, double *scale) {
  const size_t n = x.size();
  double m = 0, var = 0;
  for (size_t i = 0; i < n; i++) m += (double)x[i];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) {
    const double d = (double)x[i] - m;
    var += d * d;
  }
  *mean = m;
  *scale = 1.0 / sqrt(var / (double)n + eps);
}

// aarch64 GCC 12's loop vectorizer crashes on this function (internal compiler error in vect_transform_reduction);
// it is a test of the reference, so it is simply not vectorized there.
#if defined(__GNUC__) && !defined(__clang__) && defined(__aarch64__)
__attribute__((optimize("no-tree-vectorize")))
#endif
void test_ref_norm_gelu_definition() {
  rng r(33);
  double worst_ln = 0, worst_g = 0;
  for (int64_t n : {1, 2, 7, 64, 1000}) {
    std::vector<float> x = random_floats(r, n, -3, 3), w = random_floats(r, n, -2, 2), b = random_floats(r, n, -1, 1), y(n);
    for (float &v : x) v += 5.0f; // an offset the mean has to remove
    aglm_kernels_ref.layer_norm(x.data(), w.data(), b.data(), y.data(), n, 1e-5f);
    double mean, scale;
    layer_norm_stats(x, 1e-5, &mean, &scale);
    for (int64_t i = 0; i < n; i++) {
      const double want = (x[i] - mean) * scale * w[i] + b[i];
      const double tol = 1e-6 * (fabs((x[i] - mean) * scale * w[i]) + fabs(mean * scale * w[i]) + fabs(b[i])) + 1e-30;
      worst_ln = fmax(worst_ln, fabs(want - y[i]) / tol);
    }
  }
  std::vector<float> g = random_floats(r, 2000, -12, 12);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 5.5f, -5.5f}) g.push_back(v);
  std::vector<float> gy(g.size());
  aglm_kernels_ref.gelu(g.data(), gy.data(), (int64_t)g.size());
  for (size_t i = 0; i < g.size(); i++) {
    const double x = g[i], u = 0.7978845608028654 * x * (1.0 + 0.044715 * x * x);
    const double want = x / (1.0 + exp(-2.0 * u)); // = 0.5 x (1 + tanh(u)), without its cancellation for x << 0
    worst_g = fmax(worst_g, fabs(want - gy[i]) / ((1e-6 + 2e-7 * fabs(2 * u)) * fabs(want) + 1e-37));
  }
  double worst_e = 0;
  std::vector<float> ey(g.size());
  aglm_kernels_ref.gelu_erf(g.data(), ey.data(), (int64_t)g.size());
  for (size_t i = 0; i < g.size(); i++) {
    const double x = g[i], want = 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    worst_e = fmax(worst_e, fabs(want - ey[i]) / (1e-6 * fabs(want) + 2e-7 * fabs(x) + 1e-37));
  }
  check(worst_e <= 1.0, "ref gelu_erf vs double erf definition, x in [-12, 12] and edges (max err/tol %.3g)", worst_e);
  check(worst_ln <= 1.0, "ref layer_norm vs double definition, n=1..1000, offset mean (max err/tol %.3g)", worst_ln);
  check(worst_g <= 1.0, "ref gelu vs double tanh definition, x in [-12, 12] and edges (max err/tol %.3g)", worst_g);
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
  // |scale part| + |min part| of each weight [m][k] (w = a - b for Q4_1, Q5_1, Q4_K, Q5_K; |w| otherwise): the size
  // of the terms the products are computed from, before the min term cancels part of them.
  std::vector<float> wmag;
};

// Sets the scales of a quantized row so that every product is an integer: fp16 d (and dmin) = 1, Q4_1/Q5_1 mins
// small integers, K-quant sub-block scales in [0, smax] ([-smax, smax] for Q6_K). Q8_0 quants also get random bytes,
// -128 included.
void unit_scale_weights(int type, uint8_t *row, int64_t k, int smax, rng &r) {
  const aglm_fp16_t one = 0x3c00;
  const size_t bb = aglm_type_block_bytes(type);
  for (int64_t b = 0; b < k / (int64_t)aglm_type_block_size(type); b++) {
    uint8_t *blk = row + b * bb;
    switch (type) {
    case AGLM_TYPE_Q6_K:
      memcpy(blk + 208, &one, 2);
      for (int g = 0; g < 16; g++) blk[192 + g] = (uint8_t)(int8_t)r.range(-smax, smax);
      break;
    case AGLM_TYPE_Q4_K:
    case AGLM_TYPE_Q5_K: {
      memcpy(blk, &one, 2), memcpy(blk + 2, &one, 2);
      uint8_t sc[8], mn[8], *s = blk + 4;
      for (int j = 0; j < 8; j++) sc[j] = (uint8_t)r.range(0, smax), mn[j] = (uint8_t)r.range(0, smax);
      memset(s, 0, 12);
      for (int j = 0; j < 4; j++) s[j] = sc[j], s[j + 4] = mn[j];
      for (int j = 4; j < 8; j++) {
        s[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
        s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
        s[j] |= (uint8_t)((mn[j] >> 4) << 6);
      }
      break;
    }
    case AGLM_TYPE_Q4_1:
    case AGLM_TYPE_Q5_1: {
      const aglm_fp16_t m = aglm_fp32_to_fp16((float)r.range(-3, 3));
      memcpy(blk, &one, 2), memcpy(blk + 2, &m, 2);
      break;
    }
    default:
      memcpy(blk, &one, 2);
      if (type == AGLM_TYPE_Q8_0) for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)r.range(0, 255); // incl. -128
      break;
    }
  }
}

// Activation scales 1 (Q8_1: s = the sum of the quants, an integer; Q8_K: the float d).
void unit_scale_acts(int act, uint8_t *row, int64_t k) {
  const aglm_fp16_t one = 0x3c00;
  if (act == AGLM_TYPE_Q8_K) {
    const float f = 1.0f;
    for (int64_t b = 0; b < k / 256; b++) memcpy(row + b * 292, &f, 4);
    return;
  }
  for (int64_t b = 0; b < k / 32; b++) {
    uint8_t *blk = row + b * aglm_type_block_bytes(act);
    memcpy(blk, &one, 2);
    if (act == AGLM_TYPE_Q8_1) {
      int sum = 0;
      for (int j = 0; j < 32; j++) sum += (int8_t)blk[4 + j];
      const aglm_fp16_t s = aglm_fp32_to_fp16((float)sum);
      memcpy(blk + 2, &s, 2);
    }
  }
}

// wmag of one row (see matmul_case): dequantize with the min fields zeroed (the scale part), then with d zeroed.
void weight_magnitudes(int type, const uint8_t *row, int64_t k, float *mag) {
  const bool min_type = type == AGLM_TYPE_Q4_1 || type == AGLM_TYPE_Q5_1 || type == AGLM_TYPE_Q4_K || type == AGLM_TYPE_Q5_K;
  std::vector<float> a(k), b(k, 0.0f);
  aglm_dequantize_row(type, row, a.data(), k);
  if (min_type) {
    const size_t bytes = aglm_row_bytes(type, k), bb = aglm_type_block_bytes(type);
    std::vector<uint8_t> only_d(row, row + bytes), only_m(row, row + bytes);
    for (size_t o = 0; o < bytes; o += bb) memset(&only_d[o + 2], 0, 2), memset(&only_m[o], 0, 2);
    aglm_dequantize_row(type, only_d.data(), a.data(), k);
    aglm_dequantize_row(type, only_m.data(), b.data(), k);
  }
  for (int64_t i = 0; i < k; i++) mag[i] = fabsf(a[i]) + fabsf(b[i]);
}

// unit_smax: with unit_scales, the largest K-quant sub-block scale (see unit_scale_weights).
void matmul_case_fill(matmul_case &c, rng &r, bool unit_scales, int unit_smax = 3) {
  const int act = aglm_kernels_ref.matmul_act_type(c.type);
  const bool quant = act != AGLM_TYPE_F32;
  c.wrb = aglm_row_bytes(c.type, c.k) + 8;
  c.xrb = quant ? aglm_row_bytes(act, c.k) + 4 : (size_t)c.k * 4 + 12;
  // The last rows end exactly at the end of their buffers, so an over-read shows up under AddressSanitizer.
  const size_t x_bytes = quant ? aglm_row_bytes(act, c.k) : (size_t)c.k * 4;
  c.w.assign(c.wrb * (c.m - 1) + aglm_row_bytes(c.type, c.k), 0), c.x.assign(c.xrb * (c.n - 1) + x_bytes, 0);
  c.wf.resize(c.m * c.k), c.xf.resize(c.n * c.k), c.wmag.resize(c.m * c.k);
  for (int64_t i = 0; i < c.m; i++) {
    std::vector<float> row = random_floats(r, c.k, -1, 1);
    for (int64_t j = 0; j < c.k; j++) row[j] *= (j / 32 % 2) ? 1.0f : 0.01f;
    uint8_t *dst = c.w.data() + i * c.wrb;
    aglm_quantize_row(c.type, row.data(), dst, c.k);
    if (unit_scales) unit_scale_weights(c.type, dst, c.k, unit_smax, r);
    aglm_dequantize_row(c.type, dst, c.wf.data() + i * c.k, c.k);
    weight_magnitudes(c.type, dst, c.k, c.wmag.data() + i * c.k);
  }
  for (int64_t t = 0; t < c.n; t++) {
    std::vector<float> row = random_floats(r, c.k, -3, 3);
    uint8_t *dst = c.x.data() + t * c.xrb;
    if (!quant) {
      memcpy(dst, row.data(), c.k * 4);
      memcpy(c.xf.data() + t * c.k, row.data(), c.k * 4);
      continue;
    }
    if (act == AGLM_TYPE_Q8_0) aglm_kernels_ref.quantize_row_q8_0(row.data(), dst, c.k);
    else aglm_kernels_ref.quantize_row_act(act, row.data(), dst, c.k);
    if (unit_scales) unit_scale_acts(act, dst, c.k);
    aglm_dequantize_row(act, dst, c.xf.data() + t * c.k, c.k);
  }
}

// Tolerance of output (t, i): 1e-5 * sum |w x| (quantized: of the dequantized values, i.e. sum_b |d_w d_x| sum |q q|;
// for the types with a min, of |scale part| + |min part| of each weight, see matmul_case::wmag).
double matmul_tolerance(const matmul_case &c, int64_t t, int64_t i) {
  double mag = 0;
  for (int64_t j = 0; j < c.k; j++) mag += fabs((double)c.wmag[i * c.k + j] * c.xf[t * c.k + j]);
  return 1e-5 * mag + 1e-30;
}

// Whether K's matmul reads this case's activations as f16: the avx512-based tables (avx512, avx512-no-vnni and amx,
// whose non-packed matmul is avx512's) for F16/BF16 weights and fewer than 4 tokens.
bool rounds_decode_acts(const aglm_kernels *K, const matmul_case &c) {
  const bool avx512_family = strncmp(K->name, "avx512", 6) == 0 || strcmp(K->name, "amx") == 0;
  return avx512_family && (c.type == AGLM_TYPE_F16 || c.type == AGLM_TYPE_BF16) && c.n < 4;
}

// Runs ref and K over rows [r0, r1) and returns the worst err/tol (exact: any difference counts as infinite);
// *canary_ok is cleared if anything outside [r0, r1) or the stride padding was written.
double matmul_compare(const aglm_kernels *K, const matmul_case &c, int64_t r0, int64_t r1, bool exact, bool *canary_ok) {
  const float canary = -12345.0f;
  std::vector<float> want(c.n * c.ys, canary), got(c.n * c.ys, canary);
  aglm_matmul_args a = matmul_args(c.type, c.w.data(), c.wrb, c.x.data(), c.xrb, want.data(), c.ys, c.n, c.k, c.m);
  // The AVX-512 tables decode F16/BF16 weights (fewer than 4 tokens) against activations rounded to f16 (see
  // avx512-matmul.cpp): their reference is ref on the rounded activations, within the same tolerance.
  std::vector<uint8_t> rounded;
  if (rounds_decode_acts(K, c)) {
    rounded = c.x;
    for (int64_t t = 0; t < c.n; t++) {
      float *row = (float *)(rounded.data() + t * c.xrb);
      for (int64_t j = 0; j < c.k; j++) row[j] = aglm_fp16_to_fp32(aglm_fp32_to_fp16(row[j]));
    }
    a.x = rounded.data();
  }
  aglm_kernels_ref.matmul(&a, r0, r1);
  a.x = c.x.data();
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
  case AGLM_TYPE_Q4_0: return "Q4_0";
  case AGLM_TYPE_Q4_1: return "Q4_1";
  case AGLM_TYPE_Q5_0: return "Q5_0";
  case AGLM_TYPE_Q5_1: return "Q5_1";
  case AGLM_TYPE_Q8_1: return "Q8_1";
  case AGLM_TYPE_Q4_K: return "Q4_K";
  case AGLM_TYPE_Q5_K: return "Q5_K";
  case AGLM_TYPE_Q6_K: return "Q6_K";
  case AGLM_TYPE_Q8_K: return "Q8_K";
  default: return "?";
  }
}

void test_matmul_type(const aglm_kernels *K, int type, rng &r) {
  const bool quant = aglm_kernels_ref.matmul_act_type(type) != AGLM_TYPE_F32;
  const bool kq = aglm_type_block_size(type) == 256;
  const std::vector<int64_t> ks = kq      ? std::vector<int64_t>{256, 512, 768, 2048, 4096}
                                  : quant ? std::vector<int64_t>{32, 64, 96, 288, 800, 4096}
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

// Activations beyond f16's range (|x| > 65504) must not become infinities in a decode that rounds them to f16: the
// result must match ref on the unrounded activations (the kernel falls back to f32 for that call).
void test_matmul_large_acts(const aglm_kernels *K, rng &r) {
  double worst = 0;
  bool finite = true;
  for (int type : {AGLM_TYPE_F16, AGLM_TYPE_BF16})
    for (int64_t n : {1, 2}) {
      matmul_case c;
      c.type = type, c.n = n, c.k = 333, c.m = 19, c.ys = 19;
      matmul_case_fill(c, r, false);
      for (int64_t t = 0; t < n; t++) {
        float *row = (float *)(c.x.data() + t * c.xrb);
        row[7 + t] = 1.5e5f, c.xf[t * c.k + 7 + t] = 1.5e5f;
      }
      std::vector<float> want(c.n * c.ys), got(c.n * c.ys);
      aglm_matmul_args a = matmul_args(c.type, c.w.data(), c.wrb, c.x.data(), c.xrb, want.data(), c.ys, c.n, c.k, c.m);
      aglm_kernels_ref.matmul(&a, 0, c.m);
      a.y = got.data();
      K->matmul(&a, 0, c.m);
      for (int64_t t = 0; t < c.n; t++)
        for (int64_t i = 0; i < c.m; i++) {
          finite = finite && isfinite(got[t * c.ys + i]);
          worst = fmax(worst, fabs((double)want[t * c.ys + i] - got[t * c.ys + i]) / matmul_tolerance(c, t, i));
        }
    }
  check(worst <= 1.0 && finite, "%s matmul F16/BF16 n=1,2 with an activation of 1.5e5 (beyond f16) (max err/tol %.3g%s)",
        K->name, worst, finite ? "" : ", non-finite output");
}

// Unit scales make every product an integer, so any summation order gives the same float: must be bit-exact.
// K-quants: sub-block scales <= 15 for k = 256 and <= 3 beyond (Q6_K: |scale| <= 3 and <= 1), so that the sum of the
// magnitudes of all terms, hence every partial sum in any order, stays below 2^24.
void test_matmul_unit_scales(const aglm_kernels *K, int type, rng &r) {
  double worst = 0;
  bool canary_ok = true;
  const bool kq = aglm_type_block_size(type) == 256;
  for (int64_t k : kq ? std::vector<int64_t>{256, 512, 768} : std::vector<int64_t>{32, 96, 256})
    for (int64_t n : {1, 3, 7, 16}) {
      matmul_case c;
      c.type = type, c.n = n, c.k = k, c.m = 37, c.ys = 40;
      const int smax = type == AGLM_TYPE_Q6_K ? (k == 256 ? 3 : 1) : k == 256 ? 15 : 3;
      matmul_case_fill(c, r, true, smax);
      worst = fmax(worst, matmul_compare(K, c, 0, 37, true, &canary_ok));
    }
  check(worst == 0 && canary_ok, "%s matmul %s unit scales k=%s n=1,3,7,16 bit-exact integer block sums",
        K->name, type_name(type), kq ? "256,512,768" : "32,96,256");
}

void test_matmul_unsupported(const aglm_kernels *K) {
  uint8_t w[64] = {0};
  float x[32] = {0}, y[2] = {5.0f, 5.0f};
  aglm_matmul_args a = matmul_args(AGLM_TYPE_Q3_K, w, 110, x, 128, y, 1, 1, 256, 2);
  K->matmul(&a, 0, 2);
  check(y[0] == 5.0f && y[1] == 5.0f && K->matmul_act_type(AGLM_TYPE_Q3_K) == -1 &&
            K->matmul_act_type(AGLM_TYPE_Q8_K) == -1 && K->matmul_act_type(AGLM_TYPE_Q8_1) == -1 &&
            K->matmul_act_type(AGLM_TYPE_Q4_0) == AGLM_TYPE_Q8_0 && K->matmul_act_type(AGLM_TYPE_Q5_0) == AGLM_TYPE_Q8_0 &&
            K->matmul_act_type(AGLM_TYPE_Q4_1) == AGLM_TYPE_Q8_1 && K->matmul_act_type(AGLM_TYPE_Q5_1) == AGLM_TYPE_Q8_1 &&
            K->matmul_act_type(AGLM_TYPE_Q4_K) == AGLM_TYPE_Q8_K && K->matmul_act_type(AGLM_TYPE_Q5_K) == AGLM_TYPE_Q8_K &&
            K->matmul_act_type(AGLM_TYPE_Q6_K) == AGLM_TYPE_Q8_K && K->matmul_act_type(AGLM_TYPE_BF16) == AGLM_TYPE_F32,
        "%s matmul_act_type (llama.cpp's pairing) and unsupported weight types (no-op)", K->name);
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

// layer_norm: within 1e-6 x (|x^ w| + |mean scale w| + |b|) of ref (summation order of the mean and variance may
// differ), with and without bias, in place; gelu: 1e-6 x |ref| + 1e-37, as silu_mul (the same argument, vector exp).
void test_layer_norm(const aglm_kernels *K) {
  rng r(56);
  double worst = 0;
  for (int64_t n : {1, 7, 16, 17, 100, 384, 4096})
    for (bool bias : {false, true}) {
      std::vector<float> x = random_floats(r, n, -3, 3), w = random_floats(r, n, -2, 2), b = random_floats(r, n, -1, 1);
      for (float &v : x) v += 2.0f;
      std::vector<float> want(n), got(n), inplace = x;
      const float *bp = bias ? b.data() : nullptr;
      aglm_kernels_ref.layer_norm(x.data(), w.data(), bp, want.data(), n, 1e-5f);
      K->layer_norm(x.data(), w.data(), bp, got.data(), n, 1e-5f);
      K->layer_norm(inplace.data(), w.data(), bp, inplace.data(), n, 1e-5f);
      double mean, scale;
      layer_norm_stats(x, 1e-5, &mean, &scale);
      for (int64_t i = 0; i < n; i++) {
        const double tol = 1e-6 * (fabs((x[i] - mean) * scale * w[i]) + fabs(mean * scale * w[i]) + (bias ? fabs(b[i]) : 0)) + 1e-37;
        worst = fmax(worst, fabs((double)want[i] - got[i]) / tol);
        worst = fmax(worst, got[i] == inplace[i] ? 0.0 : INFINITY);
      }
    }
  check(worst <= 1.0, "%s layer_norm n=1..4096, with/without bias, in place (max err/tol %.3g)", K->name, worst);
}

void test_gelu(const aglm_kernels *K) {
  rng r(57);
  double worst = 0;
  for (int64_t n : {1, 7, 15, 16, 17, 1000}) {
    std::vector<float> x = random_floats(r, n, -12, 12), want(n), got(n);
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 10.0f, -10.0f, 30.0f, -30.0f, 1e4f, -1e4f, INFINITY, -INFINITY};
    if (n == 1000) memcpy(x.data(), special, sizeof special);
    aglm_kernels_ref.gelu(x.data(), want.data(), n);
    K->gelu(x.data(), got.data(), n);
    K->gelu(x.data(), x.data(), n); // in place
    for (int64_t i = 0; i < n; i++) {
      worst = fmax(worst, same_bits_or_nan(want[i], got[i]) ? 0.0 : fabs((double)want[i] - got[i]) / (1e-6 * fabs(want[i]) + 1e-37));
      worst = fmax(worst, same_bits_or_nan(got[i], x[i]) ? 0.0 : INFINITY);
    }
  }
  check(worst <= 1.0, "%s gelu n=1..1000 incl. +-0, +-10..1e4, +-inf, in place (max err/tol %.3g)", K->name, worst);
}

// gelu_erf against the reference (erff): within 1e-6 |ref| + 2e-7 |x| (the SIMD erf's absolute error is 1.5e-7, which
// 0.5 x carries into the result where 1 + erf cancels, x << 0); +-inf and in place as gelu.
void test_gelu_erf(const aglm_kernels *K) {
  rng r(58);
  double worst = 0;
  for (int64_t n : {1, 7, 15, 16, 17, 1000}) {
    std::vector<float> x = random_floats(r, n, -12, 12), want(n), got(n);
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 10.0f, -10.0f, 30.0f, -30.0f, 1e4f, -1e4f, INFINITY, -INFINITY};
    if (n == 1000) memcpy(x.data(), special, sizeof special);
    aglm_kernels_ref.gelu_erf(x.data(), want.data(), n);
    K->gelu_erf(x.data(), got.data(), n);
    std::vector<float> in_place = x;
    K->gelu_erf(in_place.data(), in_place.data(), n);
    for (int64_t i = 0; i < n; i++) {
      worst = fmax(worst, same_bits_or_nan(want[i], got[i]) ? 0.0 : fabs((double)want[i] - got[i]) / (1e-6 * fabs(want[i]) + 2e-7 * fabs(x[i]) + 1e-37));
      worst = fmax(worst, same_bits_or_nan(got[i], in_place[i]) ? 0.0 : INFINITY);
    }
  }
  check(worst <= 1.0, "%s gelu_erf n=1..1000 incl. +-0, +-10..1e4, +-inf, in place (max err/tol %.3g)", K->name, worst);
}

void test_hand_norm_gelu(const aglm_kernels *K) {
  // layer_norm of (1, 2, 3): mean 2, variance 2/3 -> (-1, 0, 1) * sqrt(3/2); times w = (1, 2, 3), plus b = (1, 1, 1)
  const float x[3] = {1, 2, 3}, w[3] = {1, 2, 3}, b[3] = {1, 1, 1};
  float y[3];
  K->layer_norm(x, w, b, y, 3, 0.0f);
  const float s = sqrtf(1.5f);
  check(fabsf(y[0] - (1 - s)) < 1e-6f && y[1] == 1.0f && fabsf(y[2] - (1 + 3 * s)) < 1e-6f, "%s layer_norm hand case",
        K->name);
  // gelu: 0 -> 0, 1 -> 0.841192 (tanh form), large x -> x, very negative x -> -0
  const float g[4] = {0, 1, 50, -50};
  float gy[4];
  K->gelu(g, gy, 4);
  check(gy[0] == 0 && fabsf(gy[1] - 0.841192f) < 1e-6f && gy[2] == 50 && gy[3] == 0, "%s gelu hand case: (%g, %g, %g, %g)",
        K->name, gy[0], gy[1], gy[2], gy[3]);
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

// ---- the other llama.cpp types: Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K weights, Q8_1 and Q8_K activations ------------

const int k_new_types[] = {AGLM_TYPE_Q4_1, AGLM_TYPE_Q5_0, AGLM_TYPE_Q5_1, AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K, AGLM_TYPE_Q6_K};

uint64_t fnv1a(const void *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
  return h;
}

// 16 rows of 1024 values of four kinds (uniform, heavy centre, offset, sparse outliers), the same stream the golden
// hashes below were recorded from.
std::vector<float> golden_input(int type) {
  rng r(1000 + (uint64_t)type);
  std::vector<float> x(16 * 1024);
  for (size_t i = 0; i < x.size(); i++) {
    const float u = r.uniform(-1, 1);
    switch (i / 1024 % 4) {
    case 0: x[i] = u; break;
    case 1: x[i] = u * u * u * 0.05f; break;
    case 2: x[i] = u + 0.3f; break;
    default: x[i] = i % 97 == 0 ? 20 * u : 0.01f * u; break;
    }
  }
  return x;
}

// Random blocks of `type` with finite fp16 scale fields (Q8_K: a finite float d), for dequantization checks.
std::vector<uint8_t> random_blocks(int type, int64_t k, rng &r) {
  const size_t bb = aglm_type_block_bytes(type), bytes = aglm_row_bytes(type, k);
  std::vector<uint8_t> b(bytes);
  for (uint8_t &v : b) v = (uint8_t)r.next();
  for (size_t o = 0; o < bytes; o += bb) {
    switch (type) {
    case AGLM_TYPE_Q6_K: b[o + 209] &= 0x3b; break; // d at 208
    case AGLM_TYPE_Q8_K: {
      const float d = r.uniform(-0.1f, 0.1f);
      memcpy(&b[o], &d, 4);
      break;
    }
    case AGLM_TYPE_Q4_1: case AGLM_TYPE_Q5_1: case AGLM_TYPE_Q8_1: case AGLM_TYPE_Q4_K: case AGLM_TYPE_Q5_K:
      b[o + 1] &= 0x3b, b[o + 3] &= 0x3b; // d and m / s / dmin
      break;
    default: b[o + 1] &= 0x3b; break;
    }
  }
  return b;
}

// The reference's bytes are llama.cpp's: FNV-1a hashes of quantize_row_*_ref's output for golden_input(type), and of
// dequantize_row_*'s output for random_blocks(type, 4096, rng(2000 + type)), recorded from libggml-base
// (node-llama-cpp 3.22.1's build of llama.cpp) by a program that called those functions on the same inputs
// (llama.cpp has no dequantize_row_q8_1: 0 there).
void test_llama_cpp_bytes() {
  struct golden {
    int type;
    uint64_t quant, dequant;
  };
  const golden g[] = {
    {AGLM_TYPE_Q4_1, 0xb62c92d7a5e22f2full, 0x878b153bfcfa628full},
    {AGLM_TYPE_Q5_0, 0x939a7d3df0b46333ull, 0x1bf5df434885a995ull},
    {AGLM_TYPE_Q5_1, 0x349555f617d08dd8ull, 0x0505712c6064a502ull},
    {AGLM_TYPE_Q8_1, 0xde7ecfd94398b7e1ull, 0x0000000000000000ull},
    {AGLM_TYPE_Q4_K, 0xdbe179bf5cce18afull, 0xd630b5a2def27718ull},
    {AGLM_TYPE_Q5_K, 0x206064310309827dull, 0xb990887b57d133d3ull},
    {AGLM_TYPE_Q6_K, 0x0b3de9981c121cc0ull, 0xd8155d617daeaf81ull},
    {AGLM_TYPE_Q8_K, 0x441e822e242ac350ull, 0x8bda571c18ec88cbull},
  };
  for (const golden &e : g) {
    const std::vector<float> x = golden_input(e.type);
    std::vector<uint8_t> q(aglm_row_bytes(e.type, 1024) * 16);
    for (int row = 0; row < 16; row++)
      aglm_quantize_row(e.type, x.data() + 1024 * row, q.data() + aglm_row_bytes(e.type, 1024) * row, 1024);
    rng r(2000 + (uint64_t)e.type);
    const std::vector<uint8_t> b = random_blocks(e.type, 4096, r);
    std::vector<float> y(4096);
    aglm_dequantize_row(e.type, b.data(), y.data(), 4096);
    const uint64_t hq = fnv1a(q.data(), q.size()), hd = e.dequant ? fnv1a(y.data(), y.size() * 4) : 0; // Q8_1: none
    check(hq == e.quant && hd == e.dequant,
          "ref %s quantize and dequantize bit-identical to llama.cpp's (golden hashes: quantize %016llx%s, dequantize "
          "%016llx%s)", type_name(e.type), (unsigned long long)hq, hq == e.quant ? "" : " WRONG",
          (unsigned long long)hd, hd == e.dequant ? "" : " WRONG");
  }
}

// Q4_1 / Q5_1 (BITS 4 / 5): d = (max - min) / (2^BITS - 1), m = min, q = min(2^BITS - 1, (int)((x - min)/d + 0.5)).
template <int BITS>
void test_minmax_definition(int type) {
  rng r(23 + BITS);
  const int64_t k = 32 * 40, top = (1 << BITS) - 1;
  std::vector<float> x = quant_test_row(r, k);
  for (int j = 0; j < 32; j++) x[j] = 0.0f, x[32 + j] = j == 5 ? -2.0f : 0.25f * (float)(j % 9); // zeros, a tie grid
  const size_t bb = aglm_type_block_bytes(type);
  std::vector<uint8_t> q(aglm_row_bytes(type, k));
  std::vector<float> y(k);
  aglm_quantize_row(type, x.data(), q.data(), k);
  aglm_dequantize_row(type, q.data(), y.data(), k);
  int bad_bits = 0, bad_err = 0;
  for (int64_t b = 0; b < k / 32; b++) {
    const uint8_t *blk = q.data() + b * bb;
    float lo = x[b * 32], hi = x[b * 32];
    for (int j = 1; j < 32; j++) lo = fminf(lo, x[b * 32 + j]), hi = fmaxf(hi, x[b * 32 + j]);
    const float d = (hi - lo) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
    aglm_fp16_t ds, ms;
    memcpy(&ds, blk, 2), memcpy(&ms, blk + 2, 2);
    if (ds != aglm_fp32_to_fp16(d) || ms != aglm_fp32_to_fp16(lo)) bad_bits++;
    uint32_t qh = 0;
    if (BITS == 5) memcpy(&qh, blk + 4, 4);
    const uint8_t *qs = blk + (BITS == 5 ? 8 : 4);
    for (int j = 0; j < 32; j++) {
      const float p = (x[b * 32 + j] - lo) * id + 0.5f;
      const int want = p >= (float)top ? top : (int)p;
      const int got = (j < 16 ? qs[j] & 15 : qs[j - 16] >> 4) | (int)((qh >> j) & 1) << 4;
      if (got != want) bad_bits++;
      // |x - (q d_s + m_s)| <= d/2 + top |d - d_s| + |min - m_s| + float slack
      const double lim = 0.5 * d + top * fabs((double)d - aglm_fp16_to_fp32(ds)) + fabs((double)lo - aglm_fp16_to_fp32(ms)) +
                         1e-6 * fabs(x[b * 32 + j]) + 1e-30;
      if (fabs((double)x[b * 32 + j] - y[b * 32 + j]) > lim) bad_err++;
    }
  }
  check(bad_bits == 0, "ref quantize %s = llama.cpp rule (d = (max-min)/%d, m = min as fp16, q = min(%d, (int)((x-m)/d "
        "+ 0.5)); %d wrong)", type_name(type), (int)top, (int)top, bad_bits);
  check(bad_err == 0, "ref %s round trip |x - (q d + m)| <= d/2 + the fp16 rounding of d and m (%d over)", type_name(type),
        bad_err);
}

// Q5_0: d = max / -16 (max: the value of largest magnitude), q = min(31, (int)(x/d + 16.5)), value (q - 16) d.
void test_q5_0_definition() {
  rng r(25);
  const int64_t k = 32 * 40;
  std::vector<float> x = quant_test_row(r, k);
  for (int j = 0; j < 32; j++) x[j] = 0.0f, x[32 + j] = j == 7 ? -3.0f : (float)(j % 7) * 0.4f; // zeros, negative max
  std::vector<aglm_block_q5_0> q(k / 32);
  std::vector<float> y(k);
  aglm_quantize_row(AGLM_TYPE_Q5_0, x.data(), q.data(), k);
  aglm_dequantize_row(AGLM_TYPE_Q5_0, q.data(), y.data(), k);
  int bad_bits = 0, bad_err = 0;
  for (int64_t b = 0; b < k / 32; b++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
      if (amax < fabsf(x[b * 32 + j])) amax = fabsf(x[b * 32 + j]), max = x[b * 32 + j];
    const float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f, ds = aglm_fp16_to_fp32(q[b].d);
    if (q[b].d != aglm_fp32_to_fp16(d)) bad_bits++;
    uint32_t qh;
    memcpy(&qh, q[b].qh, 4);
    for (int j = 0; j < 32; j++) {
      const float v = x[b * 32 + j], p = v * id + 16.5f;
      const int want = p >= 31.0f ? 31 : (int)p;
      const int got = (j < 16 ? q[b].qs[j] & 15 : q[b].qs[j - 16] >> 4) | (int)((qh >> j) & 1) << 4;
      if (got != want) bad_bits++;
      const double lim = (v * id < 15.5f ? 0.5 : 1.0) * fabs(d) + 16.0 * fabs((double)d - ds) + 1e-6 * fabs(v) + 1e-45;
      if (fabs((double)v - (double)y[b * 32 + j]) > lim) bad_err++;
    }
  }
  check(bad_bits == 0, "ref quantize Q5_0 = llama.cpp rule (d = max/-16, q = min(31, (int)(x/d + 16.5)), 5th bits in qh; "
        "%d wrong)", bad_bits);
  check(bad_err == 0, "ref Q5_0 round trip |x - (q-16) d| <= |d|/2 (|d| where clamped) + 16 |d - fp16(d)| (%d over)",
        bad_err);
}

// Q8_1 = Q8_0's d and q, plus s = fp16(d * sum q); Q8_K: iscale = -127/max, q = round-half-even(iscale x) in
// [-127, 127], d = 1/iscale (float), bsums of 16.
void test_act_definitions() {
  rng r(26);
  const int64_t k = 256 * 6;
  std::vector<float> x = quant_test_row(r, k);
  quant_special_blocks(x);
  for (int j = 0; j < 256; j++) x[256 + j] = (float)(j % 19) - 9.0f; // max |x| = 9 reached first by -9: ties at 127/9
  std::vector<aglm_block_q8_0> q0(k / 32);
  std::vector<aglm_block_q8_1> q1(k / 32);
  std::vector<aglm_block_q8_K> qk(k / 256);
  aglm_kernels_ref.quantize_row_q8_0(x.data(), q0.data(), k);
  aglm_kernels_ref.quantize_row_act(AGLM_TYPE_Q8_1, x.data(), q1.data(), k);
  int bad1 = 0;
  for (int64_t b = 0; b < k / 32; b++) {
    float amax = 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) amax = fabsf(x[b * 32 + j]) > amax ? fabsf(x[b * 32 + j]) : amax, sum += q1[b].qs[j];
    if (q1[b].d != q0[b].d || memcmp(q1[b].qs, q0[b].qs, 32) || q1[b].s != aglm_fp32_to_fp16((float)sum * (amax / 127.0f)))
      bad1++;
  }
  check(bad1 == 0, "ref quantize_row_act Q8_1 = Q8_0's d and q plus s = fp16(d * sum q) (%d blocks wrong)", bad1);
  x[2 * 256 + 7] = NAN; // a NaN is skipped by the max and quantizes to 0
  aglm_kernels_ref.quantize_row_act(AGLM_TYPE_Q8_K, x.data(), qk.data(), k);
  int badk = 0;
  for (int64_t b = 0; b < k / 256; b++) {
    const float *xb = x.data() + 256 * b;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; j++)
      if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]), max = xb[j];
    if (amax == 0.0f) {
      for (int j = 0; j < 256; j++) badk += qk[b].qs[j] != 0;
      badk += qk[b].d != 0.0f;
      continue;
    }
    const float is = -127.0f / max;
    for (int g = 0; g < 16; g++) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; j++) {
        const float p = is * xb[j];
        const int want = p != p ? 0 : (int)fminf(127.0f, fmaxf(-127.0f, rintf(p)));
        badk += qk[b].qs[j] != want;
        sum += qk[b].qs[j];
      }
      badk += qk[b].bsums[g] != sum;
    }
    badk += qk[b].d != 1 / is;
  }
  check(badk == 0 && qk[1].qs[0] == -127 && qk[1].qs[18] == 127 && qk[1].d > 0.0f,
        "ref quantize_row_act Q8_K = llama.cpp rule (d = max/-127 as float, q = round half even, bsums; zeros, ties, NaN; "
        "%d wrong)", badk);
}

// llama.cpp's own checks of a quantization type (tests/test-quantize-fns.cpp): on x_i = 0.1 + 2 cos(i) (4096 values),
// sqrt(sum (x - dequant(quant(x)))^2) / 4096 < 0.002, and the vec_dot against its activation type, |dot - exact| /
// 4096 < 0.02 with y_i = 0.1 + 2 cos(i + 1). Then the round-trip relative RMS error on uniform and on peaked random
// rows, against bounds set 25% above what the reference measures (the K-quant scale search fits these better than a
// plain min/max grid: the Q4_1 row shows the grid's error for comparison).
void test_quant_quality() {
  const int64_t n = 4096;
  std::vector<float> a(n), b(n), y(n);
  for (int64_t i = 0; i < n; i++) a[i] = 0.1f + 2 * cosf((float)i), b[i] = 0.1f + 2 * cosf((float)i + 1.0f);
  struct bound {
    int type;
    double uniform, peaked; // relative RMS bounds
  };
  const bound bounds[] = {{AGLM_TYPE_Q4_1, 0.071, 0.11}, {AGLM_TYPE_Q5_0, 0.043, 0.075}, {AGLM_TYPE_Q5_1, 0.035, 0.052},
                          {AGLM_TYPE_Q4_K, 0.069, 0.096}, {AGLM_TYPE_Q5_K, 0.034, 0.047}, {AGLM_TYPE_Q6_K, 0.018, 0.024}};
  for (const bound &e : bounds) {
    std::vector<uint8_t> q(aglm_row_bytes(e.type, n));
    aglm_quantize_row(e.type, a.data(), q.data(), n);
    aglm_dequantize_row(e.type, q.data(), y.data(), n);
    double se = 0;
    for (int64_t i = 0; i < n; i++) se += ((double)a[i] - y[i]) * ((double)a[i] - y[i]);
    const double total = sqrt(se) / n;
    const int act = aglm_kernels_ref.matmul_act_type(e.type);
    std::vector<uint8_t> qb(aglm_row_bytes(act, n));
    aglm_kernels_ref.quantize_row_act(act, b.data(), qb.data(), n);
    float dot = 0;
    aglm_matmul_args m = matmul_args(e.type, q.data(), q.size(), qb.data(), qb.size(), &dot, 1, 1, n, 1);
    aglm_kernels_ref.matmul(&m, 0, 1);
    double exact = 0;
    for (int64_t i = 0; i < n; i++) exact += (double)a[i] * b[i];
    const double dot_err = fabs(dot - exact) / n;
    double rel[2];
    for (int kind = 0; kind < 2; kind++) {
      rng r(27 + kind);
      double e2 = 0, s2 = 0;
      std::vector<float> x(n), z(n);
      for (int row = 0; row < 8; row++) {
        for (int64_t i = 0; i < n; i++) {
          const float u = r.uniform(-1, 1);
          x[i] = kind == 0 ? u : u * u * u; // peaked: most values near 0, a few large
        }
        aglm_quantize_row(e.type, x.data(), q.data(), n);
        aglm_dequantize_row(e.type, q.data(), z.data(), n);
        for (int64_t i = 0; i < n; i++) e2 += ((double)x[i] - z[i]) * ((double)x[i] - z[i]), s2 += (double)x[i] * x[i];
      }
      rel[kind] = sqrt(e2 / s2);
    }
    check(total < 0.002 && dot_err < 0.02 && rel[0] <= e.uniform && rel[1] <= e.peaked,
          "ref %s quality: llama.cpp's test-quantize-fns bounds (total error %.2g < 0.002, dot error %.2g < 0.02); "
          "relative RMS error uniform %.4f <= %.3f, peaked %.4f <= %.3f", type_name(e.type), total, dot_err, rel[0],
          e.uniform, rel[1], e.peaked);
  }
}

// Inputs a K-quant grid holds exactly: Q6_K integers in [-32, 31] with -32 in every group round-trip exactly
// (scale 1 = d (-1/128) * scale byte (-128)); Q4_K / Q5_K integers in [0, 15] / [0, 31] reaching both ends in every
// sub-block come back within the fp16 rounding of d = 1/63 (values q * 63 * fp16(1/63)). Zero super-blocks give
// exact zeros.
void test_kquant_grids() {
  rng r(28);
  const int64_t k = 512;
  std::vector<float> x(k), y(k);
  std::vector<uint8_t> q(aglm_row_bytes(AGLM_TYPE_Q5_K, k) + aglm_row_bytes(AGLM_TYPE_Q6_K, k));
  for (int64_t i = 0; i < k; i++) x[i] = i < 256 ? (float)(i % 16 == 3 ? -32 : r.range(-32, 31)) : 0.0f;
  aglm_quantize_row(AGLM_TYPE_Q6_K, x.data(), q.data(), k);
  aglm_dequantize_row(AGLM_TYPE_Q6_K, q.data(), y.data(), k);
  check(x == y, "ref Q6_K round-trips an integer grid [-32, 31] exactly, and zeros");
  for (int type : {AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K}) {
    const int top = type == AGLM_TYPE_Q4_K ? 15 : 31;
    for (int64_t i = 0; i < k; i++) x[i] = i < 256 ? (float)(i % 32 == 0 ? 0 : i % 32 == 1 ? top : r.range(0, top)) : 0.0f;
    aglm_quantize_row(type, x.data(), q.data(), k);
    aglm_dequantize_row(type, q.data(), y.data(), k);
    const double rel = fabs(63.0 * aglm_fp16_to_fp32(aglm_fp32_to_fp16(1.0f / 63.0f)) - 1.0);
    bool ok = true;
    for (int64_t i = 0; i < k; i++) ok = ok && fabs((double)y[i] - x[i]) <= x[i] * rel * 1.0001;
    check(ok, "ref %s round-trips an integer grid [0, %d] within the fp16 rounding of d = 1/63 (%.2g), and zeros",
          type_name(type), top, rel);
  }
}

// The reference's integer-sum dot products against the double-precision dot of the dequantized rows: within
// 1e-5 * sum |terms| (Q4_1/Q5_1: plus |m_w| * |s_x - d_x sum q_x| per block, the fp16 rounding of the Q8_1 sum).
void test_ref_quant_dot_definition() {
  rng r(33);
  for (int type : k_new_types) {
    double worst = 0;
    for (int64_t k : {256, 4096}) {
      matmul_case c;
      c.type = type, c.n = 3, c.k = k, c.m = 9, c.ys = 9;
      matmul_case_fill(c, r, false);
      std::vector<float> y(c.n * c.m);
      aglm_matmul_args a = matmul_args(c.type, c.w.data(), c.wrb, c.x.data(), c.xrb, y.data(), c.m, c.n, c.k, c.m);
      aglm_kernels_ref.matmul(&a, 0, c.m);
      const bool q8_1 = aglm_kernels_ref.matmul_act_type(type) == AGLM_TYPE_Q8_1;
      for (int64_t t = 0; t < c.n; t++)
        for (int64_t i = 0; i < c.m; i++) {
          double exact = 0, slack = 0;
          for (int64_t j = 0; j < k; j++) exact += (double)c.wf[i * k + j] * c.xf[t * k + j];
          if (q8_1)
            for (int64_t b = 0; b < k / 32; b++) {
              const aglm_block_q8_1 *xb = (const aglm_block_q8_1 *)(c.x.data() + t * c.xrb) + b;
              aglm_fp16_t m;
              memcpy(&m, c.w.data() + i * c.wrb + b * aglm_type_block_bytes(type) + 2, 2);
              int sum = 0;
              for (int j = 0; j < 32; j++) sum += xb->qs[j];
              const double s = aglm_fp16_to_fp32(xb->s), s_exact = (double)aglm_fp16_to_fp32(xb->d) * sum;
              exact += aglm_fp16_to_fp32(m) * (s - s_exact); // the reference uses s; the definition d * sum q
              slack += 1e-6 * fabs(aglm_fp16_to_fp32(m) * s);
            }
          worst = fmax(worst, fabs(y[t * c.m + i] - exact) / (matmul_tolerance(c, t, i) + slack));
        }
    }
    check(worst <= 1.0, "ref matmul %s (integer block sums) vs double dot of the dequantized rows (max err/tol %.3g)",
          type_name(type), worst);
  }
}

void test_new_type_definitions() {
  test_llama_cpp_bytes();
  test_minmax_definition<4>(AGLM_TYPE_Q4_1);
  test_minmax_definition<5>(AGLM_TYPE_Q5_1);
  test_q5_0_definition();
  test_act_definitions();
  test_quant_quality();
  test_kquant_grids();
  test_ref_quant_dot_definition();
}

// Variant vs ref: quantize_row_act (bit-exact), dequantize_row of the new types (bit-exact).
void test_quantize_act(const aglm_kernels *K) {
  rng r(43);
  for (int act : {AGLM_TYPE_Q8_0, AGLM_TYPE_Q8_1, AGLM_TYPE_Q8_K}) {
    bool ok = K->quantize_row_act != nullptr;
    for (int64_t k : {256, 512, 4096}) {
      std::vector<float> x = quant_test_row(r, k);
      if (k >= 512) quant_special_blocks(x);
      if (k == 4096) // a Q8_K block whose largest magnitude comes as both signs, and an all-zero one
        for (int j = 0; j < 256; j++) x[256 + j] = j == 40 ? 5.0f : j == 41 ? -5.0f : 0.01f * j, x[512 + j] = 0.0f;
      std::vector<uint8_t> want(aglm_row_bytes(act, k)), got(want.size(), 0xAA);
      aglm_kernels_ref.quantize_row_act(act, x.data(), want.data(), k);
      if (ok) K->quantize_row_act(act, x.data(), got.data(), k);
      ok = ok && want == got;
    }
    check(ok, "%s quantize_row_act %s k=256,512,4096 exact (zeros, ties, tiny, inf, NaN blocks)", K->name, type_name(act));
  }
}

void test_dequantize_new(const aglm_kernels *K) {
  rng r(44);
  for (int type : {AGLM_TYPE_Q4_1, AGLM_TYPE_Q5_0, AGLM_TYPE_Q5_1, AGLM_TYPE_Q8_1, AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K,
                   AGLM_TYPE_Q6_K, AGLM_TYPE_Q8_K}) {
    const int64_t qk = (int64_t)aglm_type_block_size(type);
    int bad = 0;
    for (int64_t k : {qk, 3 * qk, (int64_t)4096, 4096 + qk / 2}) { // the last one ends in a partial block (-> 0)
      std::vector<uint8_t> src = random_blocks(type, k / qk * qk, r);
      src.resize(src.size() + aglm_type_block_bytes(type), 0x77);
      std::vector<float> want(k, 7.0f), got(k, 9.0f);
      aglm_kernels_ref.dequantize_row(type, src.data(), want.data(), k);
      K->dequantize_row(type, src.data(), got.data(), k);
      for (int64_t i = 0; i < k; i++) bad += !same_bits_or_nan(want[i], got[i]) || (i >= k / qk * qk && got[i] != 0.0f);
    }
    check(bad == 0, "%s dequantize_row %s exact (1, 3, 4096/%lld blocks and a partial block -> 0; %d wrong)", K->name,
          type_name(type), (long long)qk, bad);
  }
}

void test_variant_new_types(const aglm_kernels *K, rng &r) {
  test_quantize_act(K);
  test_dequantize_new(K);
  for (int type : k_new_types) test_matmul_type(K, type, r);
  for (int type : k_new_types) test_matmul_unit_scales(K, type, r);
}

// attention_group (all heads of a KV group at once, F32 or F16 cache) against ref's per-head attention over the same
// values (an F16 cache is compared with F32 keys/values rounded through F16), same 1e-5 * max|v| bound; the rows
// 0..n_kv-1, and per-token row lists (distinct rows of the cache in a shuffled order, as a sequence's KV cells are).
void test_attention_group(const aglm_kernels *K) {
  rng r(59);
  const std::vector<int32_t> n_kv = {0, 1, 2, 3, 5, 17, 64, 100, 255, 300};
  for (bool listed : {false, true})
    for (int kv_type : {AGLM_TYPE_F32, AGLM_TYPE_F16})
      for (int64_t hd : {4, 36, 64, 128})
        for (int64_t n_head_kv : {8, 2, 1}) {
          const int64_t n_head = 8, nt = (int64_t)n_kv.size(), ctx = 300 + 37, group = n_head / n_head_kv;
          const int64_t q_stride = n_head * hd + 5, kv_stride = n_head_kv * hd + 3;
          std::vector<float> q = random_floats(r, nt * q_stride, -2, 2), k = random_floats(r, ctx * kv_stride, -2, 2),
                             v = random_floats(r, ctx * kv_stride, -1, 1), want(nt * q_stride, 3.0f),
                             got(nt * q_stride, 3.0f), scratch(group * ctx);
          std::vector<aglm_fp16_t> k16(k.size()), v16(v.size());
          if (kv_type == AGLM_TYPE_F16) {
            aglm_quantize_row(AGLM_TYPE_F16, k.data(), k16.data(), (int64_t)k.size());
            aglm_quantize_row(AGLM_TYPE_F16, v.data(), v16.data(), (int64_t)v.size());
            aglm_dequantize_row(AGLM_TYPE_F16, k16.data(), k.data(), (int64_t)k.size());
            aglm_dequantize_row(AGLM_TYPE_F16, v16.data(), v.data(), (int64_t)v.size());
          }
          // Per token: a shuffled list of n_kv distinct rows of the ctx (Fisher-Yates over all rows, first n_kv kept).
          std::vector<std::vector<int32_t>> lists(nt);
          std::vector<const int32_t *> list_ptrs(nt);
          for (int64_t t = 0; t < nt; t++) {
            std::vector<int32_t> all(ctx);
            for (int64_t i = 0; i < ctx; i++) all[i] = (int32_t)i;
            for (int64_t i = ctx - 1; i > 0; i--) std::swap(all[i], all[r.range(0, (int)i)]);
            lists[t].assign(all.begin(), all.begin() + n_kv[t]);
            list_ptrs[t] = lists[t].data();
          }
          aglm_attn_args a = {q.data(), q_stride, k.data(), v.data(), kv_stride, want.data(), q_stride, n_kv.data(),
                              n_head, n_head_kv, hd, 1.0f / sqrtf((float)hd), AGLM_TYPE_F32,
                              listed ? list_ptrs.data() : nullptr};
          for (int64_t t = 0; t < nt; t++)
            for (int64_t h = 0; h < n_head; h++) aglm_ref::attention(&a, t, h, scratch.data());
          a.out = got.data();
          a.kv_type = kv_type;
          if (kv_type == AGLM_TYPE_F16) {
            a.k = (const float *)(const void *)k16.data();
            a.v = (const float *)(const void *)v16.data();
          }
          for (int64_t t = 0; t < nt; t++)
            for (int64_t g = 0; g < n_head_kv; g++) K->attention_group(&a, t, g, scratch.data());
          double worst = 0;
          for (int64_t i = 0; i < nt * q_stride; i++) {
            const double e = fabs((double)want[i] - got[i]) / 1e-5;
            worst = e > worst ? e : worst;
          }
          check(worst <= 1.0, "%s attention_group %s %s head_dim=%lld n_head=8 n_head_kv=%lld (max err/tol %.3g)",
                K->name, kv_type == AGLM_TYPE_F16 ? "f16" : "f32", listed ? "row lists" : "rows 0..n", (long long)hd,
                (long long)n_head_kv, worst);
        }
}

void test_variant(const aglm_kernels *K) {
  test_hand_matmul(K);
  test_hand_ops(K);
  test_hand_norm_gelu(K);
  test_attention_group(K);
  if (K == &aglm_kernels_ref) return;
  test_quantize(K);
  test_dequantize(K);
  rng r(61);
  for (int type : {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0}) test_matmul_type(K, type, r);
  test_matmul_large_acts(K, r);
  test_matmul_unit_scales(K, AGLM_TYPE_Q8_0, r);
  test_matmul_unit_scales(K, AGLM_TYPE_Q4_0, r);
  test_variant_new_types(K, r);
  test_matmul_unsupported(K);
  test_rms_norm(K);
  test_rope(K);
  test_silu_mul(K);
  test_add_mul(K);
  test_layer_norm(K);
  test_gelu(K);
  test_gelu_erf(K);
}

#if defined(__x86_64__)
// The avx512 table with its quantized matmul forced onto the AVX512BW (non-VNNI) object, so that path is tested on
// VNNI machines too.
void avx512_bw_matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) {
  if (a->w_type == AGLM_TYPE_Q8_0 || a->w_type == AGLM_TYPE_Q4_0) aglm_avx512::matmul_q(a, r0, r1);
  else if (aglm_kernels_ref.matmul_act_type(a->w_type) > AGLM_TYPE_F32) aglm_avx512::matmul_ext(a, r0, r1);
  else aglm_kernels_avx512.matmul(a, r0, r1);
}

const aglm_kernels avx512_without_vnni = [] {
  aglm_kernels k = aglm_kernels_avx512;
  k.name = "avx512-no-vnni";
  k.matmul = avx512_bw_matmul;
  k.repack_size = nullptr; // without VNNI the avx512 table keeps the GGUF layout
  k.repack = nullptr;
  k.unpack_row = nullptr;
  return k;
}();

// ---- the amx packed layout ------------------------------------------------------------------------------------
// Weights repacked by aglm_amx::repack (panels of 16 rows, see x86-amx/amx-internal.h), multiplied by
//   "amx-avx512": aglm_amx::matmul_packed, the AVX-512 VNNI/BF16 kernels (the amx table's path below 16 tokens),
//   "amx-tiles-emulated": the AMX tile kernels over a scalar model of the tile instructions (runs without AMX),
//   "amx": the amx table itself (only where AMX runs): w_packed = 1, so tiles from 16 tokens on.
// Tolerances, as a multiple of sum_i |w_i x_i| (Q8_0/Q4_0: of the dequantized values, as for the other variants):
//   Q8_0, Q4_0 .............................................. 1e-5; unit scales, k <= 256: exact
//   F16, BF16 on the AVX-512 kernels ......................... 1e-5 (weights widened exactly, f32 activations)
//   BF16 on the tiles ........................................ 2^-16 + 1e-5 (x = xh + xl in bf16, |x - xh - xl| <=
//                                                              2^-16 |x|)
//   F16 on the tiles ......................................... 2^-15 + 1e-5 (w = wh + wl exactly; xh*wh + xl*wh + xh*wl
//                                                              leaves out xl*wl and the split's remainder, 2^-16 each)
typedef void (*matmul_fn)(const aglm_matmul_args *a, int64_t r0, int64_t r1);

struct packed_path {
  const char *name;
  matmul_fn fn;
  int64_t tiles_from; // tokens from which the tiles run (0: always, the bare tile kernel; INT64_MAX: never)
};

void amx_avx512_matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx::matmul_packed(a, r0, r1); }

// c.w's rows (padded by c.wrb) back to back, repacked into a 64-byte aligned buffer that `keep` owns.
const uint8_t *amx_repack_case(const matmul_case &c, std::vector<uint8_t> &keep, uint8_t fill) {
  const size_t row = aglm_row_bytes(c.type, c.k), bytes = aglm_amx::repack_size(c.type, c.m, c.k);
  std::vector<uint8_t> rows(row * c.m);
  for (int64_t i = 0; i < c.m; i++) memcpy(rows.data() + i * row, c.w.data() + i * c.wrb, row);
  keep.assign(bytes + 64, fill);
  uint8_t *dst = keep.data() + (64 - (uintptr_t)keep.data() % 64) % 64;
  aglm_amx::repack(c.type, rows.data(), dst, c.m, c.k);
  return dst;
}

double packed_eps(int type, int64_t n, const packed_path &path) {
  if (type == AGLM_TYPE_Q8_0 || type == AGLM_TYPE_Q4_0 || n < path.tiles_from) return 1e-5;
  return (type == AGLM_TYPE_F16 ? ldexp(1.0, -15) : ldexp(1.0, -16)) + 1e-5;
}

// Like matmul_compare, for a packed path. Also gathers max and mean-square of |err| / sum |w x| (the precision).
double packed_compare(const packed_path &path, const matmul_case &c, const uint8_t *packed, int64_t r0, int64_t r1,
                      bool exact, bool *canary_ok, double *rel_max, double *rel_sq, int64_t *rel_n) {
  const float canary = -12345.0f;
  std::vector<float> want(c.n * c.ys, canary), got(c.n * c.ys, canary);
  aglm_matmul_args a = matmul_args(c.type, c.w.data(), c.wrb, c.x.data(), c.xrb, want.data(), c.ys, c.n, c.k, c.m);
  aglm_kernels_ref.matmul(&a, r0, r1);
  a.w = packed, a.w_packed = 1, a.y = got.data();
  path.fn(&a, r0, r1);
  const double eps = packed_eps(c.type, c.n, path);
  double worst = 0;
  for (int64_t t = 0; t < c.n; t++)
    for (int64_t i = 0; i < c.ys; i++) {
      const float wv = want[t * c.ys + i], gv = got[t * c.ys + i];
      if (i < r0 || i >= r1) {
        if (gv != canary || wv != canary) *canary_ok = false;
        continue;
      }
      const double err = fabs((double)wv - gv), mag = matmul_tolerance(c, t, i) / 1e-5;
      worst = fmax(worst, exact ? (err == 0 ? 0 : INFINITY) : err / (eps * mag + 1e-30));
      if (mag > 0) *rel_max = fmax(*rel_max, err / mag), *rel_sq += (err / mag) * (err / mag), (*rel_n)++;
    }
  return worst;
}

void test_packed_type(const packed_path &path, int type, rng &r) {
  const bool quant = type == AGLM_TYPE_Q8_0 || type == AGLM_TYPE_Q4_0;
  const std::vector<int64_t> ks = quant ? std::vector<int64_t>{32, 64, 96, 288, 800}
                                        : std::vector<int64_t>{1, 7, 16, 17, 100, 333, 1024};
  double worst = 0, rel_max[2] = {0, 0}, rel_sq[2] = {0, 0};
  int64_t rel_n[2] = {0, 0};
  bool canary_ok = true, repack_ok = true;
  for (int64_t k : ks)
    for (int64_t n : {1, 3, 7, 15, 16, 17, 33, 75})
      for (int64_t m : {1, 5, 37, 50}) {
        matmul_case c;
        c.type = type, c.n = n, c.k = k, c.m = m, c.ys = m + 3;
        matmul_case_fill(c, r, false);
        std::vector<uint8_t> keep, keep2;
        const uint8_t *packed = amx_repack_case(c, keep, 0xAA);
        const uint8_t *packed2 = amx_repack_case(c, keep2, 0x55); // every byte written, padding included
        repack_ok = repack_ok && memcmp(packed, packed2, aglm_amx::repack_size(type, m, k)) == 0;
        const int big = n >= aglm_amx::tile_min_tokens;
        worst = fmax(worst, packed_compare(path, c, packed, 0, m, false, &canary_ok, &rel_max[big], &rel_sq[big],
                                           &rel_n[big]));
        if (m >= 37) // row ranges that start and end inside a panel, as the executor's tasks may
          worst = fmax(worst, packed_compare(path, c, packed, 3, 30, false, &canary_ok, &rel_max[big], &rel_sq[big],
                                             &rel_n[big]));
        if (m == 50)
          worst = fmax(worst, packed_compare(path, c, packed, 17, 49, false, &canary_ok, &rel_max[big], &rel_sq[big],
                                             &rel_n[big]));
      }
  { // more tokens than one chunk (Q tiles: 256, F16 tiles: 512 KiB of bf16, AVX-512: 256 KiB of activations)
    matmul_case c;
    c.type = type, c.n = 300, c.k = quant ? 800 : 1001, c.m = 21, c.ys = 23;
    matmul_case_fill(c, r, false);
    std::vector<uint8_t> keep;
    const uint8_t *packed = amx_repack_case(c, keep, 0xAA);
    worst = fmax(worst, packed_compare(path, c, packed, 2, 21, false, &canary_ok, &rel_max[1], &rel_sq[1], &rel_n[1]));
  }
  check(worst <= 1.0 && canary_ok && repack_ok,
        "%s matmul %s packed k=%s n=1,3,7,15,16,17,33,75,300 m=1,5,37,50 rows [0,m) [3,30) [17,49) (max err/tol %.3g; "
        "|err|/sum|wx| n<16: max %.2g rms %.2g, n>=16: max %.2g rms %.2g%s%s)",
        path.name, type_name(type), quant ? "32..800" : "1..1024", worst, rel_max[0],
        rel_n[0] ? sqrt(rel_sq[0] / rel_n[0]) : 0.0, rel_max[1], rel_n[1] ? sqrt(rel_sq[1] / rel_n[1]) : 0.0,
        canary_ok ? "" : ", wrote outside its rows", repack_ok ? "" : ", repack left bytes unwritten");
}

void test_packed_unit_scales(const packed_path &path, int type, rng &r) {
  double worst = 0, rm = 0, rs = 0;
  int64_t rn = 0;
  bool canary_ok = true;
  for (int64_t k : {32, 96, 256})
    for (int64_t n : {1, 3, 15, 16, 33}) {
      matmul_case c;
      c.type = type, c.n = n, c.k = k, c.m = 37, c.ys = 40;
      matmul_case_fill(c, r, true);
      std::vector<uint8_t> keep;
      const uint8_t *packed = amx_repack_case(c, keep, 0xAA);
      worst = fmax(worst, packed_compare(path, c, packed, 0, 37, true, &canary_ok, &rm, &rs, &rn));
    }
  check(worst == 0 && canary_ok, "%s matmul %s packed, unit scales k=32,96,256 n=1,3,15,16,33 bit-exact", path.name,
        type_name(type));
}

void test_packed_path(const packed_path &path, bool quant_only = false) {
  rng r(71);
  for (int type : {AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0}) {
    if (quant_only && type != AGLM_TYPE_Q8_0 && type != AGLM_TYPE_Q4_0) continue;
    test_packed_type(path, type, r);
  }
  test_packed_unit_scales(path, AGLM_TYPE_Q8_0, r);
  test_packed_unit_scales(path, AGLM_TYPE_Q4_0, r);
}

// unpack_row of a repacked matrix equals dequantize_row of the GGUF row, bit for bit, for every row (the last panel
// padded), so a tied token table can be gathered from its repacked copy.
void test_unpack_row(const aglm_kernels *K, std::initializer_list<int> types) {
  rng r(73);
  bool ok = K->unpack_row != nullptr;
  int checked = 0;
  for (int type : types)
    for (int64_t k : {32, 96, 320})
      for (int64_t m : {1, 16, 37}) {
        matmul_case c;
        c.type = type, c.n = 1, c.k = k, c.m = m, c.ys = m;
        matmul_case_fill(c, r, false);
        std::vector<uint8_t> rows(aglm_row_bytes(type, k) * m), keep(K->repack_size(type, m, k) + 64, 0xAA);
        for (int64_t i = 0; i < m; i++) memcpy(rows.data() + i * aglm_row_bytes(type, k), c.w.data() + i * c.wrb, aglm_row_bytes(type, k));
        uint8_t *dst = keep.data() + (64 - (uintptr_t)keep.data() % 64) % 64;
        K->repack(type, rows.data(), dst, m, k);
        std::vector<float> want(k), got(k, 7.0f);
        for (int64_t i = 0; ok && i < m; i++) {
          aglm_kernels_ref.dequantize_row(type, rows.data() + i * aglm_row_bytes(type, k), want.data(), k);
          K->unpack_row(type, dst, m, k, i, got.data());
          ok = memcmp(want.data(), got.data(), k * sizeof(float)) == 0;
          checked++;
        }
      }
  check(ok && checked > 0, "%s unpack_row of repacked matrices equals dequantize_row (%d rows, bit-exact)", K->name, checked);
}

void test_amx_repack_members(const aglm_kernels *K) {
  bool ok = K->repack_size && K->repack && K->repack_size(AGLM_TYPE_F32, 64, 64) == 0 &&
            K->repack_size(AGLM_TYPE_Q4_1, 64, 64) == 0 && K->repack_size(AGLM_TYPE_Q8_0, 64, 40) == 0 &&
            K->repack_size(AGLM_TYPE_Q8_0, 17, 64) == 2 * 2 * 544 &&
            K->repack_size(AGLM_TYPE_Q4_0, 16, 2048) == 16 * 18 * 64 &&
            K->repack_size(AGLM_TYPE_F16, 16, 33) == 16 * 64 * 2 &&
            K->repack_size(AGLM_TYPE_BF16, 32, 64) == 32 * 64 * 2;
  for (const aglm_kernels *other : {&aglm_kernels_ref, &aglm_kernels_avx2})
    ok = ok && !other->repack_size && !other->repack && !other->unpack_row;
  // avx512 (with VNNI): Q8_0 / Q4_0 only, the same panels.
  const aglm_kernels *a = &aglm_kernels_avx512;
  ok = ok && a->repack_size && a->repack_size(AGLM_TYPE_Q8_0, 17, 64) == 2 * 2 * 544 &&
       a->repack_size(AGLM_TYPE_Q4_0, 16, 2048) == 16 * 18 * 64 && a->repack_size(AGLM_TYPE_F16, 16, 64) == 0 &&
       a->repack_size(AGLM_TYPE_F32, 16, 64) == 0 && a->repack_size(AGLM_TYPE_Q4_K, 16, 256) == 0;
  check(ok, "%s repack_size: Q8_0/Q4_0 (k %% 32 == 0), F16, BF16 packed in 16-row panels; F32 and others 0; "
        "avx512 (VNNI) packs Q8_0/Q4_0 alike; ref/avx2 keep the GGUF layout (null)", K->name);
}
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
  // amx: the avx512 set + VNNI + BF16; with AMX tile/int8/bf16 + the Linux permission it beats avx512, without any of
  // them it still runs (AVX-512 over its packed layout) but only when forced; without VNNI, BF16 or avx512 it cannot
  aglm_cpu_features amx = all;
  amx.avx512vnni = amx.avx512bf16 = amx.amx_tile = amx.amx_int8 = amx.amx_bf16 = amx.amx_permitted = true;
  ok = ok && aglm_cpu_select_for(&amx, nullptr, &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_amx &&
       aglm_cpu_select_for(&amx, "avx512", &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_avx512;
  bool aglm_cpu_features::*const tile_needs[] = {&aglm_cpu_features::amx_tile, &aglm_cpu_features::amx_int8,
                                                 &aglm_cpu_features::amx_bf16, &aglm_cpu_features::amx_permitted};
  // The amx variant's note: empty with everything, names the missing tile feature without it (info prints it).
  const aglm_cpu_variant *amx_v = nullptr;
  for (int i = 0; i < aglm_cpu_variant_count(); i++)
    if (strcmp(aglm_cpu_variant_at(i)->name, "amx") == 0) amx_v = aglm_cpu_variant_at(i);
  char note[256] = "x";
  ok = ok && amx_v && amx_v->note;
  if (ok) amx_v->note(&amx, note, sizeof note);
  ok = ok && note[0] == '\0';
  for (bool aglm_cpu_features::*need : tile_needs) {
    aglm_cpu_features one_less = amx;
    one_less.*need = false;
    ok = ok && aglm_cpu_select_for(&one_less, nullptr, &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_avx512 &&
         aglm_cpu_select_for(&one_less, "amx", &k, why, sizeof why) == AGLM_OK && k == &aglm_kernels_amx;
    if (ok) amx_v->note(&one_less, note, sizeof note);
    ok = ok && strstr(note, "no AMX tiles") != nullptr;
  }
  bool aglm_cpu_features::*const base_needs[] = {&aglm_cpu_features::avx512vnni, &aglm_cpu_features::avx512bf16,
                                                 &aglm_cpu_features::avx512bw, &aglm_cpu_features::os_saves_avx512};
  for (bool aglm_cpu_features::*need : base_needs) {
    aglm_cpu_features one_less = amx;
    one_less.*need = false;
    ok = ok && aglm_cpu_select_for(&one_less, nullptr, &k, why, sizeof why) == AGLM_OK && k != &aglm_kernels_amx &&
         aglm_cpu_select_for(&one_less, "amx", &k, why, sizeof why) == AGLM_ERR_BACKEND_UNAVAILABLE;
  }
  amx.avx512bf16 = false;
  ok = ok && aglm_cpu_select_for(&amx, "amx", &k, why, sizeof why) == AGLM_ERR_BACKEND_UNAVAILABLE &&
       strstr(why, "avx512bf16") != nullptr && strstr(why, "avx512f ") == nullptr;
#endif
  check(ok, "cpu selection: best by score (amx above avx512 only with AMX + its permission, noted without it), forced "
        "names, unknown name and missing features refused");
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
  test_new_type_definitions();
  test_ref_matmul_definition();
  test_ref_attention_definition();
  test_ref_norm_gelu_definition();
  test_selection();
#if defined(__x86_64__)
  // The amx packed layout's AVX-512 kernels and its tile kernels on emulated tiles run wherever AVX-512 VNNI and BF16
  // do (the amx variant itself needs AMX); the real tiles are tested with the amx variant below.
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.os_saves_avx512 && f.avx512vnni && f.avx512bf16) {
    test_amx_repack_members(&aglm_kernels_amx);
    test_packed_path({"avx512 (panels)", aglm_kernels_avx512.matmul, INT64_MAX}, true);
    test_unpack_row(&aglm_kernels_avx512, {AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0});
    test_unpack_row(&aglm_kernels_amx, {AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0, AGLM_TYPE_F16, AGLM_TYPE_BF16});
    test_packed_path({"amx-avx512", amx_avx512_matmul, INT64_MAX});
    test_packed_path({"amx-tiles-emulated", aglm_amx_test::matmul_tiles_emulated, 0});
    check(aglm_amx_test::emulated_faults() == 0, "amx-tiles-emulated: tile shapes and configuration valid (%d faults)",
          aglm_amx_test::emulated_faults());
  } else {
    printf("SKIP amx packed layout: this CPU lacks AVX-512 VNNI/BF16\n");
  }
#endif
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
    if (v->kernels == &aglm_kernels_amx) // the table itself: tiles from 16 tokens where AMX runs
      test_packed_path({aglm_amx::tiles_usable() ? "amx (tiles)" : "amx (no AMX here: AVX-512 only)",
                        aglm_kernels_amx.matmul, aglm_amx::tiles_usable() ? aglm_amx::tile_min_tokens : INT64_MAX});
#endif
  }
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
