// cuda-host-tests: the CUDA kernels' shared arithmetic (kernels/*.cuh) run on the CPU, in the order the device runs
// it (lanes, trees, splits), against the reference kernels (aglm_kernels_ref, aglm_dequantize_row, the CPU backend's
// session for rope tables). Prints one JSON array of checks {check, ok, maxDiff, tolerance, note} and exits 1 if any
// fails. Built with the host compiler: no nvcc, no GPU needed (test/native/cuda.test.ts runs it).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu-hal.h"
#include "backends/cuda/kernels/ops.cuh"
#include "backends/cuda/kernels/quant.cuh"
#include "kernels/ref/ref-kernels.h"

namespace {

struct check {
  std::string name;
  bool ok;
  double max_diff, tolerance;
  std::string note;
};
std::vector<check> g_checks;

void record(const std::string &name, double max_diff, double tolerance, const std::string &note = "") {
  g_checks.push_back({name, max_diff <= tolerance, max_diff, tolerance, note});
}

std::mt19937 g_rng(1234);
std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v) x = d(g_rng);
  return v;
}

const char *type_name(int t) {
  switch (t) {
    case AGLM_TYPE_F32: return "f32";
    case AGLM_TYPE_F16: return "f16";
    case AGLM_TYPE_BF16: return "bf16";
    case AGLM_TYPE_Q8_0: return "q8_0";
    case AGLM_TYPE_Q4_0: return "q4_0";
    case AGLM_TYPE_Q4_1: return "q4_1";
    case AGLM_TYPE_Q5_0: return "q5_0";
    case AGLM_TYPE_Q5_1: return "q5_1";
    case AGLM_TYPE_Q4_K: return "q4_K";
    case AGLM_TYPE_Q5_K: return "q5_K";
    case AGLM_TYPE_Q6_K: return "q6_K";
    default: return "?";
  }
}

// ---- per-type dispatch of the templates (the device instantiates them per kernel) -----------------------------

typedef void (*dequant_fn)(const void *, int64_t, float *);
typedef float (*dotq_fn)(const void *, int64_t, const aglm_block_q8_1 *);
typedef float (*dotf_fn)(const void *, int64_t, const float *);

template <int T> struct fns {
  static void dq(const void *r, int64_t c, float *y) { aglm_cu_dequant_chunk<T>(r, c, y); }
  static float q(const void *r, int64_t c, const aglm_block_q8_1 *x) { return aglm_cu_dot_chunk_q<T>(r, c, x); }
  static float f(const void *r, int64_t c, const float *x) { return aglm_cu_dot_chunk_f<T>(r, c, x); }
};

struct type_entry {
  int type;
  dequant_fn dq;
  dotq_fn dotq;
  dotf_fn dotf;
};
#define AGLM_ENTRY(T) {T, fns<T>::dq, fns<T>::q, fns<T>::f}
const type_entry kTypes[] = {AGLM_ENTRY(AGLM_TYPE_F32),  AGLM_ENTRY(AGLM_TYPE_F16),  AGLM_ENTRY(AGLM_TYPE_BF16),
                             AGLM_ENTRY(AGLM_TYPE_Q8_0), AGLM_ENTRY(AGLM_TYPE_Q4_0), AGLM_ENTRY(AGLM_TYPE_Q4_1),
                             AGLM_ENTRY(AGLM_TYPE_Q5_0), AGLM_ENTRY(AGLM_TYPE_Q5_1), AGLM_ENTRY(AGLM_TYPE_Q4_K),
                             AGLM_ENTRY(AGLM_TYPE_Q5_K), AGLM_ENTRY(AGLM_TYPE_Q6_K)};

// ---- dequantization and activation quantization ---------------------------------------------------------------

