// backend-ops: every IR op (enum aglm_op_kind) run through the HAL on a backend module and on the built-in CPU backend's
// reference kernels (variant "ref"), compared output by output. Each case is a small graph (the op under test, the
// sources that feed it, an output_rows op when the op writes token rows) run over batches the core builds itself
// (aglm_kv_pool + aglm_step_build: several sequences, cells reused and shared, prior context in the KV cache).
//
// Usage: backend-ops --module PATH|cpu [--device N] [--variant V] [--op NAME] [--filter S] [--json] [--list]
//                    [--self-check-fail[=input|output]] [--sharp-quant TYPES]
//   --sharp-quant      TYPES (comma-separated weight types, e.g. Q8_0,Q4_0): the module multiplies matmuls of these
//                      types on activations quantized as the CPU quantizes them (an integer-dot path), so their cases
//                      take the sharp tolerance below instead of the quantized one
//   --module cpu       the built-in CPU backend (its best variant, or --variant) against its own ref kernels
//   --self-check-fail  proves the harness can fail: `input` (default) hands the module every float it reads (weights
//                      before quantization, tables, input rows) perturbed by +-5%; `output` scales every output
//                      element the module returns by (1 +- 2 sqrt(tolerance)), an error just above the tolerance.
//                      Every case must then report not ok.
// Exit status: 0 every case ok (cases the backend does not support are skipped and counted), 1 a failure, 2 bad usage,
// 77 the backend cannot run here (no device, or program_create says BACKEND_UNAVAILABLE), with the reason printed.
//
// Sources: a value of width W is gathered by an embed op from an F32 table (vocabulary 97, random token ids); a narrower
// value by a matmul of such a table with an F32 0/1 selection matrix (exact in any f32 arithmetic). Input ops and
// embed ops share one width in a graph (the core's rule), so each case has one base width W.
//
// Error measure: the normalised mean squared error of llama.cpp's test-backend-ops, NMSE = sum (a - b)^2 / sum b^2
// over every output element of every batch of the case, a = the module, b = the CPU reference (the reference in the
// denominator: a module returning huge garbage cannot shrink it). A non-finite value where the reference has a finite
// one, or an output row the module did not write (left NaN), is an infinite error.
// Tolerances (NMSE):
//   embed, embed_positions, embed_interp, input, output_rows, merge_rows (gathers and copies), add, mul, add_vector,
//   silu_mul, gelu, gelu_erf, rms_norm, layer_norm, rope ...................................... 1e-7
//   attention, f32 KV cache ...................................................................... 5e-7
//   attention, f16 KV cache (both sides round K and V to f16 the same way; f16 P.V on a GPU) ...... 1e-5
//   matmul, F32/F16/BF16 weights ................................................................ 1e-6
//   matmul, quantized weights (the CPU quantizes activations to Q8_0/Q8_1/Q8_K as llama.cpp does; a GPU may
//     multiply f32 activations: its error against the CPU is then the activation quantization, NMSE ~1e-5;
//     each matmul case prints `exact`, the NMSE of the CPU reference against a double product of the dequantized
//     weights with the f32 activations, which must sit 10x below the tolerance) ................ 5e-4
//   matmul, quantized weights named by --sharp-quant (the CPU's activation quantization and integer block sums,
//     only the float sum over blocks in another order: measured ~1e-13 at k = 4096) ............. 1e-10
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/arena-plan.h"
#include "core/graph-analysis.h"
#include "core/graph.h"
#include "core/kv-pool.h"
#include "core/step.h"
#include "kernels/kernels.h"
#include "open-autoglm/backend.h"

extern "C" const aglm_hal_backend *aglm_cpu_backend_entry(uint32_t api_version, char *why, size_t why_len);

namespace {

constexpr double kTolElementwise = 1e-7;
constexpr double kTolAttnF32 = 5e-7;
constexpr double kTolAttnF16 = 1e-5;
constexpr double kTolMatmulFloat = 1e-6;
constexpr double kTolMatmulQuant = 5e-4;
constexpr double kTolMatmulQuantSharp = 1e-10;
constexpr double kSelfCheckInput = 0.05; // relative perturbation of the module's inputs in --self-check-fail=input
constexpr int kVocab = 97;               // rows of every source table (token ids are drawn below)

// ---- small utilities ------------------------------------------------------------------------------------------

struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next() >> 40) * (1.0 / 16777216.0)); }
  int below(int n) { return (int)(next() % (uint64_t)n); }
  float sign() { return (next() >> 63) ? 1.0f : -1.0f; }
};

const char *type_name(int t) {
  switch (t) {
    case AGLM_TYPE_F32: return "F32";
    case AGLM_TYPE_F16: return "F16";
    case AGLM_TYPE_BF16: return "BF16";
    case AGLM_TYPE_Q8_0: return "Q8_0";
    case AGLM_TYPE_Q4_0: return "Q4_0";
    case AGLM_TYPE_Q4_1: return "Q4_1";
    case AGLM_TYPE_Q5_0: return "Q5_0";
    case AGLM_TYPE_Q5_1: return "Q5_1";
    case AGLM_TYPE_Q4_K: return "Q4_K";
    case AGLM_TYPE_Q5_K: return "Q5_K";
    case AGLM_TYPE_Q6_K: return "Q6_K";
    default: return "-";
  }
}

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

