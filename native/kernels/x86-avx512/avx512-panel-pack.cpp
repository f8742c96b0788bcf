// Repacking Q8_0 / Q4_0 rows into 16-row panels (avx512-panel.h), and reading one row back: byte shuffles only.
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/ref/ref-kernels.h"
#include "kernels/x86-avx512/avx512-panel.h"

namespace {

bool quant(int t) { return t == AGLM_TYPE_Q8_0 || t == AGLM_TYPE_Q4_0; }

// Group bytes then scales of one panel (its rows [0, rows) are real, the rest zero).
void pack_panel(int type, const char *src, size_t src_row, int64_t rows, int64_t nb, char *dst, size_t bytes) {
  memset(dst, 0, bytes);
  const bool q8 = type == AGLM_TYPE_Q8_0;
  const size_t blk = q8 ? 34 : 18, data = q8 ? 512 : 256;
  uint16_t *scales = (uint16_t *)(dst + nb * data);
  for (int64_t r = 0; r < rows; r++) {
    const char *row = src + r * src_row;
    for (int64_t b = 0; b < nb; b++) {
      const char *s = row + b * blk;
      char *d = dst + b * data + r * 4;
      for (int g = 0; g < (q8 ? 8 : 4); g++) memcpy(d + g * 64, s + 2 + 4 * g, 4);
      memcpy(&scales[b * 16 + r], s, 2);
    }
  }
}

} // namespace

namespace aglm_avx512 {

size_t panel_bytes_q(int w_type, int64_t k) {
  if (!quant(w_type) || k <= 0 || k % 32) return 0;
  const size_t nb = (size_t)k / 32, data = w_type == AGLM_TYPE_Q8_0 ? 512 : 256;
  return (nb * (data + 32) + 63) / 64 * 64;
}

size_t repack_size_q(int w_type, int64_t rows, int64_t k) {
  if (rows <= 0) return 0;
  return panel_bytes_q(w_type, k) * (size_t)((rows + panel_rows - 1) / panel_rows);
}

void repack_q(int w_type, const void *src, void *dst, int64_t rows, int64_t k) {
  const size_t pb = panel_bytes_q(w_type, k);
  if (!pb || rows <= 0) return;
  const size_t src_row = aglm_row_bytes(w_type, k);
  for (int64_t p = 0; p * panel_rows < rows; p++) {
    const int64_t left = rows - p * panel_rows, n = left < panel_rows ? left : panel_rows;
    pack_panel(w_type, (const char *)src + p * panel_rows * src_row, src_row, n, k / 32, (char *)dst + p * pb, pb);
  }
}

void unpack_row_q(int w_type, const void *packed, int64_t rows, int64_t k, int64_t row, float *dst) {
  const size_t pb = panel_bytes_q(w_type, k);
  if (!pb || row < 0 || row >= rows) return;
  const bool q8 = w_type == AGLM_TYPE_Q8_0;
  const int64_t nb = k / 32, r = row % panel_rows;
  const size_t data = q8 ? 512 : 256;
  const char *panel = (const char *)packed + (row / panel_rows) * pb;
  const uint16_t *scales = (const uint16_t *)(panel + nb * data);
  for (int64_t b = 0; b < nb; b++) {
    const char *d = panel + b * data + r * 4;
    const float s = aglm_fp16_to_fp32(scales[b * 16 + r]);
    for (int g = 0; g < (q8 ? 8 : 4); g++)
      for (int c = 0; c < 4; c++) {
        if (q8) {
          dst[32 * b + 4 * g + c] = (int8_t)d[g * 64 + c] * s;
        } else {
          const uint8_t v = (uint8_t)d[g * 64 + c];
          dst[32 * b + 4 * g + c] = ((int)(v & 15) - 8) * s;
          dst[32 * b + 16 + 4 * g + c] = ((int)(v >> 4) - 8) * s;
        }
      }
  }
}

} // namespace aglm_avx512
