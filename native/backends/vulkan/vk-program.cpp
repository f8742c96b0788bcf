// Vulkan programs, sessions and batches (vk-program.h). Everything returns a status with one sentence; nothing throws
// out (the HAL table guards the C++ library's exceptions).
#include "backends/vulkan/vk-program.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "backends/rope-tables.h"
#include "backends/vulkan/vk-kernels.h"
#include "backends/vulkan/vk-ops.h"
#include "backends/vulkan/vk-shaders.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
// Generated at build time from shaders/*.comp (glslc, then cmake/embed-spirv.cmake).
#include <attention.spv.h>
#include <copy_rows.spv.h>
#include <eltwise.spv.h>
#include <embed_interp.spv.h>
#include <kv_store.spv.h>
#include <norm.spv.h>
#include <quantize_q8.spv.h>
#include <quantize_q8k.spv.h>
#include <rope.spv.h>

namespace aglm_vk {

namespace {

constexpr uint64_t kWeightAlign = 256;
constexpr uint64_t kStagingBytes = 64ull << 20;

const int kTypes[] = {AGLM_TYPE_F32,  AGLM_TYPE_F16,  AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0, AGLM_TYPE_Q4_1,
                      AGLM_TYPE_Q5_0, AGLM_TYPE_Q5_1, AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K, AGLM_TYPE_Q6_K};

bool known_type(int t) {
  for (int k : kTypes)
    if (k == t) return true;
  return false;
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Which kernel runs an op (its first, for two-kernel ops), how many buffers the kernel binds, and its specialization
// constants (the KHR cooperative-matrix tile's shape).
struct kernel_spec {
  const uint32_t *spirv;
  size_t bytes;
  uint32_t n_buffers, push_bytes;
  uint32_t spec[7] = {};
  uint32_t n_spec = 0;
};

// The tile build a device's path runs (coop: its cooperative-matrix path, else the fp16 one).
tile_kind tile_of(const device_desc &dd, bool coop) {
  return !coop ? TILE_F16 : dd.coopmat_emulated ? TILE_COOP_EMULATED : TILE_COOP_KHR;
}

// A prompt tile's kernel: its SPIR-V and, for the KHR build, matmul.comp's constant_id 0 .. 6 (CM_M, CM_N, CM_K, GR,
// BR, BC, NSG) from the device's chosen shape and subgroup size.
bool tile_spec(int type, const device_desc &dd, tile_kind kind, kernel_spec *k) {
  size_t b = 0;
  const uint32_t *s = mm_tile_spirv(type, kind, &b);
  *k = {s, b, 4, sizeof(matmul_push)};
  if (kind == TILE_COOP_KHR) {
    const device_desc::coopmat_shape &c = dd.khr;
    const uint32_t v[7] = {c.m, c.n, c.k, c.gr, c.br, c.bc, 128 / dd.subgroup_size};
    std::memcpy(k->spec, v, sizeof v);
    k->n_spec = 7;
  }
  return s != nullptr;
}

bool spec_of(int id, const device_desc &dd, kernel_spec *k) {
  const bool subgroup = dd.use_subgroup;
  if (id >= K_MATMUL_TILE) return tile_spec(id - K_MATMUL_TILE, dd, tile_of(dd, dd.use_coopmat), k);
  if (id >= K_MATMUL_DOT) {
    size_t b = 0;
    const uint32_t *s = mm_dot_spirv(id - K_MATMUL_DOT, &b, subgroup);
    *k = {s, b, 4, sizeof(matmul_push)};
    return s != nullptr;
  }
  if (id >= K_MATMUL && id < K_GET_ROWS) {
    size_t b = 0;
    const uint32_t *s = mm_spirv(id - K_MATMUL, &b, subgroup);
    *k = {s, b, 4, sizeof(matmul_push)};
    return s != nullptr;
  }
  if (id >= K_GET_ROWS && id < K_ELTWISE) {
    size_t b = 0;
    const uint32_t *s = get_rows_spirv(id - K_GET_ROWS, &b);
    *k = {s, b, 3, sizeof(get_rows_push)};
    return s != nullptr;
  }
  switch (id) {
    case K_ELTWISE: *k = {eltwise_spv, eltwise_spv_bytes, 3, sizeof(eltwise_push)}; return true;
    case K_NORM: *k = {norm_spv, norm_spv_bytes, 3, sizeof(norm_push)}; return true;
    case K_ROPE: *k = {rope_spv, rope_spv_bytes, 3, sizeof(rope_push)}; return true;
    case K_KV_STORE: *k = {kv_store_spv, kv_store_spv_bytes, 3, sizeof(kv_store_push)}; return true;
    case K_ATTENTION: *k = {attention_spv, attention_spv_bytes, 5, sizeof(attention_push)}; return true;
    case K_COPY_ROWS: *k = {copy_rows_spv, copy_rows_spv_bytes, 3, sizeof(copy_rows_push)}; return true;
    case K_EMBED_INTERP: *k = {embed_interp_spv, embed_interp_spv_bytes, 3, sizeof(interp_push)}; return true;
    case K_QUANTIZE_Q8: *k = {quantize_q8_spv, quantize_q8_spv_bytes, 2, sizeof(quantize_q8_push)}; return true;
    case K_QUANTIZE_Q8K: *k = {quantize_q8k_spv, quantize_q8k_spv_bytes, 2, sizeof(quantize_q8_push)}; return true;
    default: return false;
  }
}

// The kernels an op runs: [0] always, [1] for attention (store, then attend), embed (gather, then input rows) and
// integer-dot matmuls (quantize, then multiply), [2] the f16 prompt tile of a matmul (where the program uses one).
void kernels_of(const program &p, const aglm_hal_op &op, int ids[kMaxOpKernels]) {
  for (int k = 0; k < kMaxOpKernels; k++) ids[k] = -1;
  switch (op.kind) {
    case AGLM_OP_EMBED: ids[0] = K_GET_ROWS + p.weights[op.w[0]].type; ids[1] = K_COPY_ROWS; break;
    case AGLM_OP_EMBED_POSITIONS: ids[0] = K_GET_ROWS + p.weights[op.w[0]].type; break;
    case AGLM_OP_MATMUL: {
      const int t = p.weights[op.w[0]].type;
      if (p.uses_dot(t)) ids[0] = dot_is_k(t) ? K_QUANTIZE_Q8K : K_QUANTIZE_Q8, ids[1] = K_MATMUL_DOT + t;
      else ids[0] = K_MATMUL + t;
      if (p.uses_tile(t)) ids[2] = K_MATMUL_TILE + t;
      break;
    }
    case AGLM_OP_RMS_NORM:
    case AGLM_OP_LAYER_NORM: ids[0] = K_NORM; break;
    case AGLM_OP_ROPE: ids[0] = K_ROPE; break;
    case AGLM_OP_ATTENTION: ids[0] = K_KV_STORE; ids[1] = K_ATTENTION; break;
    case AGLM_OP_OUTPUT_ROWS:
    case AGLM_OP_INPUT:
    case AGLM_OP_MERGE_ROWS: ids[0] = K_COPY_ROWS; break;
    case AGLM_OP_EMBED_INTERP: ids[0] = K_EMBED_INTERP; break;
    default: ids[0] = K_ELTWISE; break; // add, mul, silu_mul, gelu, gelu_erf, add_vector
  }
}

// The self-check of an f16 prompt-tile path on a device, once per process and device: the F16 build of the path's
// kernel (coop: mmk_f16 or mme_f16, else mmh_f16) on m = 80, n = 70, k = 96 (partial tiles on both sides, three k steps) with a
// bias, against a double product of the same f16 values (f32 sums of exact products: NMSE ~1e-14). A path whose
// pipeline cannot be built or whose result is off by more than 1e-10 is not used; `why` says what happened.
bool check_tile_path(device &dev, bool coop, std::string *why) {
  const uint32_t m = 80, n = 70, k = 96;
  std::vector<uint16_t> wh((size_t)m * k);
  std::vector<float> x((size_t)n * k), bias(m), want((size_t)n * m);
  uint32_t seed = 12345;
  auto rnd = [&]() { return (seed = seed * 1664525u + 1013904223u) / 4294967296.0f * 2.0f - 1.0f; };
  for (uint16_t &h : wh) h = aglm_fp32_to_fp16(rnd());
  for (float &v : x) v = aglm_fp16_to_fp32(aglm_fp32_to_fp16(rnd())); // f16 values: no rounding on either side
  for (float &v : bias) v = rnd();
  for (uint32_t t = 0; t < n; t++)
    for (uint32_t r = 0; r < m; r++) {
      double acc = bias[r];
      for (uint32_t i = 0; i < k; i++)
        acc += (double)aglm_fp16_to_fp32(wh[(size_t)r * k + i]) * (double)x[(size_t)t * k + i];
      want[(size_t)t * m + r] = (float)acc;
    }
  const tile_kind kind = tile_of(dev.desc(), coop);
  kernel_spec ks;
  const bool have = tile_spec(AGLM_TYPE_F16, dev.desc(), kind, &ks);
  buffer bw, bx, by, bb;
  pipeline pl;
  std::string err;
  bool ok = have && dev.create_buffer(wh.size() * 2, true, &bw, &err) && dev.create_buffer(x.size() * 4, true, &bx, &err) &&
            dev.create_buffer(want.size() * 4, true, &by, &err) && dev.create_buffer(bias.size() * 4, true, &bb, &err) &&
            dev.create_pipeline(ks.spirv, ks.bytes, 4, sizeof(matmul_push), &pl, &err, ks.spec, ks.n_spec);
  double num = 0, den = 0;
  if (ok) {
    std::memcpy(bw.mapped, wh.data(), wh.size() * 2);
    std::memcpy(bx.mapped, x.data(), x.size() * 4);
    std::memcpy(bb.mapped, bias.data(), bias.size() * 4);
    std::memset(by.mapped, 0xff, want.size() * 4); // NaN: an output the kernel does not write fails
    const matmul_push mp{0, k * 2, k, m, n, 0, k, 0, m, 0, 1};
    uint32_t g[3];
    matmul_tile_groups(m, n, coop ? matmul_tile_coop : matmul_tile, g);
    const buffer *bufs[4] = {&bw, &bx, &by, &bb};
    ok = dev.dispatch(pl, bufs, &mp, g[0], g[1], g[2], &err);
    const float *got = (const float *)by.mapped;
    for (size_t i = 0; ok && i < want.size(); i++) {
      const double d = (double)got[i] - want[i];
      num += std::isfinite(got[i]) ? d * d : INFINITY;
      den += (double)want[i] * want[i];
    }
  }
  if (pl.pipe) dev.destroy_pipeline(&pl);
  for (buffer *b : {&bw, &bx, &by, &bb}) dev.destroy_buffer(b);
  const double e = den > 0 ? num / den : INFINITY;
  char what[96];
  if (kind == TILE_COOP_KHR) {
    const device_desc::coopmat_shape &c = dev.desc().khr;
    std::snprintf(what, sizeof what, "cooperative-matrix (KHR, %ux%ux%u, %ux%u per subgroup)", c.m, c.n, c.k, c.br, c.bc);
  } else {
    std::snprintf(what, sizeof what, "%s", kind == TILE_F16 ? "fp16" : "cooperative-matrix (emulated)");
  }
  char text[300];
  if (!ok) std::snprintf(text, sizeof text, "%s tiles not used: their self-check could not run (%s)", what, err.empty() ? "no SPIR-V" : err.c_str());
  else std::snprintf(text, sizeof text, "%s tiles %s their self-check (NMSE %.1e against a double product)", what, e <= 1e-10 ? "passed" : "failed", e);
  *why = text;
  return ok && e <= 1e-10;
}

// The f16 tile paths of an opened device after their self-checks (cached per device for the process): paths that
// fail are turned off on `dev`; the text says what was checked.
std::string settle_tile_paths(device &dev, int device_index) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::pair<bool, std::string>> done; // (device, tile_kind) -> (ok, text)
  std::lock_guard<std::mutex> lock(mu);
  std::string notes;
  for (bool coop : {true, false}) {
    if (!(coop ? dev.desc().use_coopmat : dev.desc().use_fp16)) continue;
    const std::pair<int, int> key{device_index, (int)tile_of(dev.desc(), coop)};
    auto it = done.find(key);
    if (it == done.end()) {
      std::string why;
      const bool ok = check_tile_path(dev, coop, &why);
      it = done.emplace(key, std::make_pair(ok, why)).first;
    }
    if (!it->second.first) dev.disable_tile_path(coop);
    notes += (notes.empty() ? "" : "; ") + it->second.second;
  }
  return notes;
}

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MiB", (double)b / (1 << 20));
  return s;
}

} // namespace

