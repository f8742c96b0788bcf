// vk-selftest: what the Vulkan runtime finds on this machine, and the first kernel checked on a device against the
// scalar reference. Prints one JSON object:
//   { "loader": path | null, "error": reason | null, "instanceVersion": "1.3.x",
//     "devices": [{ name, type, driver, api, score, why, memoryBytes, memoryFree, subgroupSize, fp16, int8, ... }],
//     "checks": [{ kernel, device, shape, maxAbsDiff, nmse, tolerance, ms?, ok }] }
// The weight-type kernels (mm_<type>, getrows_<type>) are checked for every type against aglm_quantize_row /
// aglm_dequantize_row (the CPU reference), with their wall time in ms (the first check of a pipeline includes its
// compilation on lavapipe); quantize_q8 and quantize_q8k (the integer-dot path's activation quantizers) byte for byte against the CPU's
// Q8_1 and Q8_K quantizers.
// Usage: vk-selftest [--device N]   (default: the first device; a CPU device such as lavapipe is fine here)
// Exit: 0 every check passed; 1 a check failed; 77 no Vulkan (no loader, no driver, no device): a skip.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/vulkan/vk-context.h"
#include "backends/vulkan/vk-kernels.h"
#include "backends/vulkan/vk-shaders.h"
#include "kernels/kernels.h"
// Generated at build time from shaders/*.comp (glslc, then cmake/embed-spirv.cmake).
#include <matmul_f32.spv.h>
#include <quantize_q8.spv.h>
#include <quantize_q8k.spv.h>
#include <rms_norm_f32.spv.h>
#include <silu_mul_f32.spv.h>

using namespace aglm_vk;

namespace {

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += c;
  }
  return o + "\"";
}

std::string version(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." + std::to_string(VK_API_VERSION_PATCH(v));
}

uint32_t rng_state = 12345;
float rnd() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return (float)((double)rng_state / 4294967296.0 * 2.0 - 1.0);
}

struct check_result {
  std::string kernel, shape, error;
  double max_abs = 0, nmse = 0, tol = 0;
  double ms = -1; // wall time of the check (weight-type checks), -1: not measured
  bool ok = false;
};

// The F32 matmul against a double-precision reference: [t x k] . [n x k]^T + b.
check_result check_matmul(device &dev, uint32_t k, uint32_t n, uint32_t t, bool bias) {
  check_result r;
  r.kernel = "matmul_f32";
  r.shape = "k=" + std::to_string(k) + " n=" + std::to_string(n) + " t=" + std::to_string(t) + (bias ? " +bias" : "");
  r.tol = 1e-10; // normalised mean squared error (test-backend-ops' measure); f32 sums in another order: ~1e-14
  std::vector<float> x((size_t)t * k), w((size_t)n * k), b(n), ref((size_t)t * n);
  for (float &v : x) v = rnd();
  for (float &v : w) v = rnd() / std::sqrt((float)k);
  for (float &v : b) v = rnd();
  for (uint32_t i = 0; i < t; i++)
    for (uint32_t j = 0; j < n; j++) {
      double acc = 0;
      for (uint32_t q = 0; q < k; q++) acc += (double)x[(size_t)i * k + q] * w[(size_t)j * k + q];
      ref[(size_t)i * n + j] = (float)(acc + (bias ? b[j] : 0.0));
    }
  pipeline p;
  buffer bx, bw, bb, bo, dx, dw, db, d_o;
  std::string err;
  auto fail = [&](const std::string &e) {
    r.error = e;
    return r;
  };
  if (!dev.create_pipeline(matmul_f32_spv, matmul_f32_spv_bytes, 4, 16, &p, &err)) return fail(err);
  // Host-visible staging buffers, device-local working buffers (uploads and the download through copies).
  const uint64_t sx = x.size() * 4, sw = w.size() * 4, sb = b.size() * 4, so = ref.size() * 4;
  bool ok = dev.create_buffer(sx, true, &bx, &err) && dev.create_buffer(sw, true, &bw, &err) && dev.create_buffer(sb, true, &bb, &err) &&
            dev.create_buffer(so, true, &bo, &err) && dev.create_buffer(sx, false, &dx, &err) && dev.create_buffer(sw, false, &dw, &err) &&
            dev.create_buffer(sb, false, &db, &err) && dev.create_buffer(so, false, &d_o, &err);
  if (ok) {
    std::memcpy(bx.mapped, x.data(), sx);
    std::memcpy(bw.mapped, w.data(), sw);
    std::memcpy(bb.mapped, b.data(), sb);
    ok = dev.copy(bx, dx, sx, &err) && dev.copy(bw, dw, sw, &err) && dev.copy(bb, db, sb, &err);
  }
  if (ok) {
    const uint32_t push[4] = {k, n, t, bias ? 1u : 0u};
    const buffer *bufs[4] = {&dx, &dw, &db, &d_o};
    ok = dev.dispatch(p, bufs, push, (n + 63) / 64, t, 1, &err) && dev.copy(d_o, bo, so, &err);
  }
  if (ok) {
    const float *out = (const float *)bo.mapped;
    double se = 0, sr = 0;
    for (size_t i = 0; i < ref.size(); i++) {
      const double d = (double)out[i] - ref[i];
      se += d * d;
      sr += (double)ref[i] * ref[i];
      if (!(std::fabs(d) <= r.max_abs)) r.max_abs = std::isnan(d) ? INFINITY : std::fabs(d);
    }
    r.nmse = sr > 0 ? se / sr : se;
    r.ok = r.nmse <= r.tol && std::isfinite(r.max_abs);
  } else r.error = err;
  for (buffer *q : {&bx, &bw, &bb, &bo, &dx, &dw, &db, &d_o}) dev.destroy_buffer(q);
  dev.destroy_pipeline(&p);
  return r;
}