// A number for JSON: non-finite errors as 1e999 (JSON.parse reads Infinity).
std::string json_num(double v) {
  if (!std::isfinite(v)) return "1e999";
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

struct aligned_bytes {
  std::unique_ptr<uint8_t, void (*)(void *)> p{nullptr, std::free};
  size_t n = 0;
  void resize(size_t bytes) {
    n = bytes;
    p.reset((uint8_t *)std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  }
};

// ---- a case's graph --------------------------------------------------------------------------------------------

// The graph plus each weight's values as floats (quantized per row of ne[0] into its type for each side).
struct case_graph {
  aglm_graph g;
  std::vector<std::vector<float>> wf;
  int64_t base_width = 0; // W: the width of every embed source (and of input rows)

  int weight(const std::string &name, int type, int64_t ne0, int64_t ne1, std::vector<float> values) {
    aglm_weight w;
    w.name = name;
    w.type = type;
    w.n_dims = ne1 > 1 || type != AGLM_TYPE_F32 ? 2 : 1;
    w.ne[0] = ne0;
    w.ne[1] = ne1;
    g.weights.push_back(w);
    wf.push_back(std::move(values));
    return (int)g.weights.size() - 1;
  }
  int value(int rows, int64_t width) {
    g.values.push_back({rows, width});
    return (int)g.values.size() - 1;
  }
  int op(aglm_op_kind kind, int rows, int64_t width, std::initializer_list<int> in, std::initializer_list<int> w = {}) {
    aglm_op o;
    o.kind = kind;
    o.out = value(rows, width);
    int k = 0;
    for (int v : in) o.in[k++] = v;
    k = 0;
    for (int x : w) o.w[k++] = x;
    g.ops.push_back(o);
    return o.out;
  }
  aglm_op &last() { return g.ops.back(); }
  // Makes value v (token rows) the graph's output through output_rows, or directly if it has output rows.
  void output(int v) {
    g.output = g.values[v].rows == AGLM_ROWS_OUTPUTS ? v : op(AGLM_OP_OUTPUT_ROWS, AGLM_ROWS_OUTPUTS, g.values[v].width, {v});
  }
};

std::vector<float> random_values(rng &r, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float &x : v) x = r.uniform(lo, hi);
  return v;
}

// A source value of `width` (<= W) on token rows: an embed from a fresh F32 table of W columns, then, for a narrower
// value, an F32 0/1 matrix selecting its first `width` columns.
int source(case_graph &c, rng &r, int64_t width) {
  const int64_t W = c.base_width;
  const int table = c.weight("src" + std::to_string(c.g.weights.size()), AGLM_TYPE_F32, W, kVocab, random_values(r, (size_t)(W * kVocab), -2, 2));
  const int v = c.op(AGLM_OP_EMBED, AGLM_ROWS_TOKENS, W, {}, {table});
  if (width == W) return v;
  std::vector<float> sel((size_t)(width * W), 0.0f);
  for (int64_t j = 0; j < width; j++) sel[(size_t)(j * W + j)] = 1.0f;
  const int s = c.weight("sel" + std::to_string(c.g.weights.size()), AGLM_TYPE_F32, W, width, std::move(sel));
  return c.op(AGLM_OP_MATMUL, AGLM_ROWS_TOKENS, width, {v}, {s});
}

// ---- cases -----------------------------------------------------------------------------------------------------

// Batch scenarios (the batches of a case, on one KV cell pool shared by both sides).
enum scenario_kind {
  SC_ONE,        // one sequence: 5 tokens, then 1 (the measured batch of 1, at position 5)
  SC_MANY,       // 4 sequences of 7, 5, 3, 11 tokens; one freed, one forked at 6, one truncated by 2; then 67 tokens of 4
                 // sequences in another order (cells reused out of order, shared by the fork)
  SC_NC_ONE,     // non-causal: a sequence of 5 tokens, then a new one of 1
  SC_NC_MANY,    // non-causal: a sequence of 9 freed, then 3 new sequences of 30, 20, 17 (67) in one batch
  SC_MERGE_ONE,  // merge_rows k = 4: a sequence of 8, then another of 4 (every 4th token's output)
  SC_MERGE_MANY, // merge_rows k = 4: a sequence of 8 freed, then 24, 20, 20 (64) in 3 sequences
};

struct test_case {
  std::string op, type = "-", shape;
  int batch = 1; // tokens of the measured batch
  scenario_kind scenario = SC_ONE;
  double tol = kTolElementwise;
  int kv_type = AGLM_TYPE_F32;
  int embd = 0;            // 0: no input rows; 1: every token brings one; 2: every third token (the vision path)
  bool rope_planes = false; // 4-plane rope positions
  bool grid = false;        // embed_interp source coordinates
  int grid_cols = 0, grid_rows = 0;
  bool mixed_outputs = false;
  int merge = 1;
  int matmul_op = -1; // a matmul whose reference is also checked against a double product (its index in the graph)
  std::function<void(case_graph &, rng &)> build;

  std::string name() const { return op + "/" + type + "/" + shape + "/b" + std::to_string(batch); }
};

std::vector<test_case> g_cases;

void add(test_case c, bool many) {
  c.batch = many ? 67 : 1;
  if (c.scenario == SC_ONE && many) c.scenario = SC_MANY;
  if (c.scenario == SC_NC_ONE && many) c.scenario = SC_NC_MANY;
  if (c.scenario == SC_MERGE_ONE) c.batch = many ? 64 : 4, c.scenario = many ? SC_MERGE_MANY : SC_MERGE_ONE;
  g_cases.push_back(std::move(c));
}

void add_both(const test_case &c) {
  add(c, false);
  add(c, true);
}

const int kAllTypes[] = {AGLM_TYPE_F32, AGLM_TYPE_F16, AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0, AGLM_TYPE_Q4_1,
                         AGLM_TYPE_Q5_0, AGLM_TYPE_Q5_1, AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K, AGLM_TYPE_Q6_K};

bool is_float_type(int t) { return t == AGLM_TYPE_F32 || t == AGLM_TYPE_F16 || t == AGLM_TYPE_BF16; }

// Widths a weight type can have: float types odd ones, quantized ones 1 block, 3 blocks and a realistic 4096.
std::vector<int64_t> type_widths(int t) {
  if (is_float_type(t)) return {1, 33, 256, 4097}; // 256: a multiple of 32, the f16 prompt tiles of a GPU
  const int64_t b = (int64_t)aglm_type_block_size(t);
  return {b, 3 * b, 4096};
}

void elementwise_cases() {
  const int64_t widths[] = {1, 7, 33, 4097};
  struct spec {
    aglm_op_kind kind;
    const char *label;
    int inputs;
    int vectors; // weights of `width` elements
  };
  const spec specs[] = {
      {AGLM_OP_RMS_NORM, "rms_norm", 1, 1},   {AGLM_OP_ADD, "add", 2, 0},        {AGLM_OP_MUL, "mul", 2, 0},
      {AGLM_OP_SILU_MUL, "silu_mul", 2, 0},   {AGLM_OP_LAYER_NORM, "layer_norm", 1, 2},
      {AGLM_OP_LAYER_NORM, "layer_norm", 1, 1}, {AGLM_OP_GELU, "gelu", 1, 0},    {AGLM_OP_GELU_ERF, "gelu_erf", 1, 0},
      {AGLM_OP_ADD_VECTOR, "add_vector", 1, 1}, {AGLM_OP_INPUT, "input", 0, 0},  {AGLM_OP_OUTPUT_ROWS, "output_rows", 1, 0},
  };
  for (const spec &s : specs) {
    for (int64_t w : widths) {
      // A layer norm of one value without bias is 0 whatever the kernel does: that case takes width 3.
      const int64_t width = s.kind == AGLM_OP_LAYER_NORM && s.vectors == 1 && w == 1 ? 3 : w;
      test_case c;
      c.op = s.label;
      c.shape = "w=" + std::to_string(width);
      if (s.kind == AGLM_OP_LAYER_NORM) c.shape += s.vectors == 2 ? ",bias" : ",no-bias";
      if (s.kind == AGLM_OP_INPUT) c.embd = 1;
      if (s.kind == AGLM_OP_OUTPUT_ROWS) c.mixed_outputs = true, c.shape += ",mixed-outputs";
      c.build = [s, width](case_graph &g, rng &r) {
        g.base_width = width;
        if (s.kind == AGLM_OP_INPUT) {
          g.output(g.op(AGLM_OP_INPUT, AGLM_ROWS_TOKENS, width, {}));
          return;
        }
        const int a = source(g, r, width);
        if (s.kind == AGLM_OP_OUTPUT_ROWS) {
          g.output(a);
          return;
        }
        const int b = s.inputs == 2 ? source(g, r, width) : -1;
        int w0 = -1, w1 = -1;
        if (s.vectors >= 1) w0 = g.weight("w0", AGLM_TYPE_F32, width, 1, random_values(r, (size_t)width, -1.5f, 1.5f));
        if (s.vectors >= 2) w1 = g.weight("w1", AGLM_TYPE_F32, width, 1, random_values(r, (size_t)width, -1, 1));
        const int out = g.op(s.kind, AGLM_ROWS_TOKENS, width, {a, b}, {w0, w1});
        if (s.kind == AGLM_OP_RMS_NORM || s.kind == AGLM_OP_LAYER_NORM) g.last().f[0] = 1e-5f;
        g.output(out);
      };
      add_both(c);
    }
  }
}

void matmul_cases() {
  for (int t : kAllTypes) {
    const std::vector<int64_t> ks = type_widths(t);
    for (size_t ki = 0; ki < ks.size(); ki++) {
      const int64_t k = ks[ki], m = 37;
      const bool bias = ki == 1;
      test_case c;
      c.op = "matmul";
      c.type = type_name(t);
      c.shape = "k=" + std::to_string(k) + ",m=" + std::to_string(m) + (bias ? ",bias" : "");
      c.tol = is_float_type(t) ? kTolMatmulFloat : kTolMatmulQuant;
      c.matmul_op = 1;
      c.build = [t, k, m, bias](case_graph &g, rng &r) {
        g.base_width = k;
        const int x = source(g, r, k);
        std::vector<float> wv = random_values(r, (size_t)(k * m), -1, 1);
        for (int64_t j = 0; j < m; j++) // rows of different magnitudes
          for (int64_t i = 0; i < k; i++) wv[(size_t)(j * k + i)] *= 0.25f + 0.05f * (float)(j % 31);
        const int w = g.weight("w", t, k, m, std::move(wv));
        const int b = bias ? g.weight("b", AGLM_TYPE_F32, m, 1, random_values(r, (size_t)m, -1, 1)) : -1;
        g.output(g.op(AGLM_OP_MATMUL, AGLM_ROWS_TOKENS, m, {x}, {w, b}));
      };
      add_both(c);
    }
  }
  // More output rows than a GPU dispatch has workgroups in one dimension (65535).
  test_case c;
  c.op = "matmul";
  c.type = "Q4_0";
  c.shape = "k=32,m=70001";
  c.tol = kTolMatmulQuant;
  c.matmul_op = 1;
  c.build = [](case_graph &g, rng &r) {
    g.base_width = 32;
    const int x = source(g, r, 32);
    const int w = g.weight("w", AGLM_TYPE_Q4_0, 32, 70001, random_values(r, (size_t)32 * 70001, -1, 1));
    g.output(g.op(AGLM_OP_MATMUL, AGLM_ROWS_TOKENS, 70001, {x}, {w}));
  };
  add_both(c);
}

void embed_cases() {
  for (int t : kAllTypes) {
    const std::vector<int64_t> ws = type_widths(t);
    for (size_t wi = 0; wi < ws.size(); wi++) {
      const int64_t w = ws[wi];
      for (int many = 0; many < 2; many++) {
        test_case c;
        c.op = "embed";
        c.type = type_name(t);
        c.shape = "w=" + std::to_string(w) + ",vocab=" + std::to_string(kVocab);
        if (many && wi == 1) c.embd = 2, c.shape += ",input-rows";
        c.build = [t, w](case_graph &g, rng &r) {
          g.base_width = w;
          const int table = g.weight("table", t, w, kVocab, random_values(r, (size_t)(w * kVocab), -2, 2));
          g.output(g.op(AGLM_OP_EMBED, AGLM_ROWS_TOKENS, w, {}, {table}));
        };
        add(c, many != 0);
      }
    }
  }
}

void rope_cases() {
  struct spec {
    const char *label;
    int heads, hd, n_rot, mode;
    float base, scale, ext;
    bool ff;
    int sec[3];
  };
  const spec specs[] = {
      {"mode=0", 4, 64, 64, 0, 10000, 1, 0, false, {0, 0, 0}},
      {"mode=0,partial", 3, 128, 64, 0, 10000, 1, 0, false, {0, 0, 0}},
      {"mode=2", 4, 128, 128, 2, 1e6f, 1, 0, false, {0, 0, 0}},
      {"mode=2,odd", 5, 6, 4, 2, 10000, 1, 0, false, {0, 0, 0}},
      {"mode=0,yarn", 4, 64, 64, 0, 10000, 0.25f, 1, false, {0, 0, 0}},
      {"mode=2,yarn", 2, 128, 96, 2, 500000, 0.125f, 1, false, {0, 0, 0}},
      {"mode=2,freq-factors", 4, 64, 64, 2, 500000, 1, 0, true, {0, 0, 0}},
      {"mode=8", 4, 128, 128, 8, 1e6f, 1, 0, false, {16, 24, 24}},
      {"mode=8,partial", 2, 128, 64, 8, 10000, 1, 0, false, {8, 12, 12}},
      {"mode=24", 4, 80, 80, 24, 10000, 1, 0, false, {20, 20, 0}},
  };
  for (const spec &s : specs) {
    test_case c;
    c.op = "rope";
    char shape[128];
    std::snprintf(shape, sizeof shape, "%s,heads=%d,hd=%d,n_rot=%d", s.label, s.heads, s.hd, s.n_rot);
    c.shape = shape;
    c.rope_planes = s.mode == 8 || s.mode == 24;
    c.build = [s](case_graph &g, rng &r) {
      const int64_t width = (int64_t)s.heads * s.hd;
      g.base_width = width;
      const int x = source(g, r, width);
      std::vector<float> ffv;
      for (int j = 0; j < s.n_rot / 2; j++) ffv.push_back(1.0f + (float)(j % 5) * 1.75f);
      const int ff = s.ff ? g.weight("ff", AGLM_TYPE_F32, s.n_rot / 2, 1, ffv) : -1;
      const int out = g.op(AGLM_OP_ROPE, AGLM_ROWS_TOKENS, width, {x}, {ff});
      aglm_op &o = g.last();
      o.i[0] = s.heads, o.i[1] = s.hd, o.i[2] = s.n_rot, o.i[3] = s.mode, o.i[4] = s.ext != 0 ? 4096 : 0;
      for (int k = 0; k < 3; k++) o.i[5 + k] = s.sec[k];
      o.f[0] = s.base, o.f[1] = s.scale, o.f[2] = s.ext, o.f[3] = 1, o.f[4] = s.ext != 0 ? 32 : 0, o.f[5] = s.ext != 0 ? 1 : 0;
      g.output(out);
    };
    add_both(c);
  }
}

void attention_cases() {
  struct spec {
    int nh, nkv, hd, window, non_causal, kv_type;
  };
  const spec specs[] = {
      {4, 4, 64, 0, 0, AGLM_TYPE_F32},  {8, 2, 64, 0, 0, AGLM_TYPE_F32},   {8, 2, 64, 0, 0, AGLM_TYPE_F16},
      {2, 1, 128, 0, 0, AGLM_TYPE_F32}, {6, 2, 128, 8, 0, AGLM_TYPE_F32},  {6, 2, 128, 8, 0, AGLM_TYPE_F16},
      {4, 4, 80, 0, 1, AGLM_TYPE_F32},  {4, 4, 64, 0, 1, AGLM_TYPE_F16},
  };
  for (const spec &s : specs) {
    test_case c;
    c.op = "attention";
    char shape[128];
    std::snprintf(shape, sizeof shape, "%s,nh=%d,nkv=%d,hd=%d%s,kv=%s", s.non_causal ? "non-causal" : "causal", s.nh, s.nkv, s.hd,
                  s.window ? (",window=" + std::to_string(s.window)).c_str() : "", s.kv_type == AGLM_TYPE_F16 ? "f16" : "f32");
    c.shape = shape;
    c.kv_type = s.kv_type;
    c.tol = s.kv_type == AGLM_TYPE_F16 ? kTolAttnF16 : kTolAttnF32;
    c.scenario = s.non_causal ? SC_NC_ONE : SC_ONE;
    c.build = [s](case_graph &g, rng &r) {
      const int64_t qw = (int64_t)s.nh * s.hd, kvw = (int64_t)s.nkv * s.hd;
      g.base_width = qw;
      const int q = source(g, r, qw), k = source(g, r, kvw), v = source(g, r, kvw);
      g.g.cache.push_back({kvw, kvw});
      const int out = g.op(AGLM_OP_ATTENTION, AGLM_ROWS_TOKENS, qw, {q, k, v});
      aglm_op &o = g.last();
      o.i[0] = 0, o.i[1] = s.nh, o.i[2] = s.nkv, o.i[3] = s.hd, o.i[4] = s.window, o.i[5] = s.non_causal;
      o.f[0] = 1.0f / std::sqrt((float)s.hd);
      g.output(out);
    };
    add_both(c);
  }
}

void vision_and_position_cases() {
  for (int t : {AGLM_TYPE_F32, AGLM_TYPE_F16})
    for (int64_t w : {1, 33, 4097}) {
      test_case c;
      c.op = "embed_positions";
      c.type = type_name(t);
      c.shape = "w=" + std::to_string(w) + ",rows=40";
      c.build = [t, w](case_graph &g, rng &r) {
        g.base_width = w;
        const int table = g.weight("pos", t, w, 40, random_values(r, (size_t)(w * 40), -2, 2));
        g.output(g.op(AGLM_OP_EMBED_POSITIONS, AGLM_ROWS_TOKENS, w, {}, {table}));
      };
      add_both(c);
    }
  for (int64_t w : {7, 1024}) {
    test_case c;
    c.op = "embed_interp";
    c.type = "F32";
    c.shape = "w=" + std::to_string(w) + ",grid=5x3";
    c.grid = true, c.grid_cols = 5, c.grid_rows = 3;
    c.build = [w](case_graph &g, rng &r) {
      g.base_width = w;
      const int grid = g.weight("grid", AGLM_TYPE_F32, w, 15, random_values(r, (size_t)(w * 15), -2, 2));
      const int out = g.op(AGLM_OP_EMBED_INTERP, AGLM_ROWS_TOKENS, w, {}, {grid});
      g.last().i[0] = 5, g.last().i[1] = 3;
      g.output(out);
    };
    add_both(c);
  }
  for (int k : {1, 4})
    for (int64_t w : {33, 1280}) {
      if ((k == 1) != (w == 33)) continue;
      test_case c;
      c.op = "merge_rows";
      c.shape = "k=" + std::to_string(k) + ",w=" + std::to_string(w);
      c.merge = k;
      if (k > 1) c.scenario = SC_MERGE_ONE;
      c.build = [k, w](case_graph &g, rng &r) {
        g.base_width = w;
        const int x = source(g, r, w);
        g.output(g.op(AGLM_OP_MERGE_ROWS, AGLM_ROWS_OUTPUTS, w * k, {x}));
        g.last().i[0] = k;
      };
      add_both(c);
    }
}

void build_cases() {
  elementwise_cases();
  matmul_cases();
  embed_cases();
  rope_cases();
  attention_cases();
  vision_and_position_cases();
}

// ---- running a case on both backends ---------------------------------------------------------------------------

struct side {
  const aglm_hal_backend *b = nullptr;
  int device = 0;
  const char *variant = nullptr;
  std::vector<aligned_bytes> data;
  aglm_hal_program *program = nullptr;
  aglm_hal_session *session = nullptr;
  ~side() {
    if (session) b->session_free(session);
    if (program) b->program_free(program);
  }
};

enum self_check { CHECK_NONE, CHECK_INPUT, CHECK_OUTPUT };

struct options {
  std::string module, device_variant, op, filter, sharp_quant;
  int device = 0;
  bool json = false, list = false;
  self_check check = CHECK_NONE;
};

struct result {
  std::string status = "ok"; // ok, fail, skip, error
  std::string message;
  double nmse = 0, max_abs = 0, exact = -1, module_exact = -1, seconds = 0;
  bool ref_zero = true;
};

// Quantizes a weight's floats row by row (perturbed by +-`perturb` when non-zero).
void quantize_weight(const aglm_weight &w, const std::vector<float> &values, double perturb, rng &r, aligned_bytes *out) {
  const int64_t rows = w.nelements() / w.ne[0];
  const size_t row_bytes = aglm_row_bytes(w.type, w.ne[0]);
  out->resize(row_bytes * (size_t)rows);
  std::vector<float> row((size_t)w.ne[0]);
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t j = 0; j < w.ne[0]; j++) row[(size_t)j] = values[(size_t)(i * w.ne[0] + j)] * (float)(1 + perturb * r.sign());
    aglm_quantize_row(w.type, row.data(), out->p.get() + i * row_bytes, w.ne[0]);
  }
}