void test_dequant() {
  const int64_t K = 1024, rows = 4;
  for (const type_entry &e : kTypes) {
    std::vector<float> src = randn((size_t)(K * rows));
    src[5] = 0; // a few exact zeros and a large outlier per row
    src[K + 17] = 40.0f;
    const size_t rb = aglm_row_bytes(e.type, K);
    std::vector<uint8_t> q(rb * rows);
    double diff = 0;
    for (int64_t r = 0; r < rows; r++) {
      aglm_quantize_row(e.type, src.data() + r * K, q.data() + r * rb, K);
      std::vector<float> ref((size_t)K), got((size_t)K);
      aglm_dequantize_row(e.type, q.data() + r * rb, ref.data(), K);
      for (int64_t c = 0; c < K / 32; c++) e.dq(q.data() + r * rb, c, got.data() + 32 * c);
      for (int64_t i = 0; i < K; i++) diff = std::max(diff, (double)std::fabs(got[i] - ref[i]) + (got[i] != ref[i] ? 1e-30 : 0));
    }
    record(std::string("dequantize ") + type_name(e.type), diff, 0.0, "bit-identical to aglm_dequantize_row");
  }
}

void test_quantize_q8_1() {
  const int64_t K = 4096;
  std::vector<float> x = randn((size_t)K, 3.0f);
  for (int i = 64; i < 96; i++) x[i] = 0.0f; // an all-zero block
  x[200] = 1e4f;
  std::vector<aglm_block_q8_1> ref((size_t)K / 32), got((size_t)K / 32);
  aglm_quantize_row(AGLM_TYPE_Q8_1, x.data(), ref.data(), K);
  for (int64_t b = 0; b < K / 32; b++) aglm_cu_quantize_q8_1(x.data() + 32 * b, &got[(size_t)b]);
  size_t differing = 0;
  for (size_t b = 0; b < got.size(); b++) differing += std::memcmp(&got[b], &ref[b], sizeof(aglm_block_q8_1)) != 0;
  record("quantize activations q8_1", (double)differing, 0.0, "blocks differing from aglm_quantize_row(Q8_1)");
}

// ---- dot products, in the mat-vec kernel's order: lane L takes chunks L, L+32, ..., then the warp's tree ---------

template <typename F> float warp_row_dot(int64_t chunks, F chunk_dot) {
  float p[AGLM_CU_WARP] = {0};
  for (int lane = 0; lane < AGLM_CU_WARP; lane++)
    for (int64_t c = lane; c < chunks; c += AGLM_CU_WARP) p[lane] += chunk_dot(c);
  return aglm_cu_tree_sum32(p);
}

