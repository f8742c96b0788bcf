// A micro-benchmark (not a test): prompt-processing and decode shaped matmuls, the avx512 table on the GGUF layout
// against the amx packed layout (its AVX-512 kernels everywhere they run, its AMX tiles where AMX runs).
//   aglm-matmul-bench [threads] [repetitions] [pp|tg]
// Prefill: n = 512 tokens x (k, m) = (2048, 2048), (2048, 5632), (5632, 2048), in GOP/s (2 n k m / time).
// Decode: n = 1 over enough copies of the matrix to miss the caches, in GB/s of weights read.
// Each number is the median of the repetitions; rows are split over the threads in 16-row aligned halves.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/cpu-features.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/x86-amx/amx-internal.h"

namespace {

struct aligned_bytes {
  void *p = nullptr;
  explicit aligned_bytes(size_t n) { p = aligned_alloc(64, (n + 63) / 64 * 64); memset(p, 0, (n + 63) / 64 * 64); }
  ~aligned_bytes() { free(p); }
  aligned_bytes(const aligned_bytes &) = delete;
  aligned_bytes &operator=(const aligned_bytes &) = delete;
};

uint64_t g_state = 88172645463325252ull;
float frand() {
  g_state ^= g_state << 13, g_state ^= g_state >> 7, g_state ^= g_state << 17;
  return (float)((g_state >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

typedef void (*matmul_fn)(const aglm_matmul_args *a, int64_t r0, int64_t r1);

void amx_avx512(const aglm_matmul_args *a, int64_t r0, int64_t r1) { aglm_amx::matmul_packed(a, r0, r1); }

double run_threads(matmul_fn fn, const aglm_matmul_args &a, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  if (threads == 1) {
    fn(&a, 0, a.m);
  } else {
    std::vector<std::thread> ts;
    const int64_t per = (a.m / threads + 15) / 16 * 16;
    for (int t = 0; t < threads; t++) {
      const int64_t r0 = std::min<int64_t>(a.m, t * per);
      const int64_t r1 = t == threads - 1 ? a.m : std::min<int64_t>(a.m, r0 + per);
      ts.emplace_back([&, r0, r1] { fn(&a, r0, r1); });
    }
    for (auto &t : ts) t.join();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const char *tname(int t) {
  return t == AGLM_TYPE_Q8_0 ? "Q8_0" : t == AGLM_TYPE_Q4_0 ? "Q4_0" : t == AGLM_TYPE_F16 ? "F16" : "BF16";
}

// One weight type and shape: GGUF rows, their packed copy, activations in the type matmul wants.
struct bench_case {
  int type;
  int64_t n, k, m;
  size_t row, xrow;
  std::vector<aligned_bytes *> w, wp; // copies (decode cycles through them)
  aligned_bytes *x = nullptr, *y = nullptr;
};

void case_make(bench_case &c, int copies) {
  const bool quant = c.type == AGLM_TYPE_Q8_0 || c.type == AGLM_TYPE_Q4_0;
  const bool packable = c.type != AGLM_TYPE_F32;
  c.row = aglm_row_bytes(c.type, c.k);
  c.xrow = quant ? aglm_row_bytes(AGLM_TYPE_Q8_0, c.k) : (size_t)c.k * 4;
  std::vector<float> f(c.k);
  aligned_bytes *w0 = new aligned_bytes(c.row * c.m);
  for (int64_t r = 0; r < c.m; r++) {
    for (float &v : f) v = frand();
    aglm_quantize_row(c.type, f.data(), (char *)w0->p + r * c.row, c.k);
  }
  for (int i = 0; i < copies; i++) {
    aligned_bytes *w = i == 0 ? w0 : new aligned_bytes(c.row * c.m);
    if (i) memcpy(w->p, w0->p, c.row * c.m);
    c.w.push_back(w);
    aligned_bytes *p = new aligned_bytes(packable ? aglm_amx::repack_size(c.type, c.m, c.k) : 64);
    if (packable) aglm_amx::repack(c.type, w->p, p->p, c.m, c.k);
    c.wp.push_back(p);
  }
  c.x = new aligned_bytes(c.xrow * c.n);
  for (int64_t t = 0; t < c.n; t++) {
    for (float &v : f) v = frand() * 3;
    if (quant) aglm_kernels_ref.quantize_row_q8_0(f.data(), (char *)c.x->p + t * c.xrow, c.k);
    else memcpy((char *)c.x->p + t * c.xrow, f.data(), c.k * 4);
  }
  c.y = new aligned_bytes((size_t)(c.n * c.m) * 4);
}

void case_free(bench_case &c) {
  for (auto *p : c.w) delete p;
  for (auto *p : c.wp) delete p;
  delete c.x, delete c.y;
}

aglm_matmul_args case_args(const bench_case &c, int copy, bool packed) {
  aglm_matmul_args a{};
  a.w = packed ? c.wp[copy]->p : c.w[copy]->p;
  a.w_row_bytes = c.row, a.w_type = c.type, a.x = c.x->p, a.x_row_bytes = c.xrow;
  a.y = (float *)c.y->p, a.y_stride = c.m, a.n = c.n, a.k = c.k, a.m = c.m, a.w_packed = packed;
  return a;
}

// Median seconds of `reps` runs of each of fns[0..nf) (cycling through the copies), the functions taking turns so
// that a busy machine slows them alike.
void time_fns(const bench_case &c, int nf, const matmul_fn *fns, const bool *packed, int threads, int reps,
              double *out) {
  std::vector<std::vector<double>> s(nf);
  for (int f = 0; f < nf; f++) run_threads(fns[f], case_args(c, 0, packed[f]), threads); // warm-up
  for (int i = 0; i < reps; i++)
    for (int f = 0; f < nf; f++)
      s[f].push_back(run_threads(fns[f], case_args(c, (i + 1) % (int)c.w.size(), packed[f]), threads));
  for (int f = 0; f < nf; f++) out[f] = median(s[f]);
}

// |packed - avx512| / sum|w x| over the outputs (the precision cost of the packed path against the GGUF one).
double rel_diff(const bench_case &c, matmul_fn fn) {
  std::vector<float> a_out((size_t)(c.n * c.m)), b_out((size_t)(c.n * c.m));
  aglm_matmul_args a = case_args(c, 0, false);
  a.y = a_out.data();
  aglm_kernels_avx512.matmul(&a, 0, c.m);
  a = case_args(c, 0, true);
  a.y = b_out.data();
  fn(&a, 0, c.m);
  double worst = 0, mag = 0;
  for (size_t i = 0; i < a_out.size(); i++) mag = fmax(mag, fabs(a_out[i]));
  for (size_t i = 0; i < a_out.size(); i++) worst = fmax(worst, fabs((double)a_out[i] - b_out[i]));
  return worst / (mag + 1e-30);
}

} // namespace

int main(int argc, char **argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 7;
  const char *only = argc > 3 ? argv[3] : ""; // "pp", "tg" or "bd" runs only that part
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512bf16 && f.os_saves_avx512)) {
    printf("this CPU lacks AVX-512 VNNI/BF16: nothing to compare\n");
    return 0;
  }
  const bool amx = f.amx_int8 && f.amx_bf16 && f.amx_permitted;
  printf("cpu: %s, %d thread(s), median of %d; amx tiles: %s\n", f.brand, threads, reps,
         amx ? "yes" : "not on this CPU");
  const int types[] = {AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0, AGLM_TYPE_F16, AGLM_TYPE_BF16};
  const int64_t shapes[][2] = {{2048, 2048}, {2048, 5632}, {5632, 2048}};
  if (!strcmp(only, "bd")) {
    // Batched decode: n = 1..16 tokens over matrices that miss the caches; time per call relative to n = 1 (a
    // memory-bound kernel stays near 1 until its arithmetic catches up with the weight stream).
    printf("\nbatched decode: ms per call, avx512|amx-packed (6 copies, > L3)\n%-5s %-11s", "type", "k x m");
    const int ns[] = {1, 2, 3, 4, 6, 8, 12, 16};
    for (int n : ns) printf(" %11s", (std::string("n=") + std::to_string(n)).c_str());
    printf("\n");
    const int btypes[] = {AGLM_TYPE_Q4_0, AGLM_TYPE_Q8_0, AGLM_TYPE_F16, AGLM_TYPE_F32};
    const int64_t bshapes[][2] = {{2048, 5632}, {5632, 2048}};
    for (int type : btypes)
      for (const auto &s : bshapes) {
        printf("%-5s %5lldx%-5lld", type == AGLM_TYPE_F32 ? "F32" : tname(type), (long long)s[0], (long long)s[1]);
        double t1 = 0;
        for (int n : ns) {
          bench_case c;
          c.type = type, c.n = n, c.k = s[0], c.m = s[1];
          case_make(c, type == AGLM_TYPE_F32 ? 3 : 6);
          const matmul_fn fns[2] = {aglm_kernels_avx512.matmul, amx_avx512};
          const bool packed[2] = {false, true};
          double t[2];
          const bool pk = type != AGLM_TYPE_F32;
          time_fns(c, pk ? 2 : 1, fns, packed, threads, reps * 3, t);
          if (n == 1) t1 = t[0];
          if (pk) printf(" %5.2f|%5.2f", t[0] * 1e3, t[1] * 1e3);
          else printf(" %5.2f|  -  ", t[0] * 1e3);
          fflush(stdout);
          case_free(c);
        }
        printf("\n");
      }
    return 0;
  }
  printf("\nprefill n=512: GOP/s (2 n k m / s)\n%-5s %-11s %10s %12s %10s %12s\n", "type", "k x m", "avx512",
         "amx-avx512", "amx-tiles", "max|d|/max|y|");
  for (int type : types)
    for (const auto &s : shapes) {
      if (!strcmp(only, "tg")) break;
      bench_case c;
      c.type = type, c.n = 512, c.k = s[0], c.m = s[1];
      case_make(c, 1);
      const double ops = 2.0 * c.n * c.k * c.m;
      const matmul_fn fns[3] = {aglm_kernels_avx512.matmul, amx_avx512, aglm_kernels_amx.matmul};
      const bool packed[3] = {false, true, true};
      double t[3] = {0, 0, 0};
      time_fns(c, amx ? 3 : 2, fns, packed, threads, reps, t);
      const double t_ref = t[0], t_p = t[1], t_t = t[2];
      char tiles[32] = "-";
      if (amx) snprintf(tiles, sizeof tiles, "%.1f", ops / t_t * 1e-9);
      printf("%-5s %5lldx%-5lld %10.1f %12.1f %10s %12.2g\n", tname(type), (long long)c.k, (long long)c.m,
             ops / t_ref * 1e-9, ops / t_p * 1e-9, tiles, rel_diff(c, amx ? aglm_kernels_amx.matmul : amx_avx512));
      case_free(c);
    }
  printf("\ndecode n=1: GB/s of weights (%d copies of each matrix, > L3)\n%-5s %-11s %10s %12s\n", 6, "type", "k x m",
         "avx512", "amx-avx512");
  for (int type : types)
    for (const auto &s : shapes) {
      if (!strcmp(only, "pp")) break;
      bench_case c;
      c.type = type, c.n = 1, c.k = s[0], c.m = s[1];
      case_make(c, 6);
      const double bytes = (double)c.row * c.m;
      const matmul_fn fns[2] = {aglm_kernels_avx512.matmul, amx_avx512};
      const bool packed[2] = {false, true};
      double t[2];
      time_fns(c, 2, fns, packed, threads, reps * 6, t);
      const double t_ref = t[0], t_p = t[1];
      printf("%-5s %5lldx%-5lld %10.1f %12.1f\n", tname(type), (long long)c.k, (long long)c.m, bytes / t_ref * 1e-9,
             bytes / t_p * 1e-9);
      case_free(c);
    }
  return 0;
}
