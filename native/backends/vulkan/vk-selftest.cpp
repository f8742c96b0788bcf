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
#include <matmul_f32.spv.h> // generated at build time from shaders/matmul_f32.comp

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
      bool first = true;
      for (const auto &s : shapes) {
        check_result r = check_matmul(*dev, s[0], s[1], s[2], s[3] != 0);
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