void test_dot() {
  const int64_t K = 2048, M = 8;
  const int64_t chunks = K / 32;
  std::vector<float> x = randn((size_t)K);
  std::vector<aglm_block_q8_1> xq((size_t)chunks);
  for (int64_t c = 0; c < chunks; c++) aglm_cu_quantize_q8_1(x.data() + 32 * c, &xq[(size_t)c]);
  std::vector<float> xdq((size_t)K);
  aglm_dequantize_row(AGLM_TYPE_Q8_1, xq.data(), xdq.data(), K);
  for (const type_entry &e : kTypes) {
    const bool quant = aglm_cu_type_quantized(e.type);
    std::vector<float> w = randn((size_t)(K * M), 0.5f);
    const size_t rb = aglm_row_bytes(e.type, K);
    std::vector<uint8_t> wq(rb * M);
    for (int64_t r = 0; r < M; r++) aglm_quantize_row(e.type, w.data() + r * K, wq.data() + r * rb, K);
    // The activations the reference pairs with the type (F32, Q8_0, Q8_1 or Q8_K).
    const int act = aglm_ref::matmul_act_type(e.type);
    std::vector<uint8_t> xref(act == AGLM_TYPE_F32 ? 0 : aglm_row_bytes(act, K));
    if (act != AGLM_TYPE_F32) aglm_ref::quantize_row_act(act, x.data(), xref.data(), K);
    const void *xr = act == AGLM_TYPE_F32 ? (const void *)x.data() : (const void *)xref.data();
    double exact_rel = 0, ref_rel = 0;
    for (int64_t r = 0; r < M; r++) {
      const uint8_t *row = wq.data() + r * rb;
      const float got = quant ? warp_row_dot(chunks, [&](int64_t c) { return e.dotq(row, c, &xq[(size_t)c]); })
                              : warp_row_dot(chunks, [&](int64_t c) { return e.dotf(row, c, x.data() + 32 * c); });
      // The same products in double: dequantized weights . the activations this path multiplies.
      std::vector<float> wd((size_t)K);
      aglm_dequantize_row(e.type, row, wd.data(), K);
      const float *xa = quant ? xdq.data() : x.data();
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < K; i++) exact += (double)wd[i] * xa[i], mag += std::fabs((double)wd[i] * xa[i]);
      if (e.type == AGLM_TYPE_Q4_1 || e.type == AGLM_TYPE_Q5_1) {
        // Their formula takes d_x sum(x_q) from the activation block's s, which is rounded to half: so does the exact.
        const size_t bb = aglm_type_block_bytes(e.type);
        for (int64_t c = 0; c < chunks; c++) {
          uint16_t m;
          std::memcpy(&m, row + c * bb + 2, 2); // {d, m, ...} in both layouts
          double xs = 0;
          for (int j = 0; j < 32; j++) xs += xdq[(size_t)(32 * c + j)];
          exact += (double)aglm_cu_h2f(m) * ((double)aglm_cu_h2f(xq[(size_t)c].s) - xs);
        }
      }
      exact_rel = std::max(exact_rel, std::fabs(got - exact) / (mag + 1e-12));
      const float ref = aglm_ref::dot_row(e.type, row, xr, K);
      ref_rel = std::max(ref_rel, std::fabs((double)got - ref) / (mag + 1e-12));
    }
    record(std::string("dot ") + type_name(e.type) + " vs exact", exact_rel, 1e-5,
           "|error| / sum |w x|: the integer sums are exact, only float scaling and summation order differ");
    const bool same_act = act == AGLM_TYPE_F32 || act == AGLM_TYPE_Q8_0 || act == AGLM_TYPE_Q8_1;
    record(std::string("dot ") + type_name(e.type) + " vs ref dot_row", ref_rel, same_act ? 1e-5 : 2e-2,
           same_act ? "same activation values as the reference (Q8_0 and Q8_1 share qs and d)"
                    : "the reference quantizes activations to Q8_K, this path to Q8_1: quantization noise");
  }
}

// ---- norms and element-wise ---------------------------------------------------------------------------------------

double rel_diff(const std::vector<float> &a, const std::vector<float> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs((double)a[i] - b[i]) / (std::fabs((double)b[i]) + 1e-6));
  return m;
}

float block_reduce(const float *x, int64_t n, float (*partial)(const float *, int64_t, int, int)) {
  float p[AGLM_CU_ROW_THREADS];
  for (int t = 0; t < AGLM_CU_ROW_THREADS; t++) p[t] = partial(x, n, t, AGLM_CU_ROW_THREADS);
  return aglm_cu_block_sum_host(p);
}