struct part_desc {
  int seq, n, mode;
};

// Runs the scenario's batches on both sides and accumulates the error. Each batch is built once by the core's
// aglm_step_build on one cell pool and handed to both sessions (the module's with its own output buffers).
struct driver {
  const test_case &c;
  const options &opt;
  const aglm_graph_analysis &an;
  side &ref, &mod;
  const case_graph &cg;
  rng r{7};
  aglm_kv_pool pool;
  std::vector<int32_t> seqs;
  const int64_t out_width;
  double sum_d2 = 0, sum_r2 = 0, max_abs = 0, ex_d2 = 0, ex_r2 = 0, mex_d2 = 0; // mex: the module's row against the double product
  bool nonfinite = false;
  std::string error;
  std::vector<float> mm_w; // the checked matmul's weights, dequantized [m][k]

  driver(const test_case &c_, const options &o, const aglm_graph_analysis &a, side &rs, side &ms, const case_graph &g)
      : c(c_), opt(o), an(a), ref(rs), mod(ms), cg(g), out_width(g.g.values[(size_t)g.g.output].width) {}

  int create() {
    int32_t id = -1;
    pool.seq_create(&id);
    seqs.push_back(id);
    return (int)seqs.size() - 1;
  }
  int fork(int s, int64_t n) {
    int32_t id = -1;
    pool.seq_fork(seqs[(size_t)s], n, &id);
    seqs.push_back(id);
    return (int)seqs.size() - 1;
  }
  void drop(int s) { pool.seq_free(seqs[(size_t)s]); }
  void truncate(int s, int64_t n) { pool.seq_truncate(seqs[(size_t)s], n); }