// Runs a kernel whose bindings are `inputs` (uploaded through staging buffers into device-local ones) then one output
// of `out_count` floats (downloaded); returns false with the reason on failure.
bool run_kernel(device &dev, const uint32_t *spv, size_t spv_bytes, const std::vector<const std::vector<float> *> &inputs, size_t out_count,
                const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy, std::vector<float> *out, std::string *err) {
  pipeline p;
  const uint32_t nb = (uint32_t)inputs.size() + 1;
  if (!dev.create_pipeline(spv, spv_bytes, nb, push_bytes, &p, err)) return false;
  std::vector<buffer> stage(nb), work(nb);
  bool ok = true;
  for (uint32_t i = 0; i < nb && ok; i++) {
    const uint64_t bytes = 4 * (i + 1 < nb ? inputs[i]->size() : out_count);
    ok = dev.create_buffer(bytes, true, &stage[i], err) && dev.create_buffer(bytes, false, &work[i], err);
    if (ok && i + 1 < nb) {
      std::memcpy(stage[i].mapped, inputs[i]->data(), bytes);
      ok = dev.copy(stage[i], work[i], bytes, err);
    }
  }
  if (ok) {
    std::vector<const buffer *> bufs;
    for (buffer &b : work) bufs.push_back(&b);
    ok = dev.dispatch(p, bufs.data(), push, gx, gy, 1, err) && dev.copy(work[nb - 1], stage[nb - 1], 4 * out_count, err);
  }
  if (ok) out->assign((const float *)stage[nb - 1].mapped, (const float *)stage[nb - 1].mapped + out_count);
  for (uint32_t i = 0; i < nb; i++) dev.destroy_buffer(&stage[i]), dev.destroy_buffer(&work[i]);
  dev.destroy_pipeline(&p);
  return ok;
}

void compare(const std::vector<float> &got, const std::vector<double> &ref, check_result *r) {
  double se = 0, sr = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    const double d = (double)got[i] - ref[i];
    se += d * d;
    sr += ref[i] * ref[i];
    if (!(std::fabs(d) <= r->max_abs)) r->max_abs = std::isnan(d) ? INFINITY : std::fabs(d);
  }
  r->nmse = sr > 0 ? se / sr : se;
  r->ok = r->nmse <= r->tol && std::isfinite(r->max_abs);
}

check_result check_rms_norm(device &dev, uint32_t n, uint32_t rows) {
  check_result r;
  r.kernel = "rms_norm_f32";
  r.shape = "n=" + std::to_string(n) + " rows=" + std::to_string(rows);
  r.tol = 1e-10;
  std::vector<float> x((size_t)n * rows), w(n), out;
  for (float &v : x) v = rnd() * 3;
  for (float &v : w) v = 1 + rnd() * 0.1f;
  const float eps = 1e-5f;
  std::vector<double> ref(x.size());
  for (uint32_t row = 0; row < rows; row++) {
    double ss = 0;
    for (uint32_t i = 0; i < n; i++) ss += (double)x[(size_t)row * n + i] * x[(size_t)row * n + i];
    const double scale = 1.0 / std::sqrt(ss / n + eps);
    for (uint32_t i = 0; i < n; i++) ref[(size_t)row * n + i] = x[(size_t)row * n + i] * scale * w[i];
  }
  struct {
    uint32_t n, rows;
    float eps;
  } push{n, rows, eps};
  std::string err;
  if (!run_kernel(dev, rms_norm_f32_spv, rms_norm_f32_spv_bytes, {&x, &w}, x.size(), &push, sizeof push, rows, 1, &out, &err)) r.error = err;
  else compare(out, ref, &r);
  return r;
}