void test_norms() {
  double rms = 0, ln = 0;
  for (int64_t n : {1, 100, 4096, 5120}) {
    std::vector<float> x = randn((size_t)n, 2.0f), w = randn((size_t)n), b = randn((size_t)n);
    x[0] += 3.0f; // a mean away from zero for layer_norm
    std::vector<float> ref((size_t)n), got((size_t)n);
    aglm_kernels_ref.rms_norm(x.data(), w.data(), ref.data(), n, 1e-5f);
    const float scale = aglm_cu_rms_scale(block_reduce(x.data(), n, aglm_cu_sumsq_partial), n, 1e-5f);
    for (int64_t i = 0; i < n; i++) got[i] = aglm_cu_rms_apply(x[i], scale, w[i]);
    rms = std::max(rms, rel_diff(got, ref));
    aglm_kernels_ref.layer_norm(x.data(), w.data(), b.data(), ref.data(), n, 1e-5f);
    const float mean = aglm_cu_mean(block_reduce(x.data(), n, aglm_cu_sum_partial), n);
    float p[AGLM_CU_ROW_THREADS];
    for (int t = 0; t < AGLM_CU_ROW_THREADS; t++) p[t] = aglm_cu_centered_sumsq_partial(x.data(), mean, n, t, AGLM_CU_ROW_THREADS);
    const float ls = aglm_cu_ln_scale(aglm_cu_block_sum_host(p), n, 1e-5f);
    for (int64_t i = 0; i < n; i++) got[i] = aglm_cu_ln_apply(x[i], mean, ls, w[i], b.data(), i);
    // Relative to each element, except where w x and b cancel: there the error is relative to the terms' size.
    double m = 0;
    for (int64_t i = 0; i < n; i++)
      m = std::max(m, std::fabs((double)got[i] - ref[i]) / (std::fabs((double)ref[i]) + std::fabs((double)b[i]) + 1e-6));
    ln = std::max(ln, m);
  }
  record("rms_norm", rms, 1e-5, "float tree over 256 threads vs the reference's double sum");
  record("layer_norm", ln, 1e-5, "float trees over 256 threads vs the reference's double sums");
}

void test_elementwise() {
  const int64_t n = 10000;
  std::vector<float> g = randn((size_t)n, 4.0f), u = randn((size_t)n), ref((size_t)n), got((size_t)n);
  g[0] = 90.0f, g[1] = -90.0f, g[2] = 0.0f;
  aglm_kernels_ref.silu_mul(g.data(), u.data(), ref.data(), n);
  for (int64_t i = 0; i < n; i++) got[i] = aglm_cu_silu_mul(g[i], u[i]);
  record("silu_mul", rel_diff(got, ref), 0.0, "bit-identical on the host (the device's expf is within 2 ulp)");
  aglm_kernels_ref.gelu(g.data(), ref.data(), n);
  for (int64_t i = 0; i < n; i++) got[i] = aglm_cu_gelu(g[i]);
  record("gelu", rel_diff(got, ref), 0.0, "bit-identical on the host");
  aglm_kernels_ref.gelu_erf(g.data(), ref.data(), n);
  for (int64_t i = 0; i < n; i++) got[i] = aglm_cu_gelu_erf(g[i]);
  record("gelu_erf", rel_diff(got, ref), 0.0, "bit-identical on the host");
}

// ---- rope: tables and rotation against the CPU backend running INPUT -> ROPE ------------------------------------

// The CPU backend on the reference kernels, through its HAL table (the ABI every backend implements), so the test
// depends on the CPU's behaviour, not on its internals.
int32_t ref_score(char *why, size_t len) { return cpu_hal::put(why, len, "reference"), 1; }
int32_t ref_select(const char *, const aglm_kernels **out, char *why, size_t len) {
  *out = &aglm_kernels_ref;
  cpu_hal::put(why, len, "ref");
  return AGLM_OK;
}
const cpu_backend_config kRef = {"cuda-host-tests-ref", ref_score, ref_select, nullptr, "reference kernels", nullptr};

bool cpu_run_graph(const aglm_hal_graph &g, const aglm_hal_batch &b, int n_batch, std::string *err) {
  const aglm_hal_backend *t = cpu_hal::table<&kRef>::get();
  std::vector<uint64_t> offsets((size_t)g.n_values);
  uint64_t at = 0;
  for (int32_t v = 0; v < g.n_values; v++) offsets[(size_t)v] = at, at += aglm_align_up((size_t)n_batch * g.values[v].width * 4);
  aglm_hal_program_desc pd{};
  pd.graph = &g;
  pd.n_threads = 1;
  aglm_hal_session_desc sd{};
  sd.n_cells = 64, sd.n_batch = n_batch, sd.n_threads = 1, sd.kv_type = AGLM_TYPE_F32, sd.value_offsets = offsets.data();
  sd.arena_bytes = at;
  char msg[512] = {0};
  aglm_hal_program *p = nullptr;
  aglm_hal_session *s = nullptr;
  bool ok = t->program_create(&pd, &p, msg, sizeof msg) == AGLM_OK && t->session_create(p, &sd, &s, msg, sizeof msg) == AGLM_OK &&
            t->session_decode(s, &b, msg, sizeof msg) == AGLM_OK;
  if (s) t->session_free(s);
  if (p) t->program_free(p);
  *err = msg;
  return ok;
}