bool supports_op(int32_t op, int32_t type) {
  if (op < 0 || op >= AGLM_OP_COUNT) return false;
  if (type < 0) return true;
  switch (op) {
    case AGLM_OP_MATMUL:
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: {
      size_t b = 0;
      return known_type(type) && (op == AGLM_OP_MATMUL ? mm_spirv(type, &b) : get_rows_spirv(type, &b)) != nullptr;
    }
    default: return known_type(type); // vectors are converted to f32 at upload
  }
}

std::vector<int> device_order() {
  const runtime &rt = get_runtime();
  std::vector<int> order;
  for (int i = 0; i < (int)rt.devices.size(); i++) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return rt.devices[a].score > rt.devices[b].score; });
  if (const char *want = std::getenv("OPEN_AUTOGLM_VULKAN_DEVICE")) {
    const std::string w = want;
    int pick = -1;
    char *end = nullptr;
    const long idx = std::strtol(want, &end, 10);
    if (end && *end == 0 && idx >= 0 && idx < (long)rt.devices.size()) pick = (int)idx;
    for (int i = 0; pick < 0 && i < (int)rt.devices.size(); i++)
      if (!w.empty() && rt.devices[i].name.find(w) != std::string::npos) pick = i;
    if (pick >= 0) {
      order.erase(std::find(order.begin(), order.end(), pick));
      order.insert(order.begin(), pick);
    }
  }
  return order;
}