check_result check_silu_mul(device &dev, uint32_t n) {
  check_result r;
  r.kernel = "silu_mul_f32";
  r.shape = "n=" + std::to_string(n);
  r.tol = 1e-9;
  std::vector<float> a(n), b(n), out;
  for (float &v : a) v = rnd() * 8;
  for (float &v : b) v = rnd() * 2;
  std::vector<double> ref(n);
  for (uint32_t i = 0; i < n; i++) ref[i] = (double)a[i] / (1.0 + std::exp(-(double)a[i])) * b[i];
  const uint32_t push = n;
  const uint32_t groups = (n + 255) / 256;
  std::string err;
  if (!run_kernel(dev, silu_mul_f32_spv, silu_mul_f32_spv_bytes, {&a, &b}, n, &push, 4, groups, 1, &out, &err)) r.error = err;
  else compare(out, ref, &r);
  return r;
}

// Rows of k floats (stride x_stride after x_off) whose blocks of `block` values range over magnitudes 1e-30 .. 1e30.
std::vector<float> magnitude_rows(uint32_t k, uint32_t rows, uint32_t x_stride, uint32_t x_off, uint32_t block) {
  const uint32_t nb = k / block;
  std::vector<float> x(x_off + (size_t)rows * x_stride, 7.0f);
  for (uint32_t t = 0; t < rows; t++)
    for (uint32_t j = 0; j < k; j++) {
      const uint32_t b = t * nb + j / block;
      x[x_off + (size_t)t * x_stride + j] = rnd() * std::pow(10.0f, (float)((int)(b * 7 % 61) - 30));
    }
  return x;
}

// Runs an activation quantizer (quantize_q8 or quantize_q8k, `block_words` words a block) over x and compares its
// `blocks` blocks of `bytes` bytes with `want` byte for byte: nmse is the share of differing bytes, max_abs the number
// of differing blocks.
void check_quantizer(device &dev, const uint32_t *spv, size_t spv_bytes, const std::vector<float> &x, const quantize_q8_push &push,
                     uint32_t block_words, size_t blocks, size_t bytes, const std::vector<uint8_t> &want, check_result *r) {
  std::vector<float> out;
  std::string err;
  const uint32_t groups = (uint32_t)((blocks + quantize_q8_wg - 1) / quantize_q8_wg);
  if (!run_kernel(dev, spv, spv_bytes, {&x}, blocks * block_words, &push, sizeof push, groups, 1, &out, &err)) {
    r->error = err;
    return;
  }
  const uint8_t *got = (const uint8_t *)out.data();
  size_t diff = 0, bad = 0;
  for (size_t b = 0; b < blocks; b++) {
    size_t d = 0;
    for (size_t i = 0; i < bytes; i++) d += got[b * bytes + i] != want[b * bytes + i];
    diff += d, bad += d != 0;
  }
  r->nmse = (double)diff / (double)want.size();
  r->max_abs = (double)bad;
  r->ok = diff == 0;
}

// quantize_q8 against aglm_quantize_row(Q8_1), byte for byte (its blocks are aglm_block_q8_1's bytes): random rows
// whose blocks range over magnitudes 1e-30 .. 1e30, and in row 0 a zero block, a block of exact ties (amax 127, so
// d = 1 and x / d = n + 0.5, rounded away from zero), a block with a NaN (skipped by amax, quantized to 0) and one of
// ties at d = 0.5. nmse: the share of differing bytes; max_abs: the differing blocks.
check_result check_quantize_q8(device &dev, uint32_t k, uint32_t rows, uint32_t x_stride, uint32_t x_off) {
  check_result r;
  r.kernel = "quantize_q8";
  r.shape = "k=" + std::to_string(k) + " rows=" + std::to_string(rows) + " stride=" + std::to_string(x_stride) + " off=" + std::to_string(x_off);
  r.tol = 0;
  const uint32_t nb = k / 32;
  std::vector<float> x = magnitude_rows(k, rows, x_stride, x_off, 32);
  float *row0 = x.data() + x_off;
  for (uint32_t j = 0; j < 32 && nb > 0; j++) row0[j] = 0.0f;
  for (uint32_t j = 0; j < 32 && nb > 1; j++) row0[32 + j] = j == 0 ? 127.0f : (float)((int)(j % 20) - 10) + 0.5f;
  if (nb > 2) row0[64 + 5] = NAN;
  for (uint32_t j = 0; j < 32 && nb > 3; j++) row0[96 + j] = j == 0 ? -63.5f : (float)((int)(j % 9) - 4) * 0.25f;
  std::vector<uint8_t> want((size_t)rows * nb * 36);
  for (uint32_t t = 0; t < rows; t++) aglm_quantize_row(AGLM_TYPE_Q8_1, x.data() + x_off + (size_t)t * x_stride, want.data() + (size_t)t * nb * 36, k);
  const quantize_q8_push push{x_off, x_stride, k, rows, 0, nb * q8_block_words};
  check_quantizer(dev, quantize_q8_spv, quantize_q8_spv_bytes, x, push, q8_block_words, (size_t)rows * nb, 36, want, &r);
  return r;
}