struct rope_case {
  const char *name;
  aglm_hal_rope cfg;
  int heads, head_dim;
  bool planes, freq_factors;
};

void test_rope() {
  const int n = 6;
  const rope_case cases[] = {
      {"rope mode 0", {64, 4096, 10000.0f, 1.0f, 0, 1, 32, 1, -1, 0, {0, 0, 0}}, 4, 64, false, false},
      {"rope mode 2 + freq factors", {32, 4096, 500000.0f, 1.0f, 0, 1, 32, 1, -1, 2, {0, 0, 0}}, 3, 64, false, true},
      {"rope mode 0 YaRN", {64, 4096, 10000.0f, 0.25f, 1.0f, 1, 32, 1, -1, 0, {0, 0, 0}}, 2, 128, false, false},
      {"rope mode 8 sections", {64, 4096, 1000000.0f, 1.0f, 0, 1, 32, 1, -1, 8, {8, 12, 12}}, 2, 64, true, false},
      {"rope mode 24 vision", {32, 4096, 10000.0f, 1.0f, 0, 1, 32, 1, -1, 24, {8, 8, 0}}, 2, 32, true, false},
  };
  for (const rope_case &rc : cases) {
    const int width = rc.heads * rc.head_dim;
    aglm_hal_rope cfg = rc.cfg;
    std::vector<float> ff = randn((size_t)cfg.n_rot / 2, 0.5f);
    for (float &f : ff) f = 1.0f + std::fabs(f);
    std::vector<aglm_hal_weight> weights;
    if (rc.freq_factors) {
      aglm_hal_weight w{};
      w.name = "ff";
      w.type = AGLM_TYPE_F32;
      w.n_dims = 1;
      w.ne[0] = cfg.n_rot / 2, w.ne[1] = w.ne[2] = w.ne[3] = 1;
      w.data = ff.data();
      w.nbytes = ff.size() * 4;
      w.uses = AGLM_WEIGHT_VECTOR;
      weights.push_back(w);
      cfg.freq_factors = 0;
    }
    const aglm_hal_value values[2] = {{AGLM_ROWS_TOKENS, width}, {AGLM_ROWS_TOKENS, width}};
    aglm_hal_op ops[2] = {};
    ops[0].kind = AGLM_OP_INPUT;
    ops[0].out = 0;
    ops[1].kind = AGLM_OP_ROPE;
    ops[1].out = 1;
    ops[1].in[0] = 0;
    ops[1].i[0] = rc.heads, ops[1].i[1] = rc.head_dim, ops[1].i[2] = cfg.n_rot, ops[1].i[3] = cfg.mode;
    ops[1].rope = 0;
    for (aglm_hal_op &op : ops) op.in[1] = op.in[2] = op.w[0] = op.w[1] = -1, op.flags = AGLM_OPF_FOR_HIDDEN;
    ops[1].in[0] = 0;
    aglm_hal_graph g{};
    g.weights = weights.data(), g.n_weights = (int32_t)weights.size();
    g.values = values, g.n_values = 2, g.ops = ops, g.n_ops = 2, g.ropes = &cfg, g.n_ropes = 1, g.output = 1, g.hidden = -1;
    std::vector<float> in = randn((size_t)n * width), out((size_t)n * width);
    std::vector<int32_t> embd_row(n), pos(n), planes(4 * n), cell(n), zero(n, 0), seq_len(n, n), kv(n), kinds(n, AGLM_OUT_LOGITS);
    std::vector<float *> outs(n);
    for (int t = 0; t < n; t++) {
      embd_row[t] = t, pos[t] = 3 + 97 * t, cell[t] = t, kv[t] = t, outs[t] = out.data() + (size_t)t * width;
      for (int p = 0; p < 4; p++) planes[p * n + t] = (t * 7 + p * 13) % 50;
    }
    aglm_hal_batch b{};
    b.n_tokens = n, b.pos = pos.data(), b.cell = cell.data(), b.kv_start = zero.data(), b.seq_len = seq_len.data();
    b.kv_cells = kv.data(), b.embd = in.data(), b.embd_width = width, b.embd_row = embd_row.data();
    b.rope_pos = rc.planes ? planes.data() : nullptr;
    b.n_out = n, b.out_rows = cell.data(), b.out_kind = kinds.data(), b.out = outs.data(); // every token's rope output
    std::string err;
    if (!cpu_run_graph(g, b, n, &err)) {
      record(rc.name, 1e30, 0, "the CPU backend failed: " + err);
      continue;
    }
    const float *ref = out.data();
    float corr[2] = {0, 0};
    if (cfg.ext_factor != 0) aglm_cu_yarn_corr_dims(cfg, corr);
    double diff = 0;
    for (int t = 0; t < n; t++) {
      int32_t tp[4];
      for (int p = 0; p < 4; p++) tp[p] = planes[p * n + t];
      std::vector<float> x(in.begin() + (size_t)t * width, in.begin() + (size_t)(t + 1) * width);
      for (int h = 0; h < rc.heads; h++)
        for (int j = 0; j < cfg.n_rot / 2; j++) {
          float cs[2];
          aglm_cu_rope_cos_sin(cfg, rc.freq_factors ? ff.data() : nullptr, corr, pos[t], rc.planes ? tp : nullptr, j, cs);
          int64_t i0, i1;
          aglm_cu_rope_pair(j, cfg.n_rot, cfg.mode, &i0, &i1);
          aglm_cu_rope_rotate(x.data() + h * rc.head_dim, i0, i1, cs);
        }
      for (int i = 0; i < width; i++) diff = std::max(diff, (double)std::fabs(x[i] - ref[(size_t)t * width + i]));
    }
    record(rc.name, diff, 1e-6, "the CPU backend's session (its tables and aglm_kernels_ref.rope)");
  }
}