bool program::uses_dot(int type) const {
  size_t b = 0;
  return dev && dev->desc().use_integer_dot && mm_dot_spirv(type, &b) != nullptr;
}

bool program::uses_tile(int type) const {
  size_t b = 0;
  if (!dev || !mm_tile_spirv(type, TILE_F16, &b)) return false;
  const device_desc &d = dev->desc();
  return d.use_coopmat || (d.use_fp16 && !uses_dot(type));
}

program::~program() {
  if (!dev) return;
  for (auto &kv : pipes) dev->destroy_pipeline(&kv.second);
  for (buffer &b : chunks) dev->destroy_buffer(&b);
  dev->destroy_buffer(&vectors);
}

int32_t program_build(const aglm_hal_program_desc *desc, std::unique_ptr<program> *out, std::string *err) {
  const aglm_hal_graph *g = desc->graph;
  const std::vector<int> order = device_order();
  if (desc->device < 0 || desc->device >= (int32_t)order.size()) return *err = "no Vulkan device " + std::to_string(desc->device), AGLM_ERR_BACKEND_UNAVAILABLE;
  auto p = std::make_unique<program>();
  p->device_index = order[(size_t)desc->device];
  p->dev = device::open(p->device_index, err);
  if (!p->dev) return AGLM_ERR_BACKEND_UNAVAILABLE;
  device &dev = *p->dev;
  const std::string tile_notes = settle_tile_paths(dev, p->device_index);
  const device_desc &dd = dev.desc();

  p->assign(*g);
  p->n_vocab = p->values[(size_t)p->output].width;
  p->n_hidden = p->hidden >= 0 ? p->values[(size_t)p->hidden].width : 0;

  // Every op must have its kernel; attention heads must fit the kernel's 256 dimensions.
  for (const aglm_hal_op &op : p->ops) {
    const int type = op.w[0] >= 0 ? p->weights[(size_t)op.w[0]].type : -1;
    if (!supports_op(op.kind, type))
      return *err = "the Vulkan backend has no kernel for op " + std::to_string(op.kind) + (type >= 0 ? " with weights of type " + std::to_string(type) : ""),
             AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
    if (op.kind == AGLM_OP_ATTENTION && (op.i[3] > 256 || op.i[3] < 1 || op.i[2] < 1 || op.i[1] % op.i[2] != 0))
      return *err = "the Vulkan attention kernel needs head_dim <= 256 and whole KV-head groups", AGLM_ERR_BACKEND_UNAVAILABLE;
  }

  // Where each weight goes: raw into a chunk (matmul, gathers), as f32 into the vectors buffer (everything else).
  const uint64_t chunk_cap = std::min<uint64_t>(dd.max_storage_buffer_range ? dd.max_storage_buffer_range : (1ull << 30), 1ull << 31);
  p->loc.resize(p->weights.size());
  p->host_vectors.resize(p->weights.size());
  std::vector<uint64_t> chunk_size;
  uint64_t vec_floats = 0;
  for (size_t i = 0; i < p->weights.size(); i++) {
    const aglm_hal_weight &w = p->weights[i];
    if (w.uses & (AGLM_WEIGHT_MATMUL | AGLM_WEIGHT_ROWS)) {
      if (w.nbytes > chunk_cap)
        return *err = "weight " + p->names[i] + " (" + mib(w.nbytes) + ") is larger than the device's largest storage buffer (" + mib(chunk_cap) + ")",
               AGLM_ERR_BACKEND_UNAVAILABLE;
      if (chunk_size.empty() || align_up(chunk_size.back(), kWeightAlign) + w.nbytes > chunk_cap) chunk_size.push_back(0);
      p->loc[i].chunk = (int)chunk_size.size() - 1;
      p->loc[i].offset = align_up(chunk_size.back(), kWeightAlign);
      chunk_size.back() = p->loc[i].offset + w.nbytes;
    }
    if (w.uses & AGLM_WEIGHT_VECTOR) {
      int64_t n = 1;
      for (int d = 0; d < w.n_dims; d++) n *= w.ne[d];
      p->loc[i].vector = (int64_t)vec_floats;
      vec_floats += align_up((uint64_t)n, 64);
    }
  }

  // Device buffers, then the upload through one staging buffer, a batch of copies per fill.
  for (uint64_t bytes : chunk_size) {
    buffer b; // whole words: a kernel may load the word that holds a row's last byte
    if (!dev.create_buffer(align_up(bytes, 16), false, &b, err)) return AGLM_ERR_OUT_OF_MEMORY;
    p->chunks.push_back(b);
    p->bytes += bytes;
  }
  if (!dev.create_buffer(std::max<uint64_t>(vec_floats, 64) * 4, false, &p->vectors, err)) return AGLM_ERR_OUT_OF_MEMORY;
  p->bytes += p->vectors.size;
  buffer staging;
  if (!dev.create_buffer(kStagingBytes, true, &staging, err)) return AGLM_ERR_OUT_OF_MEMORY;
  std::vector<std::pair<VkBuffer, VkBufferCopy>> pending;
  uint64_t fill = 0;
  auto flush = [&]() -> bool {
    const bool ok = dev.copy_many(staging, pending, err);
    pending.clear();
    fill = 0;
    return ok;
  };
  auto upload = [&](const void *src, uint64_t bytes, const buffer &dst, uint64_t dst_off) -> bool {
    uint64_t done = 0;
    while (done < bytes) {
      if (fill >= kStagingBytes && !flush()) return false;
      const uint64_t n = std::min(bytes - done, kStagingBytes - fill);
      std::memcpy((char *)staging.mapped + fill, (const char *)src + done, n);
      pending.push_back({dst.buf, VkBufferCopy{fill, dst_off + done, n}});
      fill = align_up(fill + n, 16);
      done += n;
    }
    return true;
  };
  bool ok = true;
  for (size_t i = 0; i < p->weights.size() && ok; i++) {
    const aglm_hal_weight &w = p->weights[i];
    if (p->loc[i].chunk >= 0) ok = upload(w.data, w.nbytes, p->chunks[(size_t)p->loc[i].chunk], p->loc[i].offset);
    if (ok && p->loc[i].vector >= 0) {
      int64_t n = 1;
      for (int d = 0; d < w.n_dims; d++) n *= w.ne[d];
      std::vector<float> &f = p->host_vectors[i];
      f.resize((size_t)n);
      if (w.type == AGLM_TYPE_F32) std::memcpy(f.data(), w.data, (size_t)n * 4);
      else if (!aglm_dequantize_row(w.type, w.data, f.data(), n)) {
        *err = "cannot convert " + p->names[i] + " to f32";
        ok = false;
        break;
      }
      ok = upload(f.data(), (uint64_t)n * 4, p->vectors, (uint64_t)p->loc[i].vector * 4);
      bool keep = false; // rope frequency factors stay on the host for the rope tables
      for (const aglm_hal_rope &r : p->ropes) keep = keep || r.freq_factors == (int32_t)i;
      if (!keep) std::vector<float>().swap(f);
    }
  }
  if (ok) ok = flush();
  dev.destroy_buffer(&staging);
  if (!ok) return AGLM_ERR_INTERNAL;
  if (desc->release)
    for (size_t i = 0; i < p->weights.size(); i++) desc->release(desc->release_user, (int32_t)i);
  for (aglm_hal_weight &w : p->weights) w.data = nullptr;

  // Pipelines for the kernels the graph uses.
  for (const aglm_hal_op &op : p->ops) {
    int ids[kMaxOpKernels];
    kernels_of(*p, op, ids);
    for (int id : ids) {
      if (id < 0 || p->pipes.count(id)) continue;
      kernel_spec k;
      if (!spec_of(id, dd, &k)) return *err = "no SPIR-V for kernel " + std::to_string(id), AGLM_ERR_INTERNAL;
      pipeline pl;
      if (!dev.create_pipeline(k.spirv, k.bytes, k.n_buffers, k.push_bytes, &pl, err, k.spec, k.n_spec)) return AGLM_ERR_INTERNAL;
      p->pipes[id] = pl;
    }
  }
  p->description = "vulkan: " + dd.name + " (" + type_name(dd.type) + ", " + dd.driver + "), " + mib(p->bytes) + " of weights in device memory, " +
                   std::to_string(p->pipes.size()) + " kernels, paths: " + paths_text(paths_of(dd)) +
                   (dd.use_integer_dot ? " (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K matmuls on int8 activations, as the CPU)" : "") +
                   (tile_notes.empty() ? "" : "; " + tile_notes);
  *out = std::move(p);
  return AGLM_OK;
}