// quantize_q8k against aglm_quantize_row(Q8_K), byte for byte (its super-blocks are aglm_block_q8_K's bytes): random
// rows whose super-blocks range over magnitudes 1e-30 .. 1e30, and in row 0 a zero super-block, one whose value of
// largest magnitude is negative with exact ties (max -127: iscale 1, x = n + 0.5 rounded to even), one with a NaN
// (skipped by the max, quantized to 0) and two equal magnitudes of opposite signs (the first wins). nmse: the share of
// differing bytes; max_abs: the differing super-blocks.
check_result check_quantize_q8k(device &dev, uint32_t k, uint32_t rows, uint32_t x_stride, uint32_t x_off) {
  check_result r;
  r.kernel = "quantize_q8k";
  r.shape = "k=" + std::to_string(k) + " rows=" + std::to_string(rows) + " stride=" + std::to_string(x_stride) + " off=" + std::to_string(x_off);
  r.tol = 0;
  const uint32_t nb = k / 256, bb = 292;
  std::vector<float> x = magnitude_rows(k, rows, x_stride, x_off, 256);
  float *row0 = x.data() + x_off;
  for (uint32_t j = 0; j < 256 && nb > 0; j++) row0[j] = 0.0f;
  for (uint32_t j = 0; j < 256 && nb > 1; j++) row0[256 + j] = j == 3 ? -127.0f : (float)((int)(j % 20) - 10) + 0.5f;
  if (nb > 2) row0[512 + 9] = NAN;
  if (nb > 3) row0[768 + 17] = 1e3f, row0[768 + 200] = -1e3f;
  std::vector<uint8_t> want((size_t)rows * nb * bb);
  for (uint32_t t = 0; t < rows; t++) aglm_quantize_row(AGLM_TYPE_Q8_K, x.data() + x_off + (size_t)t * x_stride, want.data() + (size_t)t * nb * bb, k);
  const quantize_q8_push push{x_off, x_stride, k, rows, 0, nb * q8k_block_words};
  check_quantizer(dev, quantize_q8k_spv, quantize_q8k_spv_bytes, x, push, q8k_block_words, (size_t)rows * nb, bb, want, &r);
  return r;
}

// ---- weight-type kernels: matmul_<type> and get_rows_<type> against the reference (de)quantizers ----------------

struct weight_type {
  int type;
  const char *name; // as in the shader names: mm_<name>, getrows_<name>
};
const weight_type weight_types[] = {
    {AGLM_TYPE_F32, "f32"},   {AGLM_TYPE_F16, "f16"},   {AGLM_TYPE_BF16, "bf16"}, {AGLM_TYPE_Q8_0, "q8_0"},
    {AGLM_TYPE_Q4_0, "q4_0"}, {AGLM_TYPE_Q4_1, "q4_1"}, {AGLM_TYPE_Q5_0, "q5_0"}, {AGLM_TYPE_Q5_1, "q5_1"},
    {AGLM_TYPE_Q4_K, "q4_k"}, {AGLM_TYPE_Q5_K, "q5_k"}, {AGLM_TYPE_Q6_K, "q6_k"},
};

// A host-visible staging buffer and a device-local working buffer of the same size (whole words: the kernels may
// read the word holding a row's last byte).
struct staged {
  buffer stage, work;
  uint64_t bytes = 0;
};

bool staged_create(device &dev, const void *data, size_t bytes, staged *s, std::string *err) {
  s->bytes = (bytes + 3) / 4 * 4;
  if (s->bytes == 0) s->bytes = 4;
  if (!dev.create_buffer(s->bytes, true, &s->stage, err) || !dev.create_buffer(s->bytes, false, &s->work, err)) return false;
  std::memset(s->stage.mapped, 0, s->bytes);
  std::memcpy(s->stage.mapped, data, bytes);
  return dev.copy(s->stage, s->work, s->bytes, err);
}

void staged_destroy(device &dev, staged *s) {
  dev.destroy_buffer(&s->stage);
  dev.destroy_buffer(&s->work);
}

// m rows of k random values of `type` at byte w_off, row_bytes apart (the gaps hold garbage), and their reference
// dequantization wd [m][k].
void make_weights(int type, uint32_t k, uint32_t m, uint32_t w_off, uint32_t row_bytes, std::vector<uint8_t> *w,
                  std::vector<float> *wd) {
  const size_t rb = aglm_row_bytes(type, k);
  w->assign(w_off + (size_t)m * row_bytes, 0xa5);
  wd->resize((size_t)m * k);
  std::vector<float> src(k);
  std::vector<uint8_t> q(rb + 1);
  for (uint32_t r = 0; r < m; r++) {
    for (float &v : src) v = rnd();
    src[r % k] *= 4; // an outlier now and then, as real weights have
    aglm_quantize_row(type, src.data(), q.data(), k);
    aglm_dequantize_row(type, q.data(), wd->data() + (size_t)r * k, k);
    std::memcpy(w->data() + w_off + (size_t)r * row_bytes, q.data(), rb);
  }
}