  void step(const std::vector<part_desc> &descs) {
    if (!error.empty()) return;
    int64_t n = 0;
    for (const part_desc &d : descs) n += d.n;
    std::vector<float> ref_out((size_t)(n * out_width), NAN), mod_out((size_t)(n * out_width), NAN);
    std::vector<aglm_step_part> parts;
    int64_t at = 0;
    for (size_t pi = 0; pi < descs.size(); pi++) {
      const part_desc &d = descs[pi];
      aglm_step_part p;
      p.seq = seqs[(size_t)d.seq];
      for (int i = 0; i < d.n; i++) p.tokens.push_back((uint32_t)r.below(kVocab));
      p.out_mode = c.merge > 1 ? 3 : c.mixed_outputs ? (int)((pi + descs.size()) % 3) : 2;
      p.out = ref_out.data() + at * out_width;
      if (c.embd) {
        for (int i = 0; i < d.n; i++) {
          const bool row = c.embd == 1 || i % 3 == 1;
          p.embd_row.push_back(row ? (int32_t)(p.embd.size() / (size_t)cg.base_width) : -1);
          if (row)
            for (int64_t j = 0; j < cg.base_width; j++) p.embd.push_back(r.uniform(-2, 2));
        }
      }
      if (c.rope_planes)
        for (int i = 0; i < 4 * d.n; i++) p.rope_pos.push_back(r.below(64));
      if (c.grid)
        for (int i = 0; i < d.n; i++) {
          p.grid_pos.push_back(r.uniform(-0.7f, (float)c.grid_cols - 0.3f));
          p.grid_pos.push_back(r.uniform(-0.7f, (float)c.grid_rows - 0.3f));
        }
      parts.push_back(std::move(p));
      at += d.n;
    }
    aglm_step s;
    aglm_step_limits lim{n, {out_width, 0}};
    const aglm_result br = aglm_step_build(pool, an, lim, std::move(parts), &s);
    if (!br.is_ok()) {
      error = "harness: step build failed: " + br.message;
      return;
    }
    char msg[1024] = {0};
    int32_t st = ref.b->session_decode(ref.session, &s.batch, msg, sizeof msg);
    if (st != AGLM_OK) {
      error = std::string("reference decode failed: ") + msg;
      return;
    }
    aglm_hal_batch mb = s.batch;
    std::vector<float *> mod_ptrs(s.out.size());
    for (size_t i = 0; i < s.out.size(); i++) mod_ptrs[i] = mod_out.data() + (s.out[i] - ref_out.data());
    mb.out = mod_ptrs.data();
    std::vector<float> embd;
    if (opt.check == CHECK_INPUT && mb.embd) {
      embd = s.embd;
      for (float &x : embd) x *= (float)(1 + kSelfCheckInput * r.sign());
      mb.embd = embd.data();
    }
    st = mod.b->session_decode(mod.session, &mb, msg, sizeof msg);
    if (st != AGLM_OK) {
      error = std::string("module decode failed: ") + msg;
      return;
    }
    const double out_scale = 2 * std::sqrt(c.tol);
    for (size_t i = 0; i < s.out.size(); i++) {
      const float *a = mod_ptrs[i], *b = s.out[i];
      for (int64_t j = 0; j < out_width; j++) {
        const double bv = b[j], av = opt.check == CHECK_OUTPUT ? a[j] * (1 + out_scale * r.sign()) : a[j];
        if (!std::isfinite(av) || !std::isfinite(bv)) {
          if (!(std::isnan(av) && std::isnan(bv)) && av != bv) nonfinite = true;
          continue;
        }
        sum_d2 += (av - bv) * (av - bv);
        sum_r2 += bv * bv;
        max_abs = std::max(max_abs, std::fabs(av - bv));
      }
      if (c.matmul_op >= 0) exact_check(s, i, b, a);
    }
  }