// ---- sessions -----------------------------------------------------------------------------------------------------

namespace {

// Meta layout of one batch, in 32-bit words.
struct meta_layout {
  uint32_t tokens, pos, cell, start, len, embd_row, out_rows, grid, cells;
  std::vector<uint32_t> rope; // per rope configuration
  uint32_t words;
};

meta_layout layout_for(const program &p, int64_t n, int64_t n_cells_list) {
  meta_layout m;
  uint32_t at = 0;
  m.tokens = at, at += (uint32_t)n;
  m.pos = at, at += (uint32_t)n;
  m.cell = at, at += (uint32_t)n;
  m.start = at, at += (uint32_t)n;
  m.len = at, at += (uint32_t)n;
  m.embd_row = at, at += (uint32_t)n;
  m.out_rows = at, at += (uint32_t)n;
  m.grid = at, at += 2 * (uint32_t)n;
  for (const aglm_hal_rope &r : p.ropes) m.rope.push_back(at), at += (uint32_t)(n * r.n_rot);
  m.cells = at, at += (uint32_t)n_cells_list;
  m.words = at;
  return m;
}

void write_set(device &dev, VkDescriptorSet set, const std::vector<const buffer *> &bufs) {
  std::vector<VkDescriptorBufferInfo> infos(bufs.size());
  std::vector<VkWriteDescriptorSet> writes(bufs.size());
  for (size_t i = 0; i < bufs.size(); i++) {
    infos[i] = {bufs[i]->buf, 0, VK_WHOLE_SIZE};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, nullptr, set, (uint32_t)i, 0, 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, nullptr, &infos[i], nullptr};
  }
  dev.fn().UpdateDescriptorSets(dev.handle(), (uint32_t)writes.size(), writes.data(), 0, nullptr);
}

// The buffers each op's kernels bind, in binding order.
void write_sets(session *s) {
  program &p = *s->p;
  device &dev = *p.dev;
  for (size_t i = 0; i < p.ops.size(); i++) {
    const aglm_hal_op &op = p.ops[i];
    const buffer *arena = &s->arena, *meta = &s->meta, *vec = &p.vectors;
    switch (op.kind) {
      case AGLM_OP_EMBED:
        write_set(dev, s->sets[0][i], {&p.chunks[(size_t)p.loc[(size_t)op.w[0]].chunk], meta, arena});
        write_set(dev, s->sets[1][i], {&s->input, meta, arena});
        break;
      case AGLM_OP_EMBED_POSITIONS: write_set(dev, s->sets[0][i], {&p.chunks[(size_t)p.loc[(size_t)op.w[0]].chunk], meta, arena}); break;
      case AGLM_OP_MATMUL: {
        const buffer *w = &p.chunks[(size_t)p.loc[(size_t)op.w[0]].chunk];
        const int t = p.weights[(size_t)op.w[0]].type;
        if (p.uses_dot(t)) {
          write_set(dev, s->sets[0][i], {arena, &s->qact});
          write_set(dev, s->sets[1][i], {w, &s->qact, arena, vec});
        } else write_set(dev, s->sets[0][i], {w, arena, arena, vec});
        if (p.uses_tile(t)) write_set(dev, s->sets[2][i], {w, arena, arena, vec});
        break;
      }
      case AGLM_OP_ROPE: write_set(dev, s->sets[0][i], {arena, meta, arena}); break;
      case AGLM_OP_ATTENTION: {
        const buffer *kv = &s->kv[(size_t)op.i[0]];
        write_set(dev, s->sets[0][i], {arena, meta, kv});
        write_set(dev, s->sets[1][i], {arena, meta, kv, kv, arena});
        break;
      }
      case AGLM_OP_INPUT: write_set(dev, s->sets[0][i], {&s->input, meta, arena}); break;
      case AGLM_OP_OUTPUT_ROWS:
      case AGLM_OP_MERGE_ROWS: write_set(dev, s->sets[0][i], {arena, meta, arena}); break;
      case AGLM_OP_EMBED_INTERP: write_set(dev, s->sets[0][i], {vec, meta, arena}); break;
      default: write_set(dev, s->sets[0][i], {arena, vec, arena}); break; // norms, element-wise
    }
  }
}