// Writes outside the output region: every float of `out` that is not in `written` must still be `sentinel`.
bool untouched(const std::vector<float> &out, const std::vector<bool> &written, float sentinel) {
  for (size_t i = 0; i < out.size(); i++)
    if (!written[i] && !(out[i] == sentinel)) return false;
  return true;
}

struct mm_case {
  uint32_t k, m, n;
  bool bias;
  uint32_t w_off, row_pad, x_off, x_pad, y_off, y_pad, b_off;
  uint32_t max_x = max_groups; // row groups along x before the dispatch splits them over z
};

// matmul_<type> (pipeline p) on one shape: y = W . x^T (+ b), the reference in double over the dequantized weights.
// Tolerance: NMSE 1e-10. The kernel multiplies the same dequantized values (bit for bit: get_rows checks them); only
// the f32 summation order differs from the double reference, which gives ~1e-14 at k = 4096.
check_result check_weight_matmul(device &dev, const pipeline &p, const weight_type &wt, const char *kernel, const mm_case &c) {
  check_result r;
  r.kernel = kernel;
  r.tol = 1e-10;
  const uint32_t row_bytes = (uint32_t)aglm_row_bytes(wt.type, c.k) + c.row_pad;
  const uint32_t x_stride = c.k + c.x_pad, y_stride = c.m + c.y_pad;
  char shape[200];
  std::snprintf(shape, sizeof shape, "k=%u m=%u n=%u%s w_off=%u row_bytes=%u x_off=%u x_stride=%u y_off=%u y_stride=%u", c.k, c.m,
                c.n, c.bias ? " +bias" : "", c.w_off, row_bytes, c.x_off, x_stride, c.y_off, y_stride);
  if (c.max_x != max_groups) std::snprintf(shape + std::strlen(shape), sizeof shape - std::strlen(shape), " groups.x<=%u", c.max_x);
  r.shape = shape;
  std::vector<uint8_t> w;
  std::vector<float> wd;
  make_weights(wt.type, c.k, c.m, c.w_off, row_bytes, &w, &wd);
  std::vector<float> x(c.x_off + (size_t)c.n * x_stride), b(c.b_off + c.m);
  for (float &v : x) v = rnd();
  for (float &v : b) v = rnd();
  const float sentinel = 1234.5f;
  std::vector<float> y(c.y_off + (size_t)c.n * y_stride, sentinel);
  std::vector<double> ref((size_t)c.n * c.m);
  std::vector<bool> written(y.size(), false);
  for (uint32_t t = 0; t < c.n; t++)
    for (uint32_t row = 0; row < c.m; row++) {
      const float *wr = wd.data() + (size_t)row * c.k, *xr = x.data() + c.x_off + (size_t)t * x_stride;
      double acc = c.bias ? b[c.b_off + row] : 0.0;
      for (uint32_t i = 0; i < c.k; i++) acc += (double)wr[i] * xr[i];
      ref[(size_t)t * c.m + row] = acc;
      written[c.y_off + (size_t)t * y_stride + row] = true;
    }
  staged sw, sx, sy, sb;
  std::string err;
  bool ok = staged_create(dev, w.data(), w.size(), &sw, &err) && staged_create(dev, x.data(), x.size() * 4, &sx, &err) &&
            staged_create(dev, y.data(), y.size() * 4, &sy, &err) && staged_create(dev, b.data(), b.size() * 4, &sb, &err);
  if (ok) {
    const matmul_push push{c.w_off, row_bytes, c.k, c.m, c.n, c.x_off, x_stride, c.y_off, y_stride, c.b_off, c.bias ? 1u : 0u};
    const buffer *bufs[4] = {&sw.work, &sx.work, &sy.work, &sb.work};
    uint32_t g[3];
    matmul_groups(c.m, c.n, g, c.max_x);
    ok = dev.dispatch(p, bufs, &push, g[0], g[1], g[2], &err) && dev.copy(sy.work, sy.stage, sy.bytes, &err);
  }
  if (ok) {
    const float *out = (const float *)sy.stage.mapped;
    const std::vector<float> all(out, out + y.size());
    std::vector<float> got(ref.size());
    for (uint32_t t = 0; t < c.n; t++)
      for (uint32_t row = 0; row < c.m; row++) got[(size_t)t * c.m + row] = all[c.y_off + (size_t)t * y_stride + row];
    compare(got, ref, &r);
    if (!untouched(all, written, sentinel)) r.ok = false, r.error = "wrote outside its output rows";
  } else r.error = err;
  for (staged *s : {&sw, &sx, &sy, &sb}) staged_destroy(dev, s);
  return r;
}

