// Row conversion between tensor types through f32, with the scalar reference (de)quantizers, rows split over threads.
#include "core/convert.h"

#include <atomic>
#include <thread>
#include <vector>

#include "kernels/kernels.h"

bool aglm_convert_rows(int src_type, const void *src, int dst_type, void *dst, int64_t rows, int64_t k, int n_threads) {
  const size_t src_row = aglm_row_bytes(src_type, k), dst_row = aglm_row_bytes(dst_type, k);
  if (src_row == 0 || dst_row == 0) return false;
  std::atomic<bool> ok{true};
  auto work = [&](int t, int n) {
    std::vector<float> row((size_t)k);
    for (int64_t r = t; r < rows && ok.load(std::memory_order_relaxed); r += n) {
      if (!aglm_dequantize_row(src_type, (const uint8_t *)src + r * src_row, row.data(), k) ||
          !aglm_quantize_row(dst_type, row.data(), (uint8_t *)dst + r * dst_row, k))
        ok = false;
    }
  };
  const int n = n_threads < 1 ? 1 : (int64_t)n_threads > rows ? (int)(rows > 0 ? rows : 1) : n_threads;
  std::vector<std::thread> workers;
  for (int t = 1; t < n; t++) workers.emplace_back(work, t, n);
  work(0, n);
  for (auto &th : workers) th.join();
  return ok;
}
