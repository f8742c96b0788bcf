// vk-selftest: what the Vulkan runtime finds on this machine, and the first kernel checked on a device against the
// scalar reference. Prints one JSON object:
//   { "loader": path | null, "error": reason | null, "instanceVersion": "1.3.x",
//     "devices": [{ name, type, driver, api, score, why, memoryBytes, memoryFree, subgroupSize, fp16, int8, ... }],
//     "checks": [{ kernel, device, shape, maxAbsDiff, nmse, tolerance, ok }] }
// Usage: vk-selftest [--device N]   (default: the first device; a CPU device such as lavapipe is fine here)
// Exit: 0 every check passed; 1 a check failed; 77 no Vulkan (no loader, no driver, no device): a skip.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/vulkan/vk-context.h"
// Generated at build time from shaders/*.comp (glslc, then cmake/embed-spirv.cmake).
#include <matmul_f32.spv.h>
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
         ",\"cooperativeMatrix\":" + (d.cooperative_matrix ? "true" : "false") + "}";
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
      bool first = true;
      for (const check_result &r : results) {
        char num[160];
        std::snprintf(num, sizeof num, ",\"maxAbsDiff\":%.3g,\"nmse\":%.3g,\"tolerance\":%.3g", r.max_abs, r.nmse, r.tol);
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