  // The reference's output row (and the module's) against a double product of the dequantized weights with the f32
  // activations.
  void exact_check(const aglm_step &s, size_t i, const float *ref_row, const float *mod_row) {
    const aglm_op &op = cg.g.ops[(size_t)c.matmul_op];
    const aglm_weight &w = cg.g.weights[(size_t)op.w[0]];
    const int64_t k = w.ne[0], m = w.ne[1];
    if (mm_w.empty()) {
      mm_w.resize((size_t)(k * m));
      const size_t rb = aglm_row_bytes(w.type, k);
      for (int64_t j = 0; j < m; j++) aglm_dequantize_row(w.type, ref.data[(size_t)op.w[0]].p.get() + j * rb, mm_w.data() + j * k, k);
    }
    const aglm_op &src = cg.g.ops[0]; // the embed of the source table (k == W: no selection)
    const std::vector<float> &table = cg.wf[(size_t)src.w[0]];
    const float *x = table.data() + (size_t)s.batch.tokens[s.batch.out_rows[i]] * (size_t)k;
    const float *bias = op.w[1] >= 0 ? cg.wf[(size_t)op.w[1]].data() : nullptr;
    for (int64_t j = 0; j < m; j++) {
      double y = bias ? bias[j] : 0;
      const float *wr = mm_w.data() + j * k;
      for (int64_t t = 0; t < k; t++) y += (double)wr[t] * x[t];
      ex_d2 += (ref_row[j] - y) * (ref_row[j] - y);
      ex_r2 += y * y;
      mex_d2 += std::isfinite(mod_row[j]) ? (mod_row[j] - y) * (mod_row[j] - y) : INFINITY;
    }
  }