// Grows a host-visible buffer to hold at least `bytes` (contents dropped); true if it was replaced.
bool grow(device &dev, buffer *b, uint64_t bytes, bool *replaced, std::string *err) {
  *replaced = false;
  if (b->buf && b->size >= bytes) return true;
  const uint64_t want = std::max<uint64_t>(bytes, b->size + b->size / 2);
  dev.destroy_buffer(b);
  if (!dev.create_buffer(want, true, b, err)) return false;
  *replaced = true;
  return true;
}

// The (cos, sin) table of one rope configuration for the batch's tokens: the CPU backend's arithmetic
// (backends/rope-tables.h), so the rotation itself is the only GPU arithmetic.
void rope_table(const program &p, const aglm_hal_rope &c, const aglm_hal_batch *b, float *t) {
  const float *ff = c.freq_factors >= 0 ? p.host_vectors[(size_t)c.freq_factors].data() : nullptr;
  aglm_backend::rope_table(c, b->n_tokens, b->pos, b->rope_pos, ff, t);
}

} // namespace

session::~session() {
  if (!p || !p->dev) return;
  device &dev = *p->dev;
  const api &vk = dev.fn();
  // session_run waits for everything it submits: nothing of this session is in flight here.
  for (VkFence f : fence)
    if (f) vk.DestroyFence(dev.handle(), f, nullptr);
  if (cpool) vk.DestroyCommandPool(dev.handle(), cpool, nullptr);
  if (dpool) vk.DestroyDescriptorPool(dev.handle(), dpool, nullptr);
  dev.destroy_buffer(&arena);
  for (buffer &b : kv) dev.destroy_buffer(&b);
  dev.destroy_buffer(&meta);
  dev.destroy_buffer(&input);
  dev.destroy_buffer(&readback);
  dev.destroy_buffer(&qact);
}

int32_t session_build(program *p, const aglm_hal_session_desc *desc, std::unique_ptr<session> *out, std::string *err) {
  if (desc->n_cells < 1 || desc->n_batch < 1) return *err = "context size and batch size must be positive", AGLM_ERR_INVALID_ARGUMENT;
  if (desc->kv_type != AGLM_TYPE_F32 && desc->kv_type != AGLM_TYPE_F16) return *err = "the KV cache type must be F32 or F16", AGLM_ERR_INVALID_ARGUMENT;
  auto s = std::make_unique<session>();
  s->p = p;
  device &dev = *p->dev;
  const api &vk = dev.fn();
  s->n_cells = desc->n_cells;
  s->n_batch = std::min(desc->n_batch, desc->n_cells);
  s->kv_type = desc->kv_type;
  if (desc->arena_bytes / 4 > UINT32_MAX) return *err = "the activation arena is larger than 16 GiB", AGLM_ERR_OUT_OF_MEMORY;
  for (size_t v = 0; v < p->values.size(); v++) s->value_off.push_back((uint32_t)(desc->value_offsets[v] / 4));
  if (!dev.create_buffer(desc->arena_bytes, false, &s->arena, err)) return AGLM_ERR_OUT_OF_MEMORY;
  const uint64_t elem = desc->kv_type == AGLM_TYPE_F16 ? 2 : 4;
  for (const aglm_hal_cache_slot &c : p->cache) {
    if (elem == 2 && (c.k_width % 2 || c.v_width % 2)) return *err = "an f16 KV cache needs even widths", AGLM_ERR_INVALID_ARGUMENT;
    const uint64_t k_elems = (uint64_t)s->n_cells * c.k_width, v_elems = (uint64_t)s->n_cells * c.v_width;
    buffer b;
    if (!dev.create_buffer((k_elems + v_elems) * elem, false, &b, err)) return AGLM_ERR_OUT_OF_MEMORY;
    s->kv.push_back(b);
    s->v_base.push_back((uint32_t)k_elems);
    s->bytes += b.size;
  }
  s->bytes += s->arena.size;
  const meta_layout ml = layout_for(*p, s->n_batch, s->n_batch + s->n_cells);
  if (!dev.create_buffer((uint64_t)ml.words * 4, true, &s->meta, err) || !dev.create_buffer(4096, true, &s->input, err) ||
      !dev.create_buffer((uint64_t)std::min<int64_t>(s->n_batch, 8) * (p->n_vocab + p->n_hidden) * 4, true, &s->readback, err))
    return AGLM_ERR_OUT_OF_MEMORY;

  // The integer-dot path's scratch: the widest quantized activation rows of a batch.
  uint64_t q_words = 0;
  for (const aglm_hal_op &op : p->ops)
    if (op.kind == AGLM_OP_MATMUL && p->uses_dot(p->weights[(size_t)op.w[0]].type)) {
      const aglm_hal_weight &w = p->weights[(size_t)op.w[0]];
      const uint64_t row = dot_is_k(w.type) ? (uint64_t)(w.ne[0] / 256) * q8k_block_words : (uint64_t)(w.ne[0] / 32) * q8_block_words;
      q_words = std::max<uint64_t>(q_words, (uint64_t)s->n_batch * row);
    }
  if (q_words) {
    if (q_words > UINT32_MAX) return *err = "the quantized activations of a batch pass 16 GiB", AGLM_ERR_OUT_OF_MEMORY;
    if (!dev.create_buffer(q_words * 4, false, &s->qact, err)) return AGLM_ERR_OUT_OF_MEMORY;
    s->bytes += s->qact.size;
  }

  // One descriptor set per op kernel, written once (again when a host buffer grows).
  uint32_t n_sets = 0, n_desc = 0;
  for (const aglm_hal_op &op : p->ops) {
    int ids[kMaxOpKernels];
    kernels_of(*p, op, ids);
    for (int id : ids)
      if (id >= 0) n_sets++, n_desc += p->pipes[id].n_buffers;
  }
  VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max<uint32_t>(n_desc, 1)};
  VkDescriptorPoolCreateInfo dci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  dci.maxSets = std::max<uint32_t>(n_sets, 1);
  dci.poolSizeCount = 1;
  dci.pPoolSizes = &ps;
  if (vk.CreateDescriptorPool(dev.handle(), &dci, nullptr, &s->dpool) != VK_SUCCESS) return *err = "vkCreateDescriptorPool failed", AGLM_ERR_OUT_OF_MEMORY;
  for (int k = 0; k < kMaxOpKernels; k++) s->sets[k].assign(p->ops.size(), VK_NULL_HANDLE);
  for (size_t i = 0; i < p->ops.size(); i++) {
    int ids[kMaxOpKernels];
    kernels_of(*p, p->ops[i], ids);
    for (int k = 0; k < kMaxOpKernels; k++) {
      if (ids[k] < 0) continue;
      VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      ai.descriptorPool = s->dpool;
      ai.descriptorSetCount = 1;
      ai.pSetLayouts = &p->pipes[ids[k]].dsl;
      if (vk.AllocateDescriptorSets(dev.handle(), &ai, &s->sets[k][i]) != VK_SUCCESS) return *err = "vkAllocateDescriptorSets failed", AGLM_ERR_OUT_OF_MEMORY;
    }
  }
  write_sets(s.get());

  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = dev.desc().compute_queue_family;
  if (vk.CreateCommandPool(dev.handle(), &pci, nullptr, &s->cpool) != VK_SUCCESS) return *err = "vkCreateCommandPool failed", AGLM_ERR_INTERNAL;
  VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cai.commandPool = s->cpool;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 2;
  if (vk.AllocateCommandBuffers(dev.handle(), &cai, s->cmd) != VK_SUCCESS) return *err = "vkAllocateCommandBuffers failed", AGLM_ERR_INTERNAL;
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  for (VkFence &f : s->fence)
    if (vk.CreateFence(dev.handle(), &fci, nullptr, &f) != VK_SUCCESS) return *err = "vkCreateFence failed", AGLM_ERR_INTERNAL;
  *out = std::move(s);
  return AGLM_OK;
}

