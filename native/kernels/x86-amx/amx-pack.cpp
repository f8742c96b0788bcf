// Load-time repacking of Q8_0, Q4_0, F16 and BF16 weights into the amx panel layout (see amx-internal.h): byte
// shuffles only, no value changes. Built with the amx AVX-512 flags; runs only where the table was chosen.
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/x86-amx/amx-internal.h"

namespace {

inline bool aglm_amx_quant(int t) { return t == AGLM_TYPE_Q8_0 || t == AGLM_TYPE_Q4_0; }
inline bool aglm_amx_half(int t) { return t == AGLM_TYPE_F16 || t == AGLM_TYPE_BF16; }

// Q8_0 / Q4_0: group bytes then scales of one panel (rows [0, rows) of it are real, the rest zero).
void aglm_amx_pack_quant_panel(int type, const char *src, size_t src_row, int64_t rows, int64_t nb, char *dst,
                               size_t bytes) {
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

// F16: per k (padded with zeros to a multiple of 32), the 16 rows' halves (32 bytes), copied as they are.
// BF16: bf16 pair rows (value 2j + e of row r at byte j*64 + r*4 + 2e), also copied.
void aglm_amx_pack_half_panel(int type, const char *src, size_t src_row, int64_t rows, int64_t k, char *dst,
                              size_t bytes) {
  memset(dst, 0, bytes);
  const bool f16 = type == AGLM_TYPE_F16;
  for (int64_t r = 0; r < rows; r++) {
    const uint16_t *row = (const uint16_t *)(src + r * src_row);
    uint16_t *d = (uint16_t *)dst;
    for (int64_t c = 0; c < k; c++) d[f16 ? c * 16 + r : (c / 2) * 32 + r * 2 + (c & 1)] = row[c];
  }
}

} // namespace

namespace aglm_amx {

size_t panel_bytes(int w_type, int64_t k) {
  if (k <= 0) return 0;
  if (aglm_amx_quant(w_type)) {
    if (k % 32) return 0;
    const size_t nb = (size_t)k / 32, data = w_type == AGLM_TYPE_Q8_0 ? 512 : 256;
    return (nb * (data + 32) + 63) / 64 * 64;
  }
  if (aglm_amx_half(w_type)) return (size_t)packed_k(k) * 32;
  return 0;
}

size_t repack_size(int w_type, int64_t rows, int64_t k) {
  if (rows <= 0) return 0;
  return panel_bytes(w_type, k) * (size_t)((rows + panel_rows - 1) / panel_rows);
}

void repack(int w_type, const void *src, void *dst, int64_t rows, int64_t k) {
  const size_t pb = panel_bytes(w_type, k);
  if (!pb || rows <= 0) return;
  const size_t src_row = aglm_row_bytes(w_type, k);
  for (int64_t p = 0; p * panel_rows < rows; p++) {
    const int64_t left = rows - p * panel_rows, n = left < panel_rows ? left : panel_rows;
    const char *s = (const char *)src + p * panel_rows * src_row;
    char *d = (char *)dst + p * pb;
    if (aglm_amx_quant(w_type)) aglm_amx_pack_quant_panel(w_type, s, src_row, n, k / 32, d, pb);
    else aglm_amx_pack_half_panel(w_type, s, src_row, n, k, d, pb);
  }
}

} // namespace aglm_amx
