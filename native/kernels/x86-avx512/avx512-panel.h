// The 16-row panel layout of Q8_0 and Q4_0 weights, repacked once at load (by the avx512 table where the CPU has
// AVX512_VNNI, and by the amx table, whose AMX tiles read the same bytes), and the kernels over it.
//
// Rows are grouped in panels of 16 (the last one padded with zero rows); a panel is one contiguous stretch, so a
// thread's rows are still one linear stream.
//   Q8_0: per panel, nb = k/32 blocks of 512 bytes, then the nb x 16 fp16 scales, then zeros up to a multiple of 64.
//         Block byte g*64 + r*4 + c is the int8 of panel row r at k = 32b + 4g + c (g < 8): the 64 bytes of a group
//         hold 4 consecutive values of each of the 16 rows, one VPDPBUSD operand (16 dwords of 4 bytes; and 8 rows of
//         an AMX B tile).
//   Q4_0: per panel, nb blocks of 256 bytes, then the scales as for Q8_0. Block byte i*64 + r*4 + c is GGUF byte
//         4i + c of row r's block: its low nibble is value 4i + c, its high nibble value 16 + 4i + c, so `& 15` of a
//         64-byte vector is group i and `>> 4` group 4 + i.
// The bytes of each row are the file's, regrouped: no value changes.
//
// Why: a VPDPBUSD then serves 16 rows with 4 activation bytes broadcast, each lane of the int32 accumulator is one
// row's block sum, so one conversion and one FMA per block serve 16 rows (the GGUF-layout kernels need one per block
// and row), and no horizontal reduction is left at the end. With several tokens, each weight vector serves all of
// them: batched decoding of 8 sequences costs about 2.3 times one token instead of 4 to 5 (native/tests/qlab.cpp).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

namespace aglm_avx512 {

const int64_t panel_rows = 16;

// Bytes of one panel of Q8_0 / Q4_0 rows of k values (0 for other types or k % 32 != 0).
size_t panel_bytes_q(int w_type, int64_t k);
// Bytes of `rows` rows in panels (0 when the type is not packed).
size_t repack_size_q(int w_type, int64_t rows, int64_t k);
// Writes the panels of `rows` GGUF rows at src (back to back) to dst, every byte (padding zeroed).
void repack_q(int w_type, const void *src, void *dst, int64_t rows, int64_t k);
// Dequantizes row `row` of a packed matrix of `rows` rows (as dequantize_row does for a GGUF row).
void unpack_row_q(int w_type, const void *packed, int64_t rows, int64_t k, int64_t row, float *dst);
// Y rows [r0, r1) for every token, packed Q8_0/Q4_0 weights (a->w_packed = 1) against Q8_0 activations. VPDPBUSD:
// built with -mavx512vnni (avx512-matmul-panel.cpp), called only where the CPU has AVX512_VNNI.
void matmul_panel_q(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// Whether the panel layout is used on this CPU (AVX512_VNNI present), read once.
bool panel_q_enabled();

} // namespace aglm_avx512