namespace {

struct recorder {
  session *s;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  VkPipeline bound = VK_NULL_HANDLE;

  void dispatch(int id, VkDescriptorSet set, const void *push, uint32_t bytes, const uint32_t g[3]) {
    const pipeline &pl = s->p->pipes[id];
    const api &vk = s->p->dev->fn();
    if (bound != pl.pipe) vk.CmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pl.pipe), bound = pl.pipe;
    vk.CmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pl.layout, 0, 1, &set, 0, nullptr);
    vk.CmdPushConstants(cb, pl.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, bytes, push);
    vk.CmdDispatch(cb, g[0], g[1], g[2]);
    barrier(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
  }
  // Everything written so far is visible to what follows at dst.
  void barrier(VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = dst_access;
    s->p->dev->fn().CmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stage, 0, 1, &mb, 0,
                                       nullptr, 0, nullptr);
  }
};

uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Records op i for a batch of n tokens (rows: the op's rows, tokens or outputs).
void record_op(recorder &r, size_t i, const aglm_hal_batch *b, const meta_layout &ml, int64_t rows) {
  session *s = r.s;
  const program &p = *s->p;
  const aglm_hal_op &op = p.ops[i];
  const uint32_t n = (uint32_t)b->n_tokens;
  const uint32_t out = s->value_off[(size_t)op.out];
  const uint32_t width = (uint32_t)p.values[(size_t)op.out].width;
  auto in = [&](int k) { return s->value_off[(size_t)op.in[k]]; };
  uint32_t g[3];
  switch (op.kind) {
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: {
      const aglm_hal_weight &w = p.weights[(size_t)op.w[0]];
      get_rows_push pc{(uint32_t)p.loc[(size_t)op.w[0]].offset, (uint32_t)aglm_row_bytes(w.type, w.ne[0]), (uint32_t)w.ne[0], n,
                       op.kind == AGLM_OP_EMBED ? ml.tokens : ml.pos, out, width};
      get_rows_groups(w.type, pc.k, pc.n, g);
      r.dispatch(K_GET_ROWS + w.type, s->sets[0][i], &pc, sizeof pc, g);
      if (op.kind == AGLM_OP_EMBED && b->embd_row) { // input rows replace the table's for the tokens that bring them
        copy_rows_push cp{n, width, 1, 0, width, ml.embd_row, out, width};
        groups_2d(div_up((uint64_t)n * width, 256), g);
        r.dispatch(K_COPY_ROWS, s->sets[1][i], &cp, sizeof cp, g);
      }
      break;
    }
    case AGLM_OP_INPUT: {
      copy_rows_push cp{n, width, 1, 0, width, ml.embd_row, out, width};
      groups_2d(div_up((uint64_t)n * width, 256), g);
      r.dispatch(K_COPY_ROWS, s->sets[0][i], &cp, sizeof cp, g);
      break;
    }
    case AGLM_OP_OUTPUT_ROWS:
    case AGLM_OP_MERGE_ROWS: {
      const uint32_t k = op.kind == AGLM_OP_MERGE_ROWS ? (uint32_t)op.i[0] : 1u;
      const uint32_t in_w = (uint32_t)p.values[(size_t)op.in[0]].width;
      copy_rows_push cp{(uint32_t)b->n_out, in_w, k, in(0), in_w, ml.out_rows, out, width};
      groups_2d(div_up((uint64_t)b->n_out * in_w * k, 256), g);
      r.dispatch(K_COPY_ROWS, s->sets[0][i], &cp, sizeof cp, g);
      break;
    }
    case AGLM_OP_EMBED_INTERP: {
      interp_push ip{n, width, (uint32_t)op.i[0], (uint32_t)op.i[1], (uint32_t)p.loc[(size_t)op.w[0]].vector, ml.grid, out, b->grid_pos ? 1u : 0u};
      groups_2d(div_up((uint64_t)n * width, 256), g);
      r.dispatch(K_EMBED_INTERP, s->sets[0][i], &ip, sizeof ip, g);
      break;
    }
    case AGLM_OP_MATMUL: {
      const aglm_hal_weight &w = p.weights[(size_t)op.w[0]];
      const uint32_t k = (uint32_t)w.ne[0], m = (uint32_t)w.ne[1];
      matmul_push mp{(uint32_t)p.loc[(size_t)op.w[0]].offset, (uint32_t)aglm_row_bytes(w.type, k), k, m, (uint32_t)rows,
                     in(0), (uint32_t)p.values[(size_t)op.in[0]].width, out, width,
                     op.w[1] >= 0 ? (uint32_t)p.loc[(size_t)op.w[1]].vector : 0u, op.w[1] >= 0 ? 1u : 0u};
      if (rows > (int64_t)matmul_tok && k % 32 == 0 && p.uses_tile(w.type)) { // a prompt on an f16 tile
        matmul_tile_groups(m, (uint32_t)rows, p.dev->desc().use_coopmat ? matmul_tile_coop : matmul_tile, g);
        r.dispatch(K_MATMUL_TILE + w.type, s->sets[2][i], &mp, sizeof mp, g);
        break;
      }
      if (p.uses_dot(w.type)) { // the activations as int8 blocks into the scratch, then the integer dots
        const bool kq = dot_is_k(w.type); // Q8_K super-blocks of 256, else blocks of 32
        const uint32_t qk = kq ? 256u : 32u, q_stride = k / qk * (kq ? q8k_block_words : q8_block_words);
        quantize_q8_push qp{mp.x_off, mp.x_stride, k, (uint32_t)rows, 0u, q_stride};
        groups_2d(div_up((uint64_t)rows * (k / qk), quantize_q8_wg), g);
        r.dispatch(kq ? K_QUANTIZE_Q8K : K_QUANTIZE_Q8, s->sets[0][i], &qp, sizeof qp, g);
        mp.x_off = 0;
        mp.x_stride = q_stride;
        matmul_groups(m, (uint32_t)rows, g);
        r.dispatch(K_MATMUL_DOT + w.type, s->sets[1][i], &mp, sizeof mp, g);
        break;
      }
      matmul_groups(m, (uint32_t)rows, g);
      r.dispatch(K_MATMUL + w.type, s->sets[0][i], &mp, sizeof mp, g);
      break;
    }
    case AGLM_OP_ROPE: {
      rope_push rp{(uint32_t)rows, (uint32_t)op.i[0], (uint32_t)op.i[1], (uint32_t)std::min(op.i[2], op.i[1]), op.i[3] != 0 ? 1u : 0u, in(0), out,
                   ml.rope[(size_t)op.rope]};
      groups_2d(div_up((uint64_t)rows * op.i[0] * op.i[1], 256), g);
      r.dispatch(K_ROPE, s->sets[0][i], &rp, sizeof rp, g);
      break;
    }
    case AGLM_OP_ATTENTION: {
      const int slot = op.i[0];
      const aglm_hal_cache_slot &c = p.cache[(size_t)slot];
      const bool f16 = s->kv_type == AGLM_TYPE_F16;
      const uint32_t per = f16 ? 2 : 1;
      kv_store_push kp{(uint32_t)rows, (uint32_t)c.k_width, (uint32_t)c.v_width, in(1), in(2), f16 ? 1u : 0u, ml.cell, 0u, s->v_base[(size_t)slot] / per};
      groups_2d(div_up((uint64_t)rows * (c.k_width + c.v_width) / per, 256), g);
      r.dispatch(K_KV_STORE, s->sets[0][i], &kp, sizeof kp, g);
      attention_push ap{(uint32_t)rows, (uint32_t)op.i[1], (uint32_t)op.i[2], (uint32_t)op.i[3], in(0), (uint32_t)p.values[(size_t)op.in[0]].width, out, width,
                        op.f[0], (uint32_t)std::max(0, op.i[4]), op.i[5] ? 1u : 0u, f16 ? 1u : 0u, 0u, s->v_base[(size_t)slot],
                        (uint32_t)c.k_width, (uint32_t)c.v_width, ml.pos, ml.start, ml.len, ml.cells};
      groups_2d((uint64_t)rows * op.i[1], g);
      r.dispatch(K_ATTENTION, s->sets[1][i], &ap, sizeof ap, g);
      break;
    }
    case AGLM_OP_RMS_NORM:
    case AGLM_OP_LAYER_NORM: {
      norm_push np{op.kind == AGLM_OP_LAYER_NORM ? 1u : 0u, width, (uint32_t)rows, in(0), out,
                   op.w[0] >= 0 ? (uint32_t)p.loc[(size_t)op.w[0]].vector : 0u, op.w[0] >= 0 ? 1u : 0u,
                   op.w[1] >= 0 ? (uint32_t)p.loc[(size_t)op.w[1]].vector : 0u, op.w[1] >= 0 ? 1u : 0u, op.f[0]};
      groups_2d((uint64_t)rows, g);
      r.dispatch(K_NORM, s->sets[0][i], &np, sizeof np, g);
      break;
    }
    default: {
      uint32_t mode = ELT_ADD;
      switch (op.kind) {
        case AGLM_OP_MUL: mode = ELT_MUL; break;
        case AGLM_OP_SILU_MUL: mode = ELT_SILU_MUL; break;
        case AGLM_OP_GELU: mode = ELT_GELU; break;
        case AGLM_OP_GELU_ERF: mode = ELT_GELU_ERF; break;
        case AGLM_OP_ADD_VECTOR: mode = ELT_ADD_VECTOR; break;
        default: break;
      }
      const uint64_t count = (uint64_t)rows * width;
      eltwise_push ep{mode, (uint32_t)count, width, in(0), op.in[1] >= 0 ? in(1) : 0u, out,
                      op.w[0] >= 0 && p.loc[(size_t)op.w[0]].vector >= 0 ? (uint32_t)p.loc[(size_t)op.w[0]].vector : 0u};
      groups_2d(div_up(count, kEltwiseGroup), g);
      r.dispatch(K_ELTWISE, s->sets[0][i], &ep, sizeof ep, g);
      break;
    }
  }
}

bool aborted(const aglm_hal_batch *b) { return b->abort && b->abort(b->abort_user) != 0; }

} // namespace

