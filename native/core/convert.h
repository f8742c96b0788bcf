// Converting rows of a tensor from one type to another (dequantize to f32, quantize to the target), split over
// threads: used by load-time quantization and by the quantize tool.
#pragma once

#include <cstdint>

// Converts `rows` rows of k values from src_type (at src) to dst_type (at dst), rows back to back in both. Returns
// false if either type cannot be converted (or k does not fill whole blocks of dst_type).
bool aglm_convert_rows(int src_type, const void *src, int dst_type, void *dst, int64_t rows, int64_t k, int n_threads);