struct gr_case {
  uint32_t k, rows;
  std::vector<int32_t> idx; // idx_off leading entries that are not tokens, then the tokens' rows
  uint32_t idx_off, w_off, row_pad, y_off, y_pad;
};

// get_rows_<type>: every gathered value must equal the reference dequantization exactly (max |diff| 0).
check_result check_weight_get_rows(device &dev, const pipeline &p, const weight_type &wt, const gr_case &c) {
  check_result r;
  r.kernel = std::string("getrows_") + wt.name;
  r.tol = 0;
  const uint32_t row_bytes = (uint32_t)aglm_row_bytes(wt.type, c.k) + c.row_pad, y_stride = c.k + c.y_pad;
  const uint32_t n = (uint32_t)c.idx.size() - c.idx_off;
  char shape[200];
  std::snprintf(shape, sizeof shape, "k=%u rows=%u n=%u w_off=%u row_bytes=%u idx_off=%u y_off=%u y_stride=%u", c.k, c.rows, n, c.w_off,
                row_bytes, c.idx_off, c.y_off, y_stride);
  r.shape = shape;
  std::vector<uint8_t> w;
  std::vector<float> wd;
  make_weights(wt.type, c.k, c.rows, c.w_off, row_bytes, &w, &wd);
  const float sentinel = -777.25f;
  std::vector<float> y(c.y_off + (size_t)n * y_stride, sentinel);
  std::vector<double> ref((size_t)n * c.k);
  std::vector<bool> written(y.size(), false);
  for (uint32_t t = 0; t < n; t++)
    for (uint32_t i = 0; i < c.k; i++) {
      ref[(size_t)t * c.k + i] = wd[(size_t)c.idx[c.idx_off + t] * c.k + i];
      written[c.y_off + (size_t)t * y_stride + i] = true;
    }
  staged sw, si, sy;
  std::string err;
  bool ok = staged_create(dev, w.data(), w.size(), &sw, &err) && staged_create(dev, c.idx.data(), c.idx.size() * 4, &si, &err) &&
            staged_create(dev, y.data(), y.size() * 4, &sy, &err);
  if (ok) {
    const get_rows_push push{c.w_off, row_bytes, c.k, n, c.idx_off, c.y_off, y_stride};
    const buffer *bufs[3] = {&sw.work, &si.work, &sy.work};
    uint32_t g[3];
    get_rows_groups(wt.type, c.k, n, g);
    ok = dev.dispatch(p, bufs, &push, g[0], g[1], g[2], &err) && dev.copy(sy.work, sy.stage, sy.bytes, &err);
  }
  if (ok) {
    const float *out = (const float *)sy.stage.mapped;
    const std::vector<float> all(out, out + y.size());
    std::vector<float> got(ref.size());
    for (uint32_t t = 0; t < n; t++)
      for (uint32_t i = 0; i < c.k; i++) got[(size_t)t * c.k + i] = all[c.y_off + (size_t)t * y_stride + i];
    compare(got, ref, &r);
    r.ok = r.ok && r.max_abs == 0;
    if (!untouched(all, written, sentinel)) r.ok = false, r.error = "wrote outside its output rows";
  } else r.error = err;
  for (staged *s : {&sw, &si, &sy}) staged_destroy(dev, s);
  return r;
}