  void run() {
    switch (c.scenario) {
      case SC_ONE: {
        const int a = create();
        step({{a, 5, 0}});
        step({{a, 1, 0}});
        break;
      }
      case SC_MANY: {
        const int s0 = create(), s1 = create(), s2 = create(), s3 = create();
        step({{s0, 7, 0}, {s3, 5, 0}, {s1, 3, 0}, {s2, 11, 0}});
        drop(s3);                  // its cells come back first, out of order
        const int s4 = fork(s2, 6); // shares s2's first 6 cells
        truncate(s0, 5);            // s0's last 2 cells are reused below
        step({{s1, 25, 0}, {s0, 20, 0}, {s4, 10, 0}, {s2, 12, 0}});
        break;
      }
      case SC_NC_ONE: {
        const int a = create();
        step({{a, 5, 0}});
        const int b = create();
        step({{b, 1, 0}});
        break;
      }
      case SC_NC_MANY: {
        const int a = create();
        step({{a, 9, 0}});
        drop(a);
        const int s1 = create(), s2 = create(), s3 = create();
        step({{s1, 30, 0}, {s2, 20, 0}, {s3, 17, 0}});
        break;
      }
      case SC_MERGE_ONE: {
        const int a = create();
        step({{a, 8, 0}});
        const int b = create();
        step({{b, 4, 0}});
        break;
      }
      case SC_MERGE_MANY: {
        const int a = create();
        step({{a, 8, 0}});
        drop(a);
        const int s1 = create(), s2 = create(), s3 = create();
        step({{s1, 24, 0}, {s2, 20, 0}, {s3, 20, 0}});
        break;
      }
    }
  }
};

// Why the module cannot run programs at all (program_create said BACKEND_UNAVAILABLE before any case ran).
std::string g_unavailable;
bool g_module_ran = false;

