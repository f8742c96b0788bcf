// Entry points shared by the amx translation units; declarations and layout constants only.
//
// The packed weight layout (written once at load by repack(), read by both the AVX-512 and the AMX matmul; Q8_0 and
// Q4_0 are the avx512 table's panels, x86-avx512/avx512-panel.h):
// rows are grouped in panels of 16 (the last one padded with zero rows), and a panel is one contiguous stretch, so
// decoding reads each thread's rows as a single linear stream like the GGUF layout does.
//   Q8_0: per panel, nb = k/32 blocks of 512 bytes, then the nb x 16 fp16 scales, then zeros up to a multiple of 64.
//         Block byte g*64 + r*4 + c is the int8 of panel row r at k = 32b + 4g + c (g < 8): the 64 bytes of a
//         "group" hold 4 consecutive values of each of the 16 rows, which is both a VPDPBUSD operand (16 dwords of
//         4 bytes) and 8 rows of an AMX B tile (k/4 rows of 16 columns x 4 bytes). Same bytes as the file per row.
//   Q4_0: per panel, nb blocks of 256 bytes, then the scales as for Q8_0. Block byte i*64 + r*4 + c is GGUF byte
//         4i + c of row r's block: its low nibble is value 4i + c, its high nibble value 16 + 4i + c, so `& 15` of a
//         64-byte vector is group i and `>> 4` is group 4 + i. Same bytes as the file per row.
//   F16:  k padded with zeros to kp, a multiple of 32; per panel, kp rows of 32 bytes: the 16 rows' halves at that
//         k (one VCVTPH2PS operand). The tiles split them into bf16 pairs per call (below). Same bytes as the file.
//   BF16: k padded as for F16; per panel, kp/2 pair rows of 64 bytes: byte j*64 + r*4 + 2e is row r's value 2j + e,
//         a row of an AMX BF16 B tile as it is (16 pair rows = 32 values of k). Same bytes as the file.
// Precision: the AVX-512 kernels widen F16/BF16 weights to f32 exactly and multiply the f32 activations, like
// avx512. The tiles multiply bf16 only, so they split: x = xh + xl (two bf16, |x - xh - xl| <= 2^-16 |x|), and an F16
// weight w = wh + wl exactly (11 significant bits = 8 + 3); F16 sums xh*wh + xl*wh + xh*wl (3 TDPBF16PS), BF16
// xh*w + xl*w (2), each within about 2^-15 of sum |w x| of the exact result, before the f32 summation.
// F32 weights are not packed (repack_size 0): matmul sends them, and every weight with w_packed = 0, to avx512.
#pragma once

#include "kernels/kernels.h"

namespace aglm_amx {

const int64_t panel_rows = 16;
// Tokens from which the AMX tiles run; below it the AVX-512 kernels over the packed layout do (decoding).
const int64_t tile_min_tokens = 16;

size_t repack_size(int w_type, int64_t rows, int64_t k);
void repack(int w_type, const void *src, void *dst, int64_t rows, int64_t k);
// A packed row dequantized (the table's unpack_row).
void unpack_row(int w_type, const void *packed, int64_t rows, int64_t k, int64_t row, float *dst);

// Bytes of one packed panel (16 rows) of w_type and k (0 for a type that is not packed).
size_t panel_bytes(int w_type, int64_t k);
// k rounded up to the packed F16/BF16 width (a multiple of 32).
inline int64_t packed_k(int64_t k) { return (k + 31) / 32 * 32; }

// Whether this CPU and OS run AMX tiles for this process (cpuid, XCR0, and the Linux XTILEDATA permission, which
// aglm_cpu_probe requests). Checked once.
bool tiles_usable();
// The table's matmul: w_packed = 0 goes to avx512; packed weights to the tiles for n >= tile_min_tokens where
// tiles_usable(), else to matmul_packed.
void matmul(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// AVX-512 (VNNI, BF16) over the packed layout, any n (amx-matmul.cpp; built with -mavx512vnni -mavx512bf16).
void matmul_packed(const aglm_matmul_args *a, int64_t r0, int64_t r1);
// AMX tiles over the packed layout, any n (amx-matmul-tiles.cpp; built with -mamx-*). Only on a thread of a process
// that Linux granted XTILEDATA, i.e. only when the amx variant was selected.
void matmul_tiles(const aglm_matmul_args *a, int64_t r0, int64_t r1);

} // namespace aglm_amx