template <class F>
check_result timed(F f) {
  const auto t0 = std::chrono::steady_clock::now();
  check_result r = f();
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Every weight type: matmul over the shapes a model meets (one block; a few blocks with every offset and stride odd;
// decode at k = 4096; prompts of 67 and 512 tokens, partial 32-token tiles of the tiled path), the subgroup build
// (three types) where the device has subgroup arithmetic, and get_rows. Q4_0 also runs m = 70000 and m = 1001 with the row groups
// split over the dispatch's x and z (x capped below 65535 so that lavapipe's cost per workgroup keeps the test short;
// a vocabulary of 151552 rows splits the same way at the real cap).
void check_weight_types(device &dev, std::vector<check_result> *results) {
  for (const weight_type &wt : weight_types) {
    const uint32_t qk = (uint32_t)aglm_type_block_size(wt.type);
    const bool is_float = qk == 1;
    const uint32_t k1 = is_float ? 1 : qk, k3 = is_float ? 67 : 3 * qk;
    std::vector<mm_case> cases = {
        {k1, 1, 7, false, 0, 0, 0, 0, 0, 0, 0},
        {k3, 37, 7, true, 13, 1, 5, 3, 3, 2, 3},
        {k3, 37, 67, true, 6, 3, 1, 9, 7, 1, 0},
        {4096, 1000, 1, true, 2, 0, 0, 0, 0, 0, 5},
        {4096, 37, 67, false, 0, 0, 11, 5, 0, 3, 0},
        {k3, 37, 512, true, 1, 2, 3, 1, 5, 4, 1},
    };
    if (wt.type == AGLM_TYPE_Q4_0) {
      cases.push_back({32, 70000, 3, true, 1, 0, 0, 0, 2, 1, 0, 16384}); // 35000 row groups: x 16384, z 3
      cases.push_back({64, 1001, 3, true, 3, 1, 0, 0, 0, 0, 0, 100});    // 501 row groups: x 100, z 6
      cases.push_back({64, 1001, 40, true, 3, 1, 0, 0, 0, 0, 0, 10});    // tiled: 32 row groups: x 10, z 4
    }
    // The subgroup builds differ from the plain ones only in the final sum: three types check it.
    const bool sg = dev.desc().subgroup_arithmetic &&
                    (wt.type == AGLM_TYPE_F16 || wt.type == AGLM_TYPE_Q4_0 || wt.type == AGLM_TYPE_Q6_K);
    for (int variant = 0; variant < (sg ? 2 : 1); variant++) {
      size_t bytes = 0;
      const uint32_t *spv = mm_spirv(wt.type, &bytes, variant == 1);
      const std::string kernel = std::string("mm_") + wt.name + (variant ? "_sg" : "");
      pipeline p;
      std::string err;
      if (!dev.create_pipeline(spv, bytes, 4, sizeof(matmul_push), &p, &err)) {
        check_result r;
        r.kernel = kernel, r.error = err;
        results->push_back(r);
        continue;
      }
      for (size_t i = 0; i < cases.size(); i++)
        if (variant == 0 || i == 2 || i == 3) results->push_back(timed([&] { return check_weight_matmul(dev, p, wt, kernel.c_str(), cases[i]); }));
      dev.destroy_pipeline(&p);
    }
    const std::vector<gr_case> gcases = {
        {k3, 37, {9, 9, 0, 36, 5, 5, 17}, 2, 13, 1, 3, 5},
        {4096, 7, {6, 0, 3}, 0, 0, 0, 0, 0},
    };
    size_t bytes = 0;
    const uint32_t *spv = get_rows_spirv(wt.type, &bytes);
    pipeline p;
    std::string err;
    if (!dev.create_pipeline(spv, bytes, 3, sizeof(get_rows_push), &p, &err)) {
      check_result r;
      r.kernel = std::string("getrows_") + wt.name, r.error = err;
      results->push_back(r);
      continue;
    }
    for (const gr_case &c : gcases) results->push_back(timed([&] { return check_weight_get_rows(dev, p, wt, c); }));
    dev.destroy_pipeline(&p);
  }
}

// coopmat_grid (the KHR cooperative-matrix tile's split) on the configurations devices report: NVIDIA and AMD
// (16 x 16 x 16, subgroups of 32 or 64), NVIDIA's 16 x 8 x 16, Intel (8 x 8 x 16, subgroups of 8), lavapipe (8 x 8 x 8),
// and shapes that cannot tile 64 x 64 or step 32 values.
void check_coopmat_grid(std::vector<check_result> *results) {
  struct gcase {
    uint32_t m, n, k, sg;
    bool fits;
    uint32_t gr, br, bc;
  };
  const gcase cases[] = {{16, 16, 16, 32, true, 2, 2, 2}, {16, 16, 16, 64, true, 1, 4, 2}, {16, 8, 16, 32, true, 1, 4, 2},
                         {8, 8, 16, 8, true, 4, 2, 2},    {8, 8, 8, 8, true, 4, 2, 2},     {16, 16, 16, 128, true, 1, 4, 4},
                         {16, 16, 32, 32, true, 2, 2, 2}, {16, 16, 64, 32, false},         {12, 16, 16, 32, false},
                         {4, 4, 4, 8, false},             {16, 16, 16, 256, false},        {16, 16, 16, 0, false},
                         {64, 64, 16, 4, false}};
  for (const gcase &c : cases) {
    device_desc::coopmat_shape s;
    const bool fits = coopmat_grid(c.m, c.n, c.k, c.sg, &s);
    check_result r;
    char shape[64];
    std::snprintf(shape, sizeof shape, "%ux%ux%u sg%u", c.m, c.n, c.k, c.sg);
    r.kernel = "coopmat_grid";
    r.shape = shape;
    // Each subgroup's products cover the tile exactly once: gr br m = 64 rows, (128 / sg / gr) bc n = 64 tokens.
    const bool covers = fits && s.gr * s.br * s.m == 64 && (128 / c.sg / s.gr) * s.bc * s.n == 64;
    r.ok = fits == c.fits && (!fits || (covers && s.gr == c.gr && s.br == c.br && s.bc == c.bc));
    if (!r.ok)
      r.error = "got " + std::string(fits ? "gr " + std::to_string(s.gr) + " br " + std::to_string(s.br) + " bc " + std::to_string(s.bc) : "no fit");
    results->push_back(r);
  }
}

} // namespace

int main(int argc, char **argv) {
  int want = 0;
  for (int i = 1; i + 1 < argc; i++)
    if (std::strcmp(argv[i], "--device") == 0) want = std::atoi(argv[i + 1]);
  const runtime &rt = get_runtime();
  std::string j = "{\"loader\":" + (rt.loader_path.empty() ? std::string("null") : json_str(rt.loader_path)) +
                  ",\"error\":" + (rt.error.empty() ? std::string("null") : json_str(rt.error)) +
                  ",\"instanceVersion\":" + json_str(version(rt.instance_version)) + ",\"devices\":[";
  for (size_t i = 0; i < rt.devices.size(); i++) {
    const device_desc &d = rt.devices[i];
    j += std::string(i ? "," : "") + "{\"name\":" + json_str(d.name) + ",\"type\":" + json_str(type_name(d.type)) +
         ",\"driver\":" + json_str(d.driver) + ",\"api\":" + json_str(version(d.api_version)) + ",\"score\":" + std::to_string(d.score) +
         ",\"why\":" + json_str(d.score_why) + ",\"memoryBytes\":" + std::to_string(d.device_local_bytes) +
         ",\"memoryFree\":" + std::to_string(d.device_local_free) + ",\"subgroupSize\":" + std::to_string(d.subgroup_size) +
         ",\"subgroupArithmetic\":" + (d.subgroup_arithmetic ? "true" : "false") + ",\"fp16\":" + (d.fp16 ? "true" : "false") +
         ",\"int8\":" + (d.int8 ? "true" : "false") + ",\"storage16\":" + (d.storage16 ? "true" : "false") +
         ",\"storage8\":" + (d.storage8 ? "true" : "false") + ",\"integerDot\":" + (d.integer_dot ? "true" : "false") +
         ",\"cooperativeMatrix\":" + (d.cooperative_matrix ? "true" : "false") +
         ",\"cooperativeMatrixKHR\":" + coopmat_json(d) + "}";
  }
  j += "],\"checks\":[";
  int code = 0;
  if (!rt.error.empty() || rt.devices.empty()) code = 77;
  else {
    std::string err;
    std::unique_ptr<device> dev = device::open(want, &err);
    if (!dev) {
      j += "{\"kernel\":\"open\",\"error\":" + json_str(err) + ",\"ok\":false}";
      code = 1;
    } else {
      const uint32_t shapes[][4] = {{64, 32, 1, 0}, {67, 33, 1, 1}, {67, 33, 67, 1}, {288, 96, 7, 0}, {1, 5, 3, 1}};
      std::vector<check_result> results;
      for (const auto &s : shapes) results.push_back(check_matmul(*dev, s[0], s[1], s[2], s[3] != 0));
      for (const auto &s : std::vector<std::pair<uint32_t, uint32_t>>{{64, 1}, {67, 3}, {288, 67}, {2049, 2}, {1, 4}})
        results.push_back(check_rms_norm(*dev, s.first, s.second));
      for (uint32_t n : {1u, 255u, 256u, 67u * 300u}) results.push_back(check_silu_mul(*dev, n));
      check_weight_types(*dev, &results);
      check_coopmat_grid(&results);
      results.push_back(check_quantize_q8(*dev, 128, 1, 128, 0));
      results.push_back(check_quantize_q8(*dev, 96, 7, 101, 5));
      results.push_back(check_quantize_q8(*dev, 4096, 3, 4099, 1));
      results.push_back(check_quantize_q8k(*dev, 1024, 1, 1024, 0));
      results.push_back(check_quantize_q8k(*dev, 768, 5, 771, 3));
      results.push_back(check_quantize_q8k(*dev, 4096, 3, 4099, 1));
      bool first = true;
      for (const check_result &r : results) {
        char num[160];
        std::snprintf(num, sizeof num, ",\"maxAbsDiff\":%.3g,\"nmse\":%.3g,\"tolerance\":%.3g", r.max_abs, r.nmse, r.tol);
        if (r.ms >= 0) std::snprintf(num + std::strlen(num), sizeof num - std::strlen(num), ",\"ms\":%.1f", r.ms);
        j += std::string(first ? "" : ",") + "{\"kernel\":" + json_str(r.kernel) + ",\"device\":" + json_str(dev->desc().name) +
             ",\"shape\":" + json_str(r.shape) + num + (r.error.empty() ? "" : ",\"error\":" + json_str(r.error)) +
             ",\"ok\":" + (r.ok ? "true" : "false") + "}";
        first = false;
        if (!r.ok) code = 1;
      }
    }
  }
  j += "]}";
  std::printf("%s\n", j.c_str());
  return code;
}