result run_case(const test_case &c, const options &opt, const aglm_hal_backend *module) {
  result res;
  case_graph cg;
  rng r(std::hash<std::string>{}(c.name()));
  c.build(cg, r);
  const aglm_result vr = aglm_graph_validate(cg.g);
  if (!vr.is_ok()) return res.status = "error", res.message = "harness: invalid graph: " + vr.message, res;
  for (const aglm_op &op : cg.g.ops) {
    const int type = op.w[0] >= 0 ? cg.g.weights[(size_t)op.w[0]].type : -1;
    if (!module->supports(opt.device, op.kind, type))
      return res.status = "skip", res.message = std::string("the backend does not support ") + aglm_op_name(op.kind) + (type >= 0 ? std::string(" with ") + type_name(type) + " weights" : ""), res;
  }
  const aglm_graph_analysis an = aglm_graph_analyse(cg.g);
  side ref, mod;
  ref.b = aglm_cpu_backend_entry(AGLM_HAL_API_VERSION, nullptr, 0);
  ref.variant = "ref";
  mod.b = module;
  mod.device = opt.device;
  mod.variant = opt.device_variant.empty() ? nullptr : opt.device_variant.c_str();
  rng pr(99);
  const int n_threads = (int)std::max(1u, std::thread::hardware_concurrency());
  int64_t n_batch = c.batch, n_cells = 16;
  if (c.scenario == SC_MANY || c.scenario == SC_NC_MANY || c.scenario == SC_MERGE_MANY) n_cells = 128;
  n_batch = std::max<int64_t>(n_batch, 26);
  const aglm_arena_plan plan = aglm_plan_arena(cg.g, n_batch);
  for (side *sd : {&ref, &mod}) {
    std::vector<const void *> data;
    std::vector<int> types;
    std::vector<uint64_t> nbytes;
    sd->data.resize(cg.g.weights.size());
    for (size_t i = 0; i < cg.g.weights.size(); i++) {
      quantize_weight(cg.g.weights[i], cg.wf[i], sd == &mod && opt.check == CHECK_INPUT ? kSelfCheckInput : 0, pr, &sd->data[i]);
      data.push_back(sd->data[i].p.get());
      types.push_back(cg.g.weights[i].type);
      nbytes.push_back(sd->data[i].n);
    }
    aglm_hal_graph_view view;
    aglm_graph_view_build(cg.g, an, data, types, nbytes, &view);
    aglm_hal_program_desc pd{};
    pd.graph = &view.graph;
    pd.device = sd->device;
    pd.variant = sd->variant;
    pd.variant_source = "backend-ops";
    pd.n_threads = n_threads;
    char msg[1024] = {0};
    const char *who = sd == &ref ? "reference" : "module";
    int32_t st = sd->b->program_create(&pd, &sd->program, msg, sizeof msg);
    if (st != AGLM_OK) {
      sd->program = nullptr;
      if (sd == &mod && st == AGLM_ERR_BACKEND_UNAVAILABLE && !g_module_ran) g_unavailable = msg;
      return res.status = "error", res.message = std::string(who) + " program_create failed (" + aglm_status_code((aglm_status)st) + "): " + msg, res;
    }
    aglm_hal_session_desc sdesc{};
    sdesc.n_cells = n_cells;
    sdesc.n_batch = n_batch;
    sdesc.n_threads = n_threads;
    sdesc.kv_type = c.kv_type;
    sdesc.value_offsets = plan.offset.data();
    sdesc.arena_bytes = plan.size;
    st = sd->b->session_create(sd->program, &sdesc, &sd->session, msg, sizeof msg);
    if (st != AGLM_OK) {
      sd->session = nullptr;
      return res.status = "error", res.message = std::string(who) + " session_create failed (" + aglm_status_code((aglm_status)st) + "): " + msg, res;
    }
  }
  g_module_ran = true;
  driver d(c, opt, an, ref, mod, cg);
  d.pool.init(n_cells, 8);
  d.run();
  if (!d.error.empty()) return res.status = "error", res.message = d.error, res;
  res.ref_zero = d.sum_r2 == 0;
  res.nmse = d.nonfinite ? INFINITY : d.sum_r2 > 0 ? d.sum_d2 / d.sum_r2 : d.sum_d2 > 0 ? INFINITY : 0;
  res.max_abs = d.nonfinite ? INFINITY : d.max_abs;
  if (c.matmul_op >= 0) res.exact = d.ex_r2 > 0 ? d.ex_d2 / d.ex_r2 : 0, res.module_exact = d.ex_r2 > 0 ? d.mex_d2 / d.ex_r2 : 0;
  res.status = res.nmse <= c.tol ? "ok" : "fail";
  if (d.nonfinite) res.message = "a non-finite value or an output row the module did not write";
  return res;
}

// ---- the module --------------------------------------------------------------------------------------------------

// Loads the module as the registry does (dlopen, aglm_backend_entry for this API version, the table's version, size and
// required members); `cpu` is the built-in backend.
const aglm_hal_backend *load_module(const std::string &path, std::string *err) {
  char why[512] = {0};
  if (path == "cpu") return aglm_cpu_backend_entry(AGLM_HAL_API_VERSION, why, sizeof why);
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    return *err = std::string("dlopen failed: ") + (e ? e : "unknown error"), nullptr;
  }
  auto entry = (aglm_hal_entry_fn)dlsym(h, AGLM_HAL_ENTRY_SYMBOL);
  if (!entry) return *err = std::string("the module does not export ") + AGLM_HAL_ENTRY_SYMBOL, nullptr;
  const aglm_hal_backend *t = entry(AGLM_HAL_API_VERSION, why, sizeof why);
  if (!t) return *err = std::string("the module refused HAL API version ") + std::to_string(AGLM_HAL_API_VERSION) + ": " + why, nullptr;
  if (t->api_version != AGLM_HAL_API_VERSION)
    return *err = "the module implements HAL API version " + std::to_string(t->api_version), nullptr;
  if (t->size < sizeof(aglm_hal_backend) || !t->score || !t->program_create || !t->program_free || !t->program_describe ||
      !t->session_create || !t->session_free || !t->session_decode || !t->device_count || !t->device_info || !t->supports)
    return *err = "the module's backend table is incomplete", nullptr;
  return t;
}

// One case as a JSON object (--json).
std::string case_json(const test_case &c, const result &r) {
  return "{\"name\":" + json_str(c.name()) + ",\"op\":" + json_str(c.op) + ",\"type\":" + json_str(c.type) + ",\"shape\":" + json_str(c.shape) +
         ",\"batch\":" + std::to_string(c.batch) + ",\"status\":" + json_str(r.status) + ",\"ok\":" + (r.status == "ok" || r.status == "skip" ? "true" : "false") +
         ",\"nmse\":" + json_num(r.nmse) + ",\"tolerance\":" + json_num(c.tol) + ",\"maxAbsDiff\":" + json_num(r.max_abs) +
         ",\"refZero\":" + (r.ref_zero ? "true" : "false") + (r.exact >= 0 ? ",\"exactNmse\":" + json_num(r.exact) + ",\"moduleExactNmse\":" + json_num(r.module_exact) : std::string()) +
         ",\"seconds\":" + json_num(r.seconds) + (r.message.empty() ? std::string() : ",\"message\":" + json_str(r.message)) + "}";
}

