// Load-time repacking of F16 and BF16 weights into the amx panel layout (see amx-internal.h; Q8_0 and Q4_0 use the
// avx512 table's panels, avx512-panel.h), and reading a row back: byte shuffles only, no value changes. Built with
// the amx AVX-512 flags; runs only where the table was chosen.
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/x86-amx/amx-internal.h"
#include "kernels/x86-avx512/avx512-panel.h"

namespace {

inline bool aglm_amx_quant(int t) { return t == AGLM_TYPE_Q8_0 || t == AGLM_TYPE_Q4_0; }
inline bool aglm_amx_half(int t) { return t == AGLM_TYPE_F16 || t == AGLM_TYPE_BF16; }

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
  if (aglm_amx_quant(w_type)) return aglm_avx512::panel_bytes_q(w_type, k);
  if (aglm_amx_half(w_type)) return (size_t)packed_k(k) * 32;
  return 0;
}

size_t repack_size(int w_type, int64_t rows, int64_t k) {
  if (rows <= 0) return 0;
  return panel_bytes(w_type, k) * (size_t)((rows + panel_rows - 1) / panel_rows);
}

void repack(int w_type, const void *src, void *dst, int64_t rows, int64_t k) {
  if (aglm_amx_quant(w_type)) return aglm_avx512::repack_q(w_type, src, dst, rows, k);
  const size_t pb = panel_bytes(w_type, k);
  if (!pb || rows <= 0) return;
  const size_t src_row = aglm_row_bytes(w_type, k);
  for (int64_t p = 0; p * panel_rows < rows; p++) {
    const int64_t left = rows - p * panel_rows, n = left < panel_rows ? left : panel_rows;
    aglm_amx_pack_half_panel(w_type, (const char *)src + p * panel_rows * src_row, src_row, n, k, (char *)dst + p * pb, pb);
  }
}

void unpack_row(int w_type, const void *packed, int64_t rows, int64_t k, int64_t row, float *dst) {
  if (aglm_amx_quant(w_type)) return aglm_avx512::unpack_row_q(w_type, packed, rows, k, row, dst);
  const size_t pb = panel_bytes(w_type, k);
  if (!pb || row < 0 || row >= rows) return;
  const uint16_t *panel = (const uint16_t *)((const char *)packed + (row / panel_rows) * pb);
  const int64_t r = row % panel_rows;
  for (int64_t c = 0; c < k; c++) {
    if (w_type == AGLM_TYPE_F16) dst[c] = aglm_fp16_to_fp32(panel[c * 16 + r]);
    else dst[c] = aglm_bf16_to_fp32(panel[(c / 2) * 32 + r * 2 + (c & 1)]);
  }
}

} // namespace aglm_amx
