// Test-only (built by native/tests, never by the addon): the AMX matmul of amx-tiles.h over a scalar model of the
// tile instructions it uses, as the Intel SDM defines them: LDTILECFG (palette 1: 8 tiles of at most 16 rows x 64
// bytes), TILELOADD / TILESTORED (rows x colsb bytes at base + row * stride; the rest of a loaded tile is zeroed),
// TILEZERO, TDPBSSD (int8 x int8 groups of 4 into int32) and TDPBF16PS (bf16 pairs into f32: each product exact,
// each of the two additions rounded to nearest even, bf16 denormal inputs read as zero and denormal results flushed).
// Shape rules the hardware enforces with #UD (A colsb / 4 = B rows, A rows = C rows, B colsb = C colsb, a valid
// configuration loaded) are counted in aglm_amx_emulated_faults() instead. Built with the amx object's AVX-512 flags
// minus AMX; needs an AVX-512 F/BW/VL/DQ + BF16 CPU to run.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"

namespace {

struct aglm_amx_emu_state {
  bool configured = false;
  uint16_t colsb[8];
  uint8_t rows[8];
  alignas(64) uint8_t t[8][16][64];
};

thread_local aglm_amx_emu_state aglm_amx_emu;
int aglm_amx_emu_faults = 0; // tests run single-threaded

bool aglm_amx_emu_tile_ok(int t) {
  return aglm_amx_emu.configured && t >= 0 && t < 8 && aglm_amx_emu.rows[t] >= 1 && aglm_amx_emu.rows[t] <= 16 &&
         aglm_amx_emu.colsb[t] >= 1 && aglm_amx_emu.colsb[t] <= 64;
}

void aglm_amx_emu_config(const void *cfg) {
  const uint8_t *c = (const uint8_t *)cfg;
  aglm_amx_emu_state &s = aglm_amx_emu;
  s.configured = c[0] == 1 && c[1] == 0;
  if (!s.configured) aglm_amx_emu_faults++;
  for (int i = 2; i < 16; i++) if (c[i]) aglm_amx_emu_faults++; // reserved bytes must be zero
  for (int i = 0; i < 8; i++) {
    memcpy(&s.colsb[i], c + 16 + 2 * i, 2);
    s.rows[i] = c[48 + i];
    if ((s.colsb[i] == 0) != (s.rows[i] == 0) || s.colsb[i] > 64 || s.rows[i] > 16) aglm_amx_emu_faults++;
  }
  memset(s.t, 0, sizeof s.t);
}

void aglm_amx_emu_release() { aglm_amx_emu.configured = false; }

void aglm_amx_emu_zero(int t) {
  if (!aglm_amx_emu_tile_ok(t)) { aglm_amx_emu_faults++; return; }
  memset(aglm_amx_emu.t[t], 0, sizeof aglm_amx_emu.t[t]);
}

void aglm_amx_emu_load(int t, const void *base, long stride) {
  if (!aglm_amx_emu_tile_ok(t)) { aglm_amx_emu_faults++; return; }
  memset(aglm_amx_emu.t[t], 0, sizeof aglm_amx_emu.t[t]);
  for (int r = 0; r < aglm_amx_emu.rows[t]; r++)
    memcpy(aglm_amx_emu.t[t][r], (const char *)base + r * stride, aglm_amx_emu.colsb[t]);
}

void aglm_amx_emu_store(int t, void *base, long stride) {
  if (!aglm_amx_emu_tile_ok(t)) { aglm_amx_emu_faults++; return; }
  for (int r = 0; r < aglm_amx_emu.rows[t]; r++)
    memcpy((char *)base + r * stride, aglm_amx_emu.t[t][r], aglm_amx_emu.colsb[t]);
}

bool aglm_amx_emu_shapes_ok(int c, int a, int b) {
  const aglm_amx_emu_state &s = aglm_amx_emu;
  return aglm_amx_emu_tile_ok(c) && aglm_amx_emu_tile_ok(a) && aglm_amx_emu_tile_ok(b) && c != a && c != b &&
         a != b && s.colsb[a] % 4 == 0 && s.colsb[c] % 4 == 0 && s.colsb[a] / 4 == s.rows[b] &&
         s.rows[a] == s.rows[c] && s.colsb[b] == s.colsb[c];
}

void aglm_amx_emu_dpbssd(int c, int a, int b) {
  if (!aglm_amx_emu_shapes_ok(c, a, b)) { aglm_amx_emu_faults++; return; }
  aglm_amx_emu_state &s = aglm_amx_emu;
  for (int m = 0; m < s.rows[c]; m++)
    for (int n = 0; n < s.colsb[c] / 4; n++) {
      int32_t acc;
      memcpy(&acc, &s.t[c][m][4 * n], 4);
      for (int k = 0; k < s.colsb[a] / 4; k++)
        for (int e = 0; e < 4; e++)
          acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int8_t)s.t[a][m][4 * k + e] *
                                                     (int32_t)(int8_t)s.t[b][k][4 * n + e]));
      memcpy(&s.t[c][m][4 * n], &acc, 4);
    }
}

float aglm_amx_emu_bf16(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  const float f = aglm_bf16_to_fp32(h);
  return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f;
}

float aglm_amx_emu_ftz(float f) { return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f; }

void aglm_amx_emu_dpbf16ps(int c, int a, int b) {
  if (!aglm_amx_emu_shapes_ok(c, a, b)) { aglm_amx_emu_faults++; return; }
  aglm_amx_emu_state &s = aglm_amx_emu;
  for (int m = 0; m < s.rows[c]; m++)
    for (int n = 0; n < s.colsb[c] / 4; n++) {
      float acc;
      memcpy(&acc, &s.t[c][m][4 * n], 4);
      for (int k = 0; k < s.colsb[a] / 4; k++) {
        // volatile: each product and sum is one IEEE float operation, never contracted or kept wider
        volatile float p0 = aglm_amx_emu_bf16(&s.t[a][m][4 * k]) * aglm_amx_emu_bf16(&s.t[b][k][4 * n]);
        acc = aglm_amx_emu_ftz(acc + p0);
        volatile float p1 = aglm_amx_emu_bf16(&s.t[a][m][4 * k + 2]) * aglm_amx_emu_bf16(&s.t[b][k][4 * n + 2]);
        acc = aglm_amx_emu_ftz(acc + p1);
      }
      memcpy(&s.t[c][m][4 * n], &acc, 4);
    }
}

} // namespace

#define AGLM_AMX_CONFIG(cfg) aglm_amx_emu_config(cfg)
#define AGLM_AMX_RELEASE() aglm_amx_emu_release()
#define AGLM_AMX_ZERO(t) aglm_amx_emu_zero(t)
#define AGLM_AMX_LOAD(t, base, stride) aglm_amx_emu_load(t, base, (long)(stride))
#define AGLM_AMX_STORE(t, base, stride) aglm_amx_emu_store(t, base, (long)(stride))
#define AGLM_AMX_DPBSSD(c, a, b) aglm_amx_emu_dpbssd(c, a, b)
#define AGLM_AMX_DPBF16PS(c, a, b) aglm_amx_emu_dpbf16ps(c, a, b)

#include "kernels/x86-amx/amx-tiles.h"

namespace aglm_amx_test {

// aglm_amx::matmul_tiles on the emulated tiles, and the number of #UD-class faults it has hit so far.
void matmul_tiles_emulated(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx_tiles_matmul(a, r0, r1); }
int emulated_faults() { return aglm_amx_emu_faults; }

} // namespace aglm_amx_test