// One case as a line: op, weight type, shape, batch, nmse, tolerance, ok.
void print_case(const test_case &c, const result &r) {
  char nmse[32] = "-";
  if (r.status == "ok" || r.status == "fail") std::snprintf(nmse, sizeof nmse, "%.3e", r.nmse);
  std::printf("%-12s %-5s %-48s b=%-3d nmse %-10s tol %-6.0e %s%s%s\n", c.op.c_str(), c.type.c_str(), c.shape.c_str(), c.batch, nmse, c.tol,
              r.status == "ok" ? "ok" : r.status == "skip" ? "skip" : "NOT OK", r.message.empty() ? "" : ": ", r.message.c_str());
  if (r.exact >= 0)
    std::printf("%-12s        vs a double product of f32 activations: reference nmse %.3e, module %.3e\n", "", r.exact, r.module_exact);
}

int usage() {
  std::fprintf(stderr, "usage: backend-ops --module PATH|cpu [--device N] [--variant V] [--op NAME] [--filter S] [--json] [--list] "
                       "[--self-check-fail[=input|output]] [--sharp-quant TYPES]\n");
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  options opt;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    const char *v = nullptr;
    if (a == "--module" && (v = next())) opt.module = v;
    else if (a == "--device" && (v = next())) opt.device = std::atoi(v);
    else if (a == "--variant" && (v = next())) opt.device_variant = v;
    else if (a == "--op" && (v = next())) opt.op = v;
    else if (a == "--filter" && (v = next())) opt.filter = v;
    else if (a == "--sharp-quant" && (v = next())) opt.sharp_quant = v;
    else if (a == "--json") opt.json = true;
    else if (a == "--list") opt.list = true;
    else if (a == "--self-check-fail" || a == "--self-check-fail=input") opt.check = CHECK_INPUT;
    else if (a == "--self-check-fail=output") opt.check = CHECK_OUTPUT;
    else return usage();
  }
  build_cases();
  if (!opt.sharp_quant.empty()) {
    const std::string list = "," + opt.sharp_quant + ",";
    for (test_case &c : g_cases)
      if (c.op == "matmul" && c.tol == kTolMatmulQuant && list.find("," + c.type + ",") != std::string::npos) c.tol = kTolMatmulQuantSharp;
  }
  std::vector<const test_case *> cases;
  for (const test_case &c : g_cases)
    if ((opt.op.empty() || c.op == opt.op) && (opt.filter.empty() || c.name().find(opt.filter) != std::string::npos)) cases.push_back(&c);
  if (opt.list) {
    for (const test_case *c : cases) std::printf("%s  tolerance %.0e\n", c->name().c_str(), c->tol);
    std::printf("%zu cases\n", cases.size());
    return 0;
  }
  if (opt.module.empty()) return usage();

  std::string err;
  const aglm_hal_backend *module = load_module(opt.module, &err);
  std::string head = "{\"module\":" + json_str(opt.module);
  auto finish = [&](int code, const std::string &stage, const std::string &reason) {
    if (opt.json) std::printf("%s,\"unavailable\":{\"stage\":%s,\"reason\":%s},\"cases\":[]}\n", head.c_str(), json_str(stage).c_str(), json_str(reason).c_str());
    else std::printf("backend-ops: %s: %s\n", stage.c_str(), reason.c_str());
    return code;
  };
  if (!module) return finish(1, "load", err);
  char why[512] = {0};
  const int32_t score = module->score(why, sizeof why);
  const int32_t n_dev = module->device_count();
  head += ",\"backend\":" + json_str(module->name ? module->name : "?") + ",\"score\":" + std::to_string(score) + ",\"scoreWhy\":" + json_str(why);
  // A score of 0 with devices present is not fatal: the harness names its backend, as a user naming a CPU Vulkan
  // device (lavapipe) does. Without a device nothing can run.
  if (n_dev <= 0) return finish(77, "devices", std::string("no device (score ") + std::to_string(score) + ": " + why + ")");
  if (opt.device < 0 || opt.device >= n_dev) return finish(2, "devices", "--device " + std::to_string(opt.device) + " of " + std::to_string(n_dev));
  aglm_hal_device_info info{};
  module->device_info(opt.device, &info);
  head += ",\"device\":" + json_str(info.name) + ",\"deviceDescription\":" + json_str(info.description);
  if (!opt.json) std::printf("backend-ops: %s (%s), device %d %s; score %d: %s; reference: cpu ref\n", module->name, opt.module.c_str(), opt.device, info.name, score, why);

  const auto t0 = std::chrono::steady_clock::now();
  std::string rows;
  int n_ok = 0, n_fail = 0, n_skip = 0;
  for (const test_case *c : cases) {
    const auto c0 = std::chrono::steady_clock::now();
    result r = run_case(*c, opt, module);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    if (!g_unavailable.empty()) return finish(77, "program_create", g_unavailable);
    if (r.status == "ok") n_ok++;
    else if (r.status == "skip") n_skip++;
    else n_fail++;
    if (opt.json) rows += std::string(rows.empty() ? "" : ",") + case_json(*c, r);
    else print_case(*c, r);
    std::fflush(stdout);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opt.json)
    std::printf("%s,\"unavailable\":null,\"selfCheck\":%s,\"cases\":[%s],\"passed\":%d,\"failed\":%d,\"skipped\":%d,\"seconds\":%s}\n", head.c_str(),
                json_str(opt.check == CHECK_INPUT ? "input" : opt.check == CHECK_OUTPUT ? "output" : "none").c_str(), rows.c_str(), n_ok, n_fail, n_skip,
                json_num(secs).c_str());
  else std::printf("%d passed, %d failed, %d skipped (%zu cases, %.1f s)\n", n_ok, n_fail, n_skip, cases.size(), secs);
  return n_fail ? 1 : 0;
}