// ---- attention: split-K online softmax and the combine, lane by lane, against aglm_ref::attention ----------------

void test_attention() {
  for (int kv_type : {AGLM_TYPE_F32, AGLM_TYPE_F16})
    for (int hd : {64, 128}) {
      const int n_head = 8, n_head_kv = 2, n_cells = 1500, n_tok = 4;
      const int n_kv_of[n_tok] = {1, 7, 300, 1400};
      const int64_t kvw = (int64_t)n_head_kv * hd;
      std::vector<float> kf = randn((size_t)(n_cells * kvw)), vf = randn((size_t)(n_cells * kvw));
      std::vector<uint16_t> kh(kf.size()), vh(vf.size());
      for (size_t i = 0; i < kf.size(); i++) kh[i] = aglm_cu_f2h(kf[i]), vh[i] = aglm_cu_f2h(vf[i]);
      const void *kc = kv_type == AGLM_TYPE_F16 ? (const void *)kh.data() : kf.data();
      const void *vc = kv_type == AGLM_TYPE_F16 ? (const void *)vh.data() : vf.data();
      std::vector<float> q = randn((size_t)n_tok * n_head * hd, 0.5f), ref((size_t)n_tok * n_head * hd), got(ref.size());
      std::vector<int32_t> cells(n_cells);
      for (int i = 0; i < n_cells; i++) cells[i] = i;
      std::shuffle(cells.begin(), cells.end(), g_rng); // a sequence's cells in any order of the pool
      std::vector<const int32_t *> rows(n_tok, cells.data());
      aglm_attn_args a{};
      a.q = q.data(), a.q_stride = n_head * hd, a.k = (const float *)kc, a.v = (const float *)vc, a.kv_stride = kvw;
      a.out = ref.data(), a.out_stride = n_head * hd, a.n_kv = n_kv_of, a.n_head = n_head, a.n_head_kv = n_head_kv;
      a.head_dim = hd, a.scale = 1.0f / std::sqrt((float)hd), a.kv_type = kv_type, a.rows = rows.data();
      std::vector<float> scratch((size_t)n_cells * n_head);
      for (int t = 0; t < n_tok; t++)
        for (int g = 0; g < n_head_kv; g++) aglm_kernels_ref.attention_group(&a, t, g, scratch.data());
      const int max_splits = 4;
      for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < n_head; h++) {
          const int n_kv = n_kv_of[t], per = aglm_cu_attn_split_cells(n_kv, max_splits);
          const int splits = (n_kv + per - 1) / per;
          const int64_t koff = (int64_t)(h / (n_head / n_head_kv)) * hd;
          const float *qh = q.data() + (size_t)t * n_head * hd + h * hd;
          std::vector<float> m(splits), l(splits), acc((size_t)splits * hd, 0.0f);
          for (int s = 0; s < splits; s++) {
            aglm_cu_softmax_state st = aglm_cu_softmax_init();
            float *ac = acc.data() + (size_t)s * hd;
            for (int j = s * per; j < std::min(n_kv, (s + 1) * per); j++) {
              const int64_t row = cells[j];
              float lanes[AGLM_CU_WARP] = {0}; // the warp's q.k: lane L takes dimensions L, L+32, ...
              for (int d = 0; d < hd; d++) lanes[d % AGLM_CU_WARP] += qh[d] * aglm_cu_kv_at(kc, kv_type, row * kvw + koff + d);
              float p;
              const float factor = aglm_cu_softmax_step(&st, aglm_cu_tree_sum32(lanes) * a.scale, &p);
              for (int d = 0; d < hd; d++) ac[d] = ac[d] * factor + p * aglm_cu_kv_at(vc, kv_type, row * kvw + koff + d);
            }
            m[s] = st.m, l[s] = st.l;
          }
          const float mx = aglm_cu_combine_max(m.data(), splits), inv = aglm_cu_combine_inv_sum(m.data(), l.data(), splits, mx);
          float *o = got.data() + (size_t)t * n_head * hd + h * hd;
          for (int d = 0; d < hd; d++) {
            float v = 0;
            for (int s = 0; s < splits; s++) v += aglm_cu_combine_weight(m[s], l[s], mx, inv) * acc[(size_t)s * hd + d];
            o[d] = v;
          }
        }
      double diff = 0;
      for (size_t i = 0; i < ref.size(); i++) diff = std::max(diff, (double)std::fabs(got[i] - ref[i]));
      record(std::string("attention split-K ") + (kv_type == AGLM_TYPE_F16 ? "f16" : "f32") + " hd " + std::to_string(hd), diff, 2e-5,
             "max |diff| (values ~N(0,1)); 1..1400 cells in up to 4 splits, GQA 8/2, shuffled cells");
    }
}

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

} // namespace

int main() {
  test_dequant();
  test_quantize_q8_1();
  test_dot();
  test_norms();
  test_elementwise();
  test_rope();
  test_attention();
  bool all = true;
  std::printf("[\n");
  for (size_t i = 0; i < g_checks.size(); i++) {
    const check &c = g_checks[i];
    all = all && c.ok;
    std::printf("  {\"check\":%s,\"ok\":%s,\"maxDiff\":%.6g,\"tolerance\":%.6g,\"note\":%s}%s\n", json_str(c.name).c_str(),
                c.ok ? "true" : "false", c.max_diff, c.tolerance, json_str(c.note).c_str(), i + 1 < g_checks.size() ? "," : "");
  }
  std::printf("]\n");
  return all ? 0 : 1;
}