int32_t session_run(session *s, const aglm_hal_batch *b, std::string *err) {
  program &p = *s->p;
  device &dev = *p.dev;
  const api &vk = dev.fn();
  const int64_t n = b->n_tokens;
  aglm_backend::batch_outputs wants;
  const int32_t checked = aglm_backend::check_batch(b, s->n_batch, p.hidden >= 0, &wants, err);
  if (checked != AGLM_OK) return checked;
  const bool any_logits = wants.logits, any_hidden = wants.hidden;
  // Checks the CPU backend makes while it runs, made before anything is recorded.
  int64_t input_rows = 0;
  bool need_input = false;
  for (const aglm_hal_op &op : p.ops) {
    if (op.kind == AGLM_OP_INPUT) {
      const int64_t w = p.values[(size_t)op.out].width;
      if (!b->embd_row || b->embd_width != w) return *err = "the batch brings no input rows of the input width", AGLM_ERR_INVALID_ARGUMENT;
      for (int64_t t = 0; t < n; t++)
        if (b->embd_row[t] < 0) return *err = "a token without an input row", AGLM_ERR_INVALID_ARGUMENT;
      need_input = true;
    }
    if (op.kind == AGLM_OP_EMBED && b->embd_row) {
      for (int64_t t = 0; t < n; t++)
        if (b->embd_row[t] >= 0) need_input = true;
      if (need_input && b->embd_width != p.values[(size_t)op.out].width) return *err = "input rows of the wrong width", AGLM_ERR_INVALID_ARGUMENT;
    }
    if (op.kind == AGLM_OP_MERGE_ROWS)
      for (int32_t r = 0; r < b->n_out; r++)
        if (b->out_rows[r] + op.i[0] > n) return *err = "merge_rows: an output row without its following rows", AGLM_ERR_INVALID_ARGUMENT;
  }
  if (need_input) {
    for (int64_t t = 0; t < n; t++) input_rows = std::max<int64_t>(input_rows, b->embd_row[t] + 1);
    bool replaced = false;
    if (!grow(dev, &s->input, (uint64_t)input_rows * b->embd_width * 4, &replaced, err)) return AGLM_ERR_OUT_OF_MEMORY;
    if (replaced) write_sets(s);
    std::memcpy(s->input.mapped, b->embd, (size_t)input_rows * b->embd_width * 4);
  }

  // The batch buffer: ids, positions, cells, cell lists, row lists, rope tables, grid coordinates.
  int64_t list_len = 0;
  for (int64_t t = 0; t < n; t++) list_len = std::max<int64_t>(list_len, (int64_t)b->kv_start[t] + b->seq_len[t]);
  const meta_layout ml = layout_for(p, n, list_len);
  {
    bool replaced = false;
    if (!grow(dev, &s->meta, (uint64_t)ml.words * 4, &replaced, err)) return AGLM_ERR_OUT_OF_MEMORY;
    if (replaced) write_sets(s);
  }
  int32_t *mi = (int32_t *)s->meta.mapped;
  float *mf = (float *)s->meta.mapped;
  std::memcpy(mi + ml.tokens, b->tokens, n * 4);
  std::memcpy(mi + ml.pos, b->pos, n * 4);
  std::memcpy(mi + ml.cell, b->cell, n * 4);
  std::memcpy(mi + ml.start, b->kv_start, n * 4);
  std::memcpy(mi + ml.len, b->seq_len, n * 4);
  for (int64_t t = 0; t < n; t++) mi[ml.embd_row + t] = b->embd_row ? b->embd_row[t] : -1;
  if (b->n_out) std::memcpy(mi + ml.out_rows, b->out_rows, (size_t)b->n_out * 4);
  if (b->grid_pos) std::memcpy(mf + ml.grid, b->grid_pos, 2 * n * 4);
  for (size_t r = 0; r < p.ropes.size(); r++) rope_table(p, p.ropes[r], b, mf + ml.rope[r]);
  if (list_len) std::memcpy(mi + ml.cells, b->kv_cells, (size_t)list_len * 4);
  for (int64_t t = 0; t < n; t++)
    if (b->cell[t] < 0 || b->cell[t] >= s->n_cells) return *err = "a KV cell out of range", AGLM_ERR_INVALID_ARGUMENT;
  for (int64_t i = 0; i < list_len; i++)
    if (b->kv_cells[i] < 0 || b->kv_cells[i] >= s->n_cells) return *err = "a KV cell out of range", AGLM_ERR_INVALID_ARGUMENT;

  // Read-back room for the output rows.
  const uint64_t logits_bytes = any_logits ? (uint64_t)b->n_out * p.n_vocab * 4 : 0, hidden_bytes = any_hidden ? (uint64_t)b->n_out * p.n_hidden * 4 : 0;
  {
    bool replaced = false;
    if (!grow(dev, &s->readback, logits_bytes + hidden_bytes + 4, &replaced, err)) return AGLM_ERR_OUT_OF_MEMORY;
  }

  // The ops to run, then their recording in segments: the whole batch in one submission for short batches; prompts
  // in about 32, two in flight (the device never waits for the host), so that an abort is honoured within about two
  // segments' time.
  std::vector<size_t> run;
  for (size_t i = 0; i < p.ops.size(); i++) {
    const aglm_hal_op &op = p.ops[i];
    if (!any_logits && !(op.flags & AGLM_OPF_FOR_HIDDEN)) continue;
    if (p.values[(size_t)op.out].rows == AGLM_ROWS_OUTPUTS && b->n_out == 0) continue;
    run.push_back(i);
  }
  const size_t per_segment = n <= 16 ? run.size() + 1 : std::max<size_t>(4, run.size() / 32 + 1);
  recorder rec{s};
  size_t next = 0;
  int submitted[2] = {0, 0};
  int32_t status = AGLM_OK;
  auto wait = [&](int k) -> bool {
    if (!submitted[k]) return true;
    submitted[k] = 0;
    const VkResult res = vk.WaitForFences(dev.handle(), 1, &s->fence[k], VK_TRUE, UINT64_MAX);
    vk.ResetFences(dev.handle(), 1, &s->fence[k]);
    if (res != VK_SUCCESS) {
      *err = "the Vulkan device failed while running the batch (VkResult " + std::to_string((int)res) + ")";
      status = AGLM_ERR_INTERNAL;
      return false;
    }
    return true;
  };
  for (int seg = 0; next < run.size() || seg == 0; seg++) {
    const int k = seg % 2;
    if (!wait(k)) break;
    if (aborted(b)) {
      *err = "aborted";
      status = AGLM_ERR_ABORTED;
      break;
    }
    rec.cb = s->cmd[k];
    rec.bound = VK_NULL_HANDLE;
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vk.BeginCommandBuffer(rec.cb, &bi);
    const size_t end = std::min(run.size(), next + per_segment);
    for (; next < end; next++) {
      const aglm_hal_op &op = p.ops[run[next]];
      const int64_t rows = p.values[(size_t)op.out].rows == AGLM_ROWS_OUTPUTS ? b->n_out : n;
      record_op(rec, run[next], b, ml, rows);
    }
    if (next == run.size()) { // the output rows back to the host
      rec.barrier(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
      VkBufferCopy regions[2];
      uint32_t nr = 0;
      if (logits_bytes) regions[nr++] = {(uint64_t)s->value_off[(size_t)p.output] * 4, 0, logits_bytes};
      if (hidden_bytes) regions[nr++] = {(uint64_t)s->value_off[(size_t)p.hidden] * 4, logits_bytes, hidden_bytes};
      if (nr) vk.CmdCopyBuffer(rec.cb, s->arena.buf, s->readback.buf, nr, regions);
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
      vk.CmdPipelineBarrier(rec.cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
    }
    vk.EndCommandBuffer(rec.cb);
    if (!dev.submit(rec.cb, s->fence[k], err)) {
      status = AGLM_ERR_INTERNAL;
      break;
    }
    submitted[k] = 1;
  }
  const bool w0 = wait(0), w1 = wait(1);
  if (status != AGLM_OK) return status;
  if (!w0 || !w1) return AGLM_ERR_INTERNAL;
  if (aborted(b)) return *err = "aborted", AGLM_ERR_ABORTED;
  const char *rb = (const char *)s->readback.mapped;
  for (int32_t r = 0; r < b->n_out; r++) {
    const bool hidden = b->out_kind[r] == AGLM_OUT_HIDDEN;
    const int64_t w = hidden ? p.n_hidden : p.n_vocab;
    std::memcpy(b->out[r], rb + (hidden ? logits_bytes : 0) + (uint64_t)r * w * 4, (size_t)w * 4);
  }
  return AGLM_OK;
}

} // namespace aglm_vk
