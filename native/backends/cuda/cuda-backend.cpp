// aglm-backend-cuda: the CUDA backend module behind HAL API 3, on the driver API only (cuda-driver.h: libcuda opened
// at run time; no cudart, no cuBLAS) and the kernels of kernels/aglm-cuda.cu, embedded as one fatbin. Without a
// driver or a device it loads all the same and scores 0 saying which is missing. Its forward pass has not yet run on
// a GPU, so even with a device it scores 0 unless OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1 (then backend: 'cuda' runs it).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <aglm-cuda-fatbin.h> // generated: aglm_cuda_fatbin, aglm_cuda_fatbin_bytes
#include "backends/cuda/cuda-driver.h"
#include "backends/cuda/kernels/ops.cuh"
#include "backends/cuda/kernels/quant.cuh"
#include "backends/hal-util.h"
#include "open-autoglm/backend.h"

#ifndef AGLM_CUDA_ARCHS
#define AGLM_CUDA_ARCHS "unknown"
#endif

using namespace aglm_cuda;

namespace {

using aglm_backend::guarded;
using aglm_backend::json_str;
using aglm_backend::put;

// ---- the kernels of the fatbin --------------------------------------------------------------------------------

const int kWeightTypes[] = {AGLM_TYPE_F32,  AGLM_TYPE_F16,  AGLM_TYPE_BF16, AGLM_TYPE_Q8_0, AGLM_TYPE_Q4_0, AGLM_TYPE_Q4_1,
                            AGLM_TYPE_Q5_0, AGLM_TYPE_Q5_1, AGLM_TYPE_Q4_K, AGLM_TYPE_Q5_K, AGLM_TYPE_Q6_K};
const char *type_suffix(int t) {
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
    default: return nullptr;
  }
}
const char *const kOtherKernels[] = {"aglm_quantize_q8_1", "aglm_rms_norm",   "aglm_layer_norm",   "aglm_eltwise",     "aglm_rope",
                                     "aglm_kv_store",      "aglm_attn_split", "aglm_attn_combine", "aglm_gather_rows", "aglm_merge_rows",
                                     "aglm_embed_interp"};
enum { K_QUANTIZE, K_RMS_NORM, K_LAYER_NORM, K_ELTWISE, K_ROPE, K_KV_STORE, K_ATTN_SPLIT, K_ATTN_COMBINE, K_GATHER, K_MERGE, K_INTERP, K_COUNT };

std::string kernel_list() {
  std::string s;
  for (int t : kWeightTypes) s += std::string(s.empty() ? "" : ", ") + (aglm_cu_type_quantized(t) ? "mmv/mm/get_rows_" : "mmv/mm/mmf/get_rows_") + type_suffix(t);
  for (const char *k : kOtherKernels) s += std::string(", ") + (k + 5);
  return s;
}

// One device opened for computing: its primary context, the fatbin loaded, every kernel resolved. Opened once per
// process and kept (modules are never unloaded either).
struct device_ctx {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUmodule mod = nullptr;
  CUfunction other[K_COUNT] = {};
  CUfunction mmv[AGLM_TYPE_COUNT] = {}, mm[AGLM_TYPE_COUNT] = {}, get_rows[AGLM_TYPE_COUNT] = {};
  CUfunction mmf[AGLM_TYPE_COUNT] = {}; // the float types' f32 prompt tile
  std::string error;
};

device_ctx *open_device(int index, std::string *err) {
  static std::mutex mu;
  static std::vector<device_ctx *> opened;
  std::lock_guard<std::mutex> lock(mu);
  const runtime &rt = get_runtime();
  if (!rt.error.empty()) return *err = rt.error, nullptr;
  if (index < 0 || index >= (int)rt.devices.size()) return *err = "no CUDA device " + std::to_string(index), nullptr;
  if (opened.empty()) opened.assign(rt.devices.size(), nullptr);
  if (opened[(size_t)index]) {
    if (!opened[(size_t)index]->error.empty()) return *err = opened[(size_t)index]->error, nullptr;
    return opened[(size_t)index];
  }
  auto *d = new device_ctx();
  opened[(size_t)index] = d;
  const api &cu = rt.cu;
  const device_desc &dd = rt.devices[(size_t)index];
  d->dev = dd.handle;
  CUresult r = cu.DevicePrimaryCtxRetain(&d->ctx, d->dev);
  if (r != CUDA_SUCCESS) return *err = d->error = describe_error(cu, "cuDevicePrimaryCtxRetain", r), nullptr;
  if ((r = cu.CtxPushCurrent(d->ctx)) != CUDA_SUCCESS) return *err = d->error = describe_error(cu, "cuCtxPushCurrent", r), nullptr;
  r = cu.ModuleLoadData(&d->mod, aglm_cuda_fatbin);
  if (r != CUDA_SUCCESS) {
    d->error = describe_error(cu, "cuModuleLoadData", r) + ": the embedded kernels (" AGLM_CUDA_ARCHS ") do not load on " + dd.name +
               " (compute capability " + std::to_string(dd.cc_major) + "." + std::to_string(dd.cc_minor) + ")";
  }
  for (int k = 0; k < K_COUNT && d->error.empty(); k++)
    if ((r = cu.ModuleGetFunction(&d->other[k], d->mod, kOtherKernels[k])) != CUDA_SUCCESS)
      d->error = describe_error(cu, "cuModuleGetFunction", r) + " for " + kOtherKernels[k];
  for (int t : kWeightTypes) {
    if (!d->error.empty()) break;
    const std::string s = type_suffix(t);
    const std::string names[3] = {"aglm_mmv_" + s, "aglm_mm_" + s, "aglm_get_rows_" + s};
    CUfunction *slots[3] = {&d->mmv[t], &d->mm[t], &d->get_rows[t]};
    for (int i = 0; i < 3 && d->error.empty(); i++)
      if ((r = cu.ModuleGetFunction(slots[i], d->mod, names[i].c_str())) != CUDA_SUCCESS)
        d->error = describe_error(cu, "cuModuleGetFunction", r) + " for " + names[i];
    if (d->error.empty() && !aglm_cu_type_quantized(t) && (r = cu.ModuleGetFunction(&d->mmf[t], d->mod, ("aglm_mmf_" + s).c_str())) != CUDA_SUCCESS)
      d->error = describe_error(cu, "cuModuleGetFunction", r) + " for aglm_mmf_" + s;
  }
  CUcontext popped;
  cu.CtxPopCurrent(&popped);
  if (!d->error.empty()) return *err = d->error, nullptr;
  return d;
}

// Makes a device's context current on this thread for a scope (the caller's thread may be any worker).
// A push that fails pops nothing (the caller's own current context stays); the driver calls in the scope then fail
// with their own errors.
struct ctx_scope {
  const api &cu;
  bool pushed;
  explicit ctx_scope(const api &c, CUcontext ctx) : cu(c), pushed(cu.CtxPushCurrent(ctx) == CUDA_SUCCESS) {}
  ~ctx_scope() {
    CUcontext c;
    if (pushed) cu.CtxPopCurrent(&c);
  }
};

// ---- programs ------------------------------------------------------------------------------------------------------

// Device memory with one owner.
struct dev_buffer {
  CUdeviceptr ptr = 0;
  size_t size = 0;
  const api *cu = nullptr;
  dev_buffer() = default;
  dev_buffer(const dev_buffer &) = delete;
  dev_buffer &operator=(const dev_buffer &) = delete;
  ~dev_buffer() { release(); }
  // Frees the memory (the owner's context must be current).
  void release() {
    if (ptr) cu->MemFree(ptr);
    ptr = 0, size = 0;
  }
  CUresult alloc(const api &c, size_t bytes) {
    cu = &c;
    if (ptr) cu->MemFree(ptr), ptr = 0, size = 0;
    if (bytes == 0) return CUDA_SUCCESS;
    const CUresult r = cu->MemAlloc(&ptr, bytes);
    if (r == CUDA_SUCCESS) size = bytes;
    else ptr = 0;
    return r;
  }
};

} // namespace

// The graph (weights, values, ops, cache slots, ropes, outputs) is the program's own copy (aglm_backend::graph_copy).
struct aglm_hal_program : aglm_backend::graph_copy {
  device_ctx *dc = nullptr;
  int device = 0;
  std::vector<std::unique_ptr<dev_buffer>> wraw; // per weight: GGUF bytes (matmul, rows), or null
  std::vector<std::unique_ptr<dev_buffer>> wvec; // per weight: f32 copy (vectors), or null
  std::vector<std::vector<float>> freq_factors;  // per rope configuration: host copy (the tables are made on the host)
  int64_t max_k = 0, max_heads = 0, max_hd = 0;
  uint64_t bytes = 0;
  std::string description;
};

namespace {

// Whether the CUDA kernels can run an op; the reason when not.
bool op_supported(const aglm_hal_program &p, const aglm_hal_op &op, std::string *why) {
  auto wtype_ok = [&](int32_t w) {
    const aglm_hal_weight &x = p.weights[(size_t)w];
    if (!aglm_cu_type_supported(x.type))
      return *why = "tensor " + p.names[(size_t)w] + " has type " + std::to_string(x.type) + ", which the CUDA kernels do not read", false;
    if (x.ne[0] % aglm_cu_type_block_values(x.type) != 0)
      return *why = "tensor " + p.names[(size_t)w] + ": its rows (" + std::to_string(x.ne[0]) + ") are not whole blocks", false;
    return true;
  };
  switch (op.kind) {
    case AGLM_OP_MATMUL: return wtype_ok(op.w[0]);
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: return wtype_ok(op.w[0]);
    case AGLM_OP_ATTENTION:
      if (op.i[3] > 256 || op.i[2] <= 0 || op.i[1] % op.i[2] != 0)
        return *why = "attention with head_dim " + std::to_string(op.i[3]) + " (the CUDA kernels take up to 256) or heads not a multiple of KV heads", false;
      return true;
    case AGLM_OP_ROPE:
      if (op.i[2] > op.i[1] || op.i[2] % 2) return *why = "rope with n_rot past head_dim or odd", false;
      return true;
    default: return op.kind >= 0 && op.kind < AGLM_OP_COUNT ? true : (*why = "unknown op " + std::to_string(op.kind), false);
  }
}

// Norm weights, biases, frequency factors: f32 (F16/BF16 converted here with the shared dequantization).
bool vector_as_f32(const aglm_hal_weight &w, std::vector<float> *out) {
  const int64_t n = w.ne[0] * w.ne[1] * w.ne[2] * w.ne[3];
  out->resize((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    switch (w.type) {
      case AGLM_TYPE_F32: (*out)[(size_t)i] = ((const float *)w.data)[i]; break;
      case AGLM_TYPE_F16: (*out)[(size_t)i] = aglm_cu_h2f(((const uint16_t *)w.data)[i]); break;
      case AGLM_TYPE_BF16: (*out)[(size_t)i] = aglm_cu_bf2f(((const uint16_t *)w.data)[i]); break;
      default: return false;
    }
  }
  return true;
}

int32_t program_build(const aglm_hal_program_desc *desc, aglm_hal_program **out, std::string *err) {
  device_ctx *dc = open_device(desc->device, err);
  if (!dc) return AGLM_ERR_BACKEND_UNAVAILABLE;
  const runtime &rt = get_runtime();
  const api &cu = rt.cu;
  const aglm_hal_graph &g = *desc->graph;
  ctx_scope scope(cu, dc->ctx); // declared before the program: a failed build frees its device memory in the context
  auto p = std::make_unique<aglm_hal_program>();
  p->dc = dc;
  p->device = desc->device;
  p->assign(g);
  for (const aglm_hal_op &op : p->ops) {
    std::string why;
    if (!op_supported(*p, op, &why)) return *err = why, AGLM_ERR_BACKEND_UNAVAILABLE;
    if (op.kind == AGLM_OP_MATMUL) p->max_k = std::max<int64_t>(p->max_k, p->weights[(size_t)op.w[0]].ne[0]);
    if (op.kind == AGLM_OP_ATTENTION) p->max_heads = std::max<int64_t>(p->max_heads, op.i[1]), p->max_hd = std::max<int64_t>(p->max_hd, op.i[3]);
  }
  for (const aglm_hal_cache_slot &c : p->cache)
    if (c.k_width != c.v_width) return *err = "a KV cache slot whose keys and values differ in width (the CUDA attention reads both with one stride)", AGLM_ERR_BACKEND_UNAVAILABLE;
  for (const aglm_hal_rope &c : p->ropes) {
    std::vector<float> ff;
    if (c.freq_factors >= 0 && !vector_as_f32(p->weights[(size_t)c.freq_factors], &ff))
      return *err = "rope frequency factors of an unsupported type", AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
    p->freq_factors.push_back(std::move(ff));
  }
  // Weights go up once: matmul and row tables in their GGUF bytes, vectors as f32.
  p->wraw.resize(p->weights.size());
  p->wvec.resize(p->weights.size());
  for (size_t i = 0; i < p->weights.size(); i++) {
    const aglm_hal_weight &w = p->weights[i];
    if (w.uses & (AGLM_WEIGHT_MATMUL | AGLM_WEIGHT_ROWS)) {
      p->wraw[i] = std::make_unique<dev_buffer>();
      CUresult r = p->wraw[i]->alloc(cu, w.nbytes);
      if (r == CUDA_SUCCESS) r = cu.MemcpyHtoD(p->wraw[i]->ptr, w.data, w.nbytes);
      if (r != CUDA_SUCCESS) return *err = describe_error(cu, "cuMemAlloc/cuMemcpyHtoD", r) + " (tensor " + p->names[i] + ")", AGLM_ERR_OUT_OF_MEMORY;
      p->bytes += w.nbytes;
    }
    if (w.uses & AGLM_WEIGHT_VECTOR) {
      std::vector<float> v;
      if (!vector_as_f32(w, &v)) return *err = "tensor " + p->names[i] + ": a vector of a type the CUDA backend cannot convert", AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
      p->wvec[i] = std::make_unique<dev_buffer>();
      CUresult r = p->wvec[i]->alloc(cu, v.size() * 4);
      if (r == CUDA_SUCCESS) r = cu.MemcpyHtoD(p->wvec[i]->ptr, v.data(), v.size() * 4);
      if (r != CUDA_SUCCESS) return *err = describe_error(cu, "cuMemAlloc/cuMemcpyHtoD", r) + " (tensor " + p->names[i] + ")", AGLM_ERR_OUT_OF_MEMORY;
      p->bytes += v.size() * 4;
    }
    // Everything this weight is read as now lives on the device.
    if (desc->release && (w.uses & (AGLM_WEIGHT_MATMUL | AGLM_WEIGHT_ROWS | AGLM_WEIGHT_VECTOR))) desc->release(desc->release_user, (int32_t)i);
  }
  // cuMemcpyHtoD from pageable memory may return before its DMA lands, and the sessions' streams are non-blocking
  // (they do not wait for the legacy stream the copies went on): the uploads finish here.
  if (CUresult r = cu.StreamSynchronize(nullptr); r != CUDA_SUCCESS) return *err = describe_error(cu, "cuStreamSynchronize after the weight upload", r), AGLM_ERR_INTERNAL;
  const device_desc &dd = rt.devices[(size_t)desc->device];
  p->description = "cuda: " + dd.name + " (compute capability " + std::to_string(dd.cc_major) + "." + std::to_string(dd.cc_minor) + ", " +
                   std::to_string(dd.sm_count) + " SMs)";
  *out = p.release();
  return AGLM_OK;
}

// ---- sessions --------------------------------------------------------------------------------------------------------

} // namespace

struct aglm_hal_session {
  aglm_hal_program *p = nullptr;
  CUstream stream = nullptr;
  int64_t n_cells = 0, n_batch = 0;
  int kv_type = AGLM_TYPE_F32;
  std::vector<uint64_t> offsets;
  dev_buffer arena, kv, qx, part, ml, tables, ints;
  std::vector<CUdeviceptr> k_cache, v_cache;
  int64_t part_floats = 0;
  void *staging = nullptr; // pinned: the batch's integer tables, then its rope tables
  size_t staging_bytes = 0;
  uint64_t bytes = 0;
  ~aglm_hal_session() {
    const api &cu = get_runtime().cu;
    if (!p) return;
    ctx_scope scope(cu, p->dc->ctx);
    if (stream) cu.StreamSynchronize(stream), cu.StreamDestroy(stream);
    if (staging) cu.MemFreeHost(staging);
    for (dev_buffer *b : {&arena, &kv, &qx, &part, &ml, &tables, &ints}) b->release(); // while the context is current
  }
};

namespace {

const int kMaxSplits = 16;

int32_t session_build(aglm_hal_program *p, const aglm_hal_session_desc *desc, aglm_hal_session **out, std::string *err) {
  if (desc->n_cells < 1 || desc->n_batch < 1) return *err = "context size and batch size must be positive", AGLM_ERR_INVALID_ARGUMENT;
  if (desc->kv_type != AGLM_TYPE_F32 && desc->kv_type != AGLM_TYPE_F16) return *err = "the KV cache type must be F32 or F16", AGLM_ERR_INVALID_ARGUMENT;
  const api &cu = get_runtime().cu;
  ctx_scope scope(cu, p->dc->ctx);
  auto s = std::make_unique<aglm_hal_session>();
  s->p = p;
  s->n_cells = desc->n_cells;
  s->n_batch = std::min(desc->n_batch, desc->n_cells);
  s->kv_type = desc->kv_type;
  s->offsets.assign(desc->value_offsets, desc->value_offsets + p->values.size());
  const size_t elem = desc->kv_type == AGLM_TYPE_F16 ? 2 : 4;
  uint64_t kv_bytes = 0;
  for (const aglm_hal_cache_slot &c : p->cache) kv_bytes += (uint64_t)s->n_cells * (c.k_width + c.v_width) * elem;
  // Split-K partials: one split per (token, head) for a whole batch, up to kMaxSplits for the few tokens of a decode.
  s->part_floats = std::max<int64_t>(s->n_batch, kMaxSplits * 4) * std::max<int64_t>(p->max_heads, 1) * std::max<int64_t>(p->max_hd, 1);
  const size_t qx_bytes = (size_t)s->n_batch * (size_t)(p->max_k / 32) * sizeof(aglm_block_q8_1);
  CUresult r = cu.StreamCreate(&s->stream, 1 /* CU_STREAM_NON_BLOCKING */);
  if (r == CUDA_SUCCESS) r = s->arena.alloc(cu, desc->arena_bytes);
  if (r == CUDA_SUCCESS) r = s->kv.alloc(cu, kv_bytes);
  if (r == CUDA_SUCCESS) r = s->qx.alloc(cu, qx_bytes);
  if (r == CUDA_SUCCESS) r = s->part.alloc(cu, (size_t)s->part_floats * 4);
  if (r == CUDA_SUCCESS) r = s->ml.alloc(cu, (size_t)(s->part_floats / std::max<int64_t>(p->max_hd, 1)) * 8);
  if (r != CUDA_SUCCESS) return *err = describe_error(cu, "allocating the context's device memory", r), AGLM_ERR_OUT_OF_MEMORY;
  CUdeviceptr at = s->kv.ptr;
  for (const aglm_hal_cache_slot &c : p->cache) {
    s->k_cache.push_back(at);
    at += (CUdeviceptr)(s->n_cells * c.k_width * elem);
    s->v_cache.push_back(at);
    at += (CUdeviceptr)(s->n_cells * c.v_width * elem);
  }
  s->bytes = s->arena.size + s->kv.size + s->qx.size + s->part.size + s->ml.size;
  *out = s.release();
  return AGLM_OK;
}

// Grows a device buffer and the pinned staging to hold `bytes`.
CUresult ensure(const api &cu, dev_buffer *b, size_t bytes) { return b->size >= bytes ? CUDA_SUCCESS : b->alloc(cu, bytes * 2); }
CUresult ensure_staging(const api &cu, aglm_hal_session *s, size_t bytes) {
  if (s->staging_bytes >= bytes) return CUDA_SUCCESS;
  if (s->staging) cu.StreamSynchronize(s->stream), cu.MemFreeHost(s->staging), s->staging = nullptr, s->staging_bytes = 0;
  const CUresult r = cu.MemAllocHost(&s->staging, bytes * 2);
  if (r == CUDA_SUCCESS) s->staging_bytes = bytes * 2;
  return r;
}

// One batch's run: enqueues every op on the session's stream, then copies the outputs back and waits.
struct batch_run {
  aglm_hal_session *s;
  const aglm_hal_batch *b;
  const api &cu;
  const device_ctx *dc;
  CUresult failed = CUDA_SUCCESS;
  std::string failed_what;
  // Device copies of the batch's integer tables (offsets into s->ints, in int32s).
  int64_t o_tokens = 0, o_pos = 0, o_cells = 0, o_kv_start = 0, o_out_rows = 0, o_kv_cells = 0;
  int64_t o_grid = -1; // float offset of the batch's grid coordinates in s->tables (-1: none)
  std::vector<int64_t> o_first, o_nkv; // per op index (attention ops only)
  std::vector<int64_t> o_rope;         // per rope configuration: float offset in s->tables
  int32_t max_nkv = 0;

  batch_run(aglm_hal_session *s_, const aglm_hal_batch *b_, const api &cu_, const device_ctx *dc_) : s(s_), b(b_), cu(cu_), dc(dc_) {}
  CUdeviceptr value(int v) const { return s->arena.ptr + s->offsets[(size_t)v]; }
  CUdeviceptr ints(int64_t off) const { return s->ints.ptr + (CUdeviceptr)(off * 4); }

  template <typename... A> void launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, const char *what, A... args) {
    if (failed != CUDA_SUCCESS || gx == 0 || gy == 0 || gz == 0) return;
    void *params[] = {(void *)&args...};
    const CUresult r = cu.LaunchKernel(f, gx, gy, gz, bx, by, 1, 0, s->stream, params, nullptr);
    if (r != CUDA_SUCCESS) failed = r, failed_what = what;
  }
  static unsigned blocks(int64_t n, int64_t per) { return (unsigned)((n + per - 1) / per); }
};

// The integer tables and rope tables of a batch, staged in pinned memory and uploaded with two copies.
int32_t upload_tables(batch_run &br, std::string *err) {
  aglm_hal_session *s = br.s;
  const aglm_hal_program *p = s->p;
  const aglm_hal_batch *b = br.b;
  const int64_t n = b->n_tokens;
  int64_t list_len = 0;
  for (int64_t t = 0; t < n; t++) list_len = std::max<int64_t>(list_len, (int64_t)b->kv_start[t] + b->seq_len[t]);
  std::vector<int32_t> ints;
  auto add = [&](int64_t count) {
    const int64_t at = (int64_t)ints.size();
    ints.resize(ints.size() + (size_t)count);
    return at;
  };
  br.o_tokens = add(n), br.o_pos = add(n), br.o_cells = add(n), br.o_kv_start = add(n), br.o_out_rows = add(std::max(1, b->n_out));
  for (int64_t t = 0; t < n; t++) {
    ints[(size_t)(br.o_tokens + t)] = (int32_t)b->tokens[t];
    ints[(size_t)(br.o_pos + t)] = b->pos[t];
    ints[(size_t)(br.o_cells + t)] = b->cell[t];
    ints[(size_t)(br.o_kv_start + t)] = b->kv_start[t];
  }
  for (int32_t r = 0; r < b->n_out; r++) ints[(size_t)(br.o_out_rows + r)] = b->out_rows[r];
  br.o_first.assign(p->ops.size(), 0);
  br.o_nkv.assign(p->ops.size(), 0);
  for (size_t i = 0; i < p->ops.size(); i++) {
    const aglm_hal_op &op = p->ops[i];
    if (op.kind != AGLM_OP_ATTENTION) continue;
    br.o_first[i] = add(n), br.o_nkv[i] = add(n);
    for (int64_t t = 0; t < n; t++) {
      int32_t first = 0, count = b->seq_len[t];
      if (!op.i[5]) { // causal, within the sliding window
        first = op.i[4] > 0 ? std::max(0, b->pos[t] - op.i[4] + 1) : 0;
        count = b->pos[t] + 1 - first;
      }
      ints[(size_t)(br.o_first[i] + t)] = first;
      ints[(size_t)(br.o_nkv[i] + t)] = count;
      br.max_nkv = std::max(br.max_nkv, count);
    }
  }
  br.o_kv_cells = add(list_len);
  std::memcpy(ints.data() + br.o_kv_cells, b->kv_cells, (size_t)list_len * 4);
  // Rope tables, computed on the host exactly as the CPU backend computes them (ops.cuh).
  std::vector<float> tables;
  for (size_t c = 0; c < p->ropes.size(); c++) {
    const aglm_hal_rope &cfg = p->ropes[c];
    br.o_rope.push_back((int64_t)tables.size());
    float corr[2] = {0, 0};
    if (cfg.ext_factor != 0) aglm_cu_yarn_corr_dims(cfg, corr);
    const float *ff = p->freq_factors[c].empty() ? nullptr : p->freq_factors[c].data();
    const size_t base = tables.size();
    tables.resize(base + (size_t)(n * cfg.n_rot));
    for (int64_t t = 0; t < n; t++) {
      int32_t planes[4];
      if (b->rope_pos)
        for (int k = 0; k < 4; k++) planes[k] = b->rope_pos[k * n + t];
      for (int j = 0; j < cfg.n_rot / 2; j++)
        aglm_cu_rope_cos_sin(cfg, ff, corr, b->pos[t], b->rope_pos ? planes : nullptr, j, &tables[base + (size_t)(t * cfg.n_rot + 2 * j)]);
    }
  }
  if (b->grid_pos) { // embed_interp's source coordinates: n x, then n y
    br.o_grid = (int64_t)tables.size();
    tables.insert(tables.end(), b->grid_pos, b->grid_pos + 2 * n);
  }
  const size_t ib = ints.size() * 4, tb = std::max<size_t>(tables.size(), 1) * 4;
  const api &cu = br.cu;
  CUresult r = ensure_staging(cu, s, ib + tb);
  if (r == CUDA_SUCCESS) r = ensure(cu, &s->ints, ib);
  if (r == CUDA_SUCCESS) r = ensure(cu, &s->tables, tb);
  if (r != CUDA_SUCCESS) return *err = describe_error(cu, "allocating the batch tables", r), AGLM_ERR_OUT_OF_MEMORY;
  std::memcpy(s->staging, ints.data(), ib);
  if (!tables.empty()) std::memcpy((char *)s->staging + ib, tables.data(), tables.size() * 4);
  r = cu.MemcpyHtoDAsync(s->ints.ptr, s->staging, ib, s->stream);
  if (r == CUDA_SUCCESS && !tables.empty()) r = cu.MemcpyHtoDAsync(s->tables.ptr, (char *)s->staging + ib, tables.size() * 4, s->stream);
  if (r != CUDA_SUCCESS) return *err = describe_error(cu, "cuMemcpyHtoDAsync", r), AGLM_ERR_INTERNAL;
  return AGLM_OK;
}

void run_matmul(batch_run &br, const aglm_hal_op &op, int64_t rows) {
  const aglm_hal_program *p = br.s->p;
  const aglm_hal_weight &w = p->weights[(size_t)op.w[0]];
  const int64_t K = w.ne[0], M = w.ne[1] * w.ne[2] * w.ne[3];
  const uint64_t wrb = aglm_cu_row_bytes(w.type, K);
  const CUdeviceptr wp = p->wraw[(size_t)op.w[0]]->ptr, x = br.value(op.in[0]), y = br.value(op.out);
  const CUdeviceptr bias = op.w[1] >= 0 ? p->wvec[(size_t)op.w[1]]->ptr : 0;
  if (rows > 8 && (w.type == AGLM_TYPE_F32 || w.type == AGLM_TYPE_BF16 || K % 32 != 0)) {
    // Prompts of F32 and BF16 weights (half would round or overflow them) and float rows with a partial chunk: the
    // f32 tile.
    br.launch(br.dc->mmf[w.type], batch_run::blocks(M, 64), batch_run::blocks(rows, 64), 1, 256, 1, "mmf", wp, wrb, x, y, M, rows, K, M, bias);
    return;
  }
  if (rows <= 8) { // decode: the weights stream once per token through the dp4a (or float) mat-vec
    CUdeviceptr xa = x;
    if (aglm_cu_type_quantized(w.type)) {
      const int64_t nb = rows * (K / 32);
      br.launch(br.dc->other[K_QUANTIZE], batch_run::blocks(nb * 32, 256), 1, 1, 256, 1, "quantize_q8_1", x, br.s->qx.ptr, K, nb);
      xa = br.s->qx.ptr;
    }
    br.launch(br.dc->mmv[w.type], batch_run::blocks(M, 4), (unsigned)rows, 1, 32, 4, "mmv", wp, wrb, xa, y, M, K, M, bias);
  } else { // prompt: tensor-core tiles
    br.launch(br.dc->mm[w.type], batch_run::blocks(M, 64), batch_run::blocks(rows, 64), 1, 128, 1, "mm", wp, wrb, x, y, M, rows, K, M, bias);
  }
}

void run_attention(batch_run &br, size_t op_index, const aglm_hal_op &op, int64_t rows) {
  aglm_hal_session *s = br.s;
  const aglm_hal_program *p = s->p;
  const int slot = op.i[0];
  const int64_t kw = p->cache[(size_t)slot].k_width, vw = p->cache[(size_t)slot].v_width;
  const int kv_type = s->kv_type;
  br.launch(br.dc->other[K_KV_STORE], batch_run::blocks(rows * kw, 256), 1, 1, 256, 1, "kv_store k", br.value(op.in[1]), s->k_cache[(size_t)slot],
            br.ints(br.o_cells), kw, rows, kv_type);
  br.launch(br.dc->other[K_KV_STORE], batch_run::blocks(rows * vw, 256), 1, 1, 256, 1, "kv_store v", br.value(op.in[2]), s->v_cache[(size_t)slot],
            br.ints(br.o_cells), vw, rows, kv_type);
  const int n_head = op.i[1], n_head_kv = op.i[2], hd = op.i[3];
  int splits = std::min<int>(kMaxSplits, std::max<int>(1, (br.max_nkv + 255) / 256));
  // Both scratch buffers bound the splits: part (hd floats a split) and ml (2 floats a split, sized for max_hd).
  const int64_t ml_slots = s->part_floats / std::max<int64_t>(p->max_hd, 1);
  while (splits > 1 && (rows * n_head * splits * hd > s->part_floats || rows * n_head * splits > ml_slots)) splits--;
  const int64_t q_stride = p->values[(size_t)op.in[0]].width, out_stride = p->values[(size_t)op.out].width;
  // The value cache is read with the key's row stride: the slot's widths are equal for the models the graph builds.
  br.launch(br.dc->other[K_ATTN_SPLIT], (unsigned)rows, (unsigned)n_head, (unsigned)splits, 32, 1, "attn_split", br.value(op.in[0]), q_stride,
            s->k_cache[(size_t)slot], s->v_cache[(size_t)slot], kw, kv_type, br.ints(br.o_kv_cells), br.ints(br.o_kv_start),
            br.ints(br.o_first[op_index]), br.ints(br.o_nkv[op_index]), n_head, n_head_kv, hd, op.f[0], splits, s->part.ptr, s->ml.ptr);
  br.launch(br.dc->other[K_ATTN_COMBINE], (unsigned)rows, (unsigned)n_head, 1, 128, 1, "attn_combine", s->part.ptr, s->ml.ptr, br.value(op.out),
            out_stride, n_head, hd, splits);
}

// Copies the batch's input rows (pageable host memory: each copy completes before it returns) into a value.
int32_t copy_input_rows(batch_run &br, int v, int64_t width, bool all, std::string *err) {
  const aglm_hal_batch *b = br.b;
  if (!b->embd_row) {
    if (!all) return AGLM_OK;
    return *err = "the batch brings no input rows of the input width", AGLM_ERR_INVALID_ARGUMENT;
  }
  if (b->embd_width != width) return *err = "the batch brings no input rows of the input width", AGLM_ERR_INVALID_ARGUMENT;
  for (int64_t t = 0; t < b->n_tokens; t++) {
    if (b->embd_row[t] < 0) {
      if (all) return *err = "a token without an input row", AGLM_ERR_INVALID_ARGUMENT;
      continue;
    }
    const CUresult r = br.cu.MemcpyHtoDAsync(br.value(v) + (CUdeviceptr)(t * width * 4), b->embd + (int64_t)b->embd_row[t] * width,
                                             (size_t)width * 4, br.s->stream);
    if (r != CUDA_SUCCESS) return *err = describe_error(br.cu, "cuMemcpyHtoDAsync", r), AGLM_ERR_INTERNAL;
  }
  return AGLM_OK;
}

int32_t run_op(batch_run &br, size_t i, const aglm_hal_op &op, int64_t rows, std::string *err) {
  aglm_hal_session *s = br.s;
  const aglm_hal_program *p = s->p;
  const aglm_hal_batch *b = br.b;
  const int64_t n = b->n_tokens, w = p->values[(size_t)op.out].width;
  const CUdeviceptr out = br.value(op.out);
  const CUdeviceptr in0 = op.in[0] >= 0 ? br.value(op.in[0]) : 0, in1 = op.in[1] >= 0 ? br.value(op.in[1]) : 0;
  const CUdeviceptr w0 = op.w[0] >= 0 && p->wvec[(size_t)op.w[0]] ? p->wvec[(size_t)op.w[0]]->ptr : 0;
  const CUdeviceptr w1 = op.w[1] >= 0 && p->wvec[(size_t)op.w[1]] ? p->wvec[(size_t)op.w[1]]->ptr : 0;
  auto eltwise = [&](int code, CUdeviceptr bsrc) {
    br.launch(br.dc->other[K_ELTWISE], batch_run::blocks(rows * w, 256), 1, 1, 256, 1, "eltwise", code, in0, bsrc, out, rows * w, w);
  };
  switch (op.kind) {
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: {
      const aglm_hal_weight &wt = p->weights[(size_t)op.w[0]];
      const int64_t idx = op.kind == AGLM_OP_EMBED ? br.o_tokens : br.o_pos;
      const unsigned gy = (unsigned)std::min<int64_t>(n, 65535); // tokens over y and z: z * gridDim.y + y
      br.launch(br.dc->get_rows[wt.type], batch_run::blocks((w + 31) / 32, 64), gy, batch_run::blocks(n, gy), 64, 1, "get_rows", p->wraw[(size_t)op.w[0]]->ptr,
                (uint64_t)aglm_cu_row_bytes(wt.type, wt.ne[0]), br.ints(idx), out, w, n);
      if (op.kind == AGLM_OP_EMBED) return copy_input_rows(br, op.out, w, false, err);
      return AGLM_OK;
    }
    case AGLM_OP_INPUT: return copy_input_rows(br, op.out, w, true, err);
    case AGLM_OP_MATMUL: run_matmul(br, op, rows); return AGLM_OK;
    case AGLM_OP_RMS_NORM:
      br.launch(br.dc->other[K_RMS_NORM], (unsigned)rows, 1, 1, AGLM_CU_ROW_THREADS, 1, "rms_norm", in0, w0, out, w, op.f[0]);
      return AGLM_OK;
    case AGLM_OP_LAYER_NORM:
      br.launch(br.dc->other[K_LAYER_NORM], (unsigned)rows, 1, 1, AGLM_CU_ROW_THREADS, 1, "layer_norm", in0, w0, w1, out, w, op.f[0]);
      return AGLM_OK;
    case AGLM_OP_ADD: eltwise(0, in1); return AGLM_OK;
    case AGLM_OP_MUL: eltwise(1, in1); return AGLM_OK;
    case AGLM_OP_SILU_MUL: eltwise(2, in1); return AGLM_OK;
    case AGLM_OP_GELU: eltwise(3, 0); return AGLM_OK;
    case AGLM_OP_GELU_ERF: eltwise(4, 0); return AGLM_OK;
    case AGLM_OP_ADD_VECTOR: eltwise(5, w0); return AGLM_OK;
    case AGLM_OP_ROPE: {
      const int64_t heads = op.i[0], hd = op.i[1], n_rot = op.i[2];
      const CUdeviceptr table = s->tables.ptr + (CUdeviceptr)(br.o_rope[(size_t)op.rope] * 4);
      br.launch(br.dc->other[K_ROPE], batch_run::blocks(rows * heads * hd, 256), 1, 1, 256, 1, "rope", in0, out, table, rows, heads, hd, n_rot,
                op.i[3] == 0 ? 0 : 2);
      return AGLM_OK;
    }
    case AGLM_OP_ATTENTION: run_attention(br, i, op, rows); return AGLM_OK;
    case AGLM_OP_OUTPUT_ROWS:
      br.launch(br.dc->other[K_GATHER], batch_run::blocks((int64_t)b->n_out * w, 256), 1, 1, 256, 1, "gather_rows", in0, out,
                br.ints(br.o_out_rows), w, (int64_t)b->n_out);
      return AGLM_OK;
    case AGLM_OP_MERGE_ROWS: {
      const int64_t k = op.i[0], win = p->values[(size_t)op.in[0]].width;
      for (int32_t r = 0; r < b->n_out; r++)
        if (b->out_rows[r] + k > n) return *err = "merge_rows: an output row without its following rows", AGLM_ERR_INVALID_ARGUMENT;
      br.launch(br.dc->other[K_MERGE], batch_run::blocks((int64_t)b->n_out * win * k, 256), 1, 1, 256, 1, "merge_rows", in0, out,
                br.ints(br.o_out_rows), win, k, (int64_t)b->n_out);
      return AGLM_OK;
    }
    case AGLM_OP_EMBED_INTERP: {
      const CUdeviceptr gpos = br.o_grid >= 0 ? s->tables.ptr + (CUdeviceptr)(br.o_grid * 4) : 0;
      br.launch(br.dc->other[K_INTERP], batch_run::blocks(n * w, 256), 1, 1, 256, 1, "embed_interp", w0, gpos, out, n, w, (int64_t)op.i[0],
                (int64_t)op.i[1]);
      return AGLM_OK;
    }
    default: return *err = "op " + std::to_string(op.kind) + " is not implemented on CUDA", AGLM_ERR_BACKEND_UNAVAILABLE;
  }
}

int32_t session_run(aglm_hal_session *s, const aglm_hal_batch *b, std::string *err) {
  const aglm_hal_program *p = s->p;
  const int64_t n = b->n_tokens;
  aglm_backend::batch_outputs wants;
  const int32_t checked = aglm_backend::check_batch(b, s->n_batch, p->hidden >= 0, &wants, err);
  if (checked != AGLM_OK) return checked;
  const bool any_logits = wants.logits;
  const api &cu = get_runtime().cu;
  ctx_scope scope(cu, p->dc->ctx);
  batch_run br(s, b, cu, p->dc);
  int32_t st = upload_tables(br, err);
  bool aborted = false;
  for (size_t i = 0; st == AGLM_OK && i < p->ops.size(); i++) {
    if (b->abort && b->abort(b->abort_user) != 0) {
      aborted = true;
      break;
    }
    const aglm_hal_op &op = p->ops[i];
    if (!any_logits && !(op.flags & AGLM_OPF_FOR_HIDDEN)) continue;
    const bool out_rows = p->values[(size_t)op.out].rows == AGLM_ROWS_OUTPUTS;
    if (out_rows && b->n_out == 0) continue;
    st = run_op(br, i, op, out_rows ? b->n_out : n, err);
  }
  // Outputs: straight into the caller's rows (pageable memory: the copy is done when the call returns).
  for (int32_t r = 0; st == AGLM_OK && !aborted && br.failed == CUDA_SUCCESS && r < b->n_out; r++) {
    const bool hidden = b->out_kind[r] == AGLM_OUT_HIDDEN;
    const int v = hidden ? p->hidden : p->output;
    const int64_t w = p->values[(size_t)v].width;
    const CUresult cr = cu.MemcpyDtoHAsync(b->out[r], br.value(v) + (CUdeviceptr)(r * w * 4), (size_t)w * 4, s->stream);
    if (cr != CUDA_SUCCESS) br.failed = cr, br.failed_what = "copying the outputs";
  }
  const CUresult sync = cu.StreamSynchronize(s->stream);
  if (st != AGLM_OK) return st;
  if (br.failed != CUDA_SUCCESS) return *err = describe_error(cu, "cuLaunchKernel", br.failed) + " (" + br.failed_what + ")", AGLM_ERR_INTERNAL;
  if (sync != CUDA_SUCCESS) return *err = describe_error(cu, "cuStreamSynchronize", sync) + " (a kernel failed)", AGLM_ERR_INTERNAL;
  if (aborted) return *err = "aborted", AGLM_ERR_ABORTED;
  return AGLM_OK;
}

// ---- the HAL table ---------------------------------------------------------------------------------------------------

bool experimental() {
  const char *e = std::getenv("OPEN_AUTOGLM_CUDA_EXPERIMENTAL");
  return e && std::strcmp(e, "1") == 0;
}

int32_t cu_score(char *why, size_t len) {
  try {
    const runtime &rt = get_runtime();
    if (!rt.error.empty()) return put(why, len, rt.error), 0;
    std::string found;
    int usable = 0;
    for (const device_desc &d : rt.devices) {
      found += (found.empty() ? "" : ", ") + d.name + " (compute capability " + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) + ")";
      usable += d.cc_major * 10 + d.cc_minor >= 75;
    }
    if (!usable) return put(why, len, "found " + found + "; the CUDA kernels need compute capability 7.5 or newer"), 0;
    // Code from a CUDA X toolkit (cubins, PTX, the fatbin's compression) loads on drivers for CUDA X.0 or newer.
    if (rt.driver_version / 1000 < AGLM_CUDA_BUILD_VERSION / 1000)
      return put(why, len, "found " + found + "; the NVIDIA driver supports CUDA " + std::to_string(rt.driver_version / 1000) + "." +
                               std::to_string(rt.driver_version % 1000 / 10) + ", and the kernels were built with CUDA " +
                               std::to_string(AGLM_CUDA_BUILD_VERSION / 1000) + "." + std::to_string(AGLM_CUDA_BUILD_VERSION % 1000 / 10) +
                               ": update the driver"),
             0;
    if (!experimental())
      return put(why, len, "found " + found + "; the CUDA backend's forward pass has not been verified on a GPU yet (set OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1 to use it)"), 0;
    put(why, len, "found " + found + " (experimental: OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1)");
    return 4000;
  } catch (...) {
    put(why, len, "the CUDA runtime failed to initialise");
    return 0;
  }
}

int32_t cu_device_count() {
  try {
    return (int32_t)get_runtime().devices.size();
  } catch (...) {
    return 0;
  }
}

int32_t cu_device_info(int32_t i, aglm_hal_device_info *out) {
  try {
    const runtime &rt = get_runtime();
    if (i < 0 || i >= (int32_t)rt.devices.size() || !out) return AGLM_ERR_INVALID_ARGUMENT;
    const device_desc &d = rt.devices[(size_t)i];
    std::memset(out, 0, sizeof *out);
    put(out->name, sizeof out->name, d.name);
    char desc[256];
    std::snprintf(desc, sizeof desc, "CUDA compute capability %d.%d, %d SMs, %.0f GB/s peak", d.cc_major, d.cc_minor, d.sm_count, d.bandwidth() / 1e9);
    put(out->description, sizeof out->description, desc);
    out->kind = d.integrated ? AGLM_DEVICE_IGPU : AGLM_DEVICE_GPU;
    out->memory_total = d.memory_total;
    return AGLM_OK;
  } catch (...) {
    return AGLM_ERR_INTERNAL;
  }
}

int32_t cu_supports(int32_t device, int32_t op, int32_t type) {
  if (device < 0 || device >= cu_device_count() || op < 0 || op >= AGLM_OP_COUNT) return 0;
  if (type < 0) return 1;
  if (op == AGLM_OP_MATMUL || op == AGLM_OP_EMBED || op == AGLM_OP_EMBED_POSITIONS) return aglm_cu_type_supported(type) ? 1 : 0;
  return type == AGLM_TYPE_F32 || type == AGLM_TYPE_F16 || type == AGLM_TYPE_BF16; // vectors, converted to f32 at load
}

int32_t cu_program_create(const aglm_hal_program_desc *desc, aglm_hal_program **out, char *err, size_t len) {
  if (out) *out = nullptr;
  return guarded(err, len, "creating the CUDA program", [&] {
    std::string msg;
    const int32_t r = program_build(desc, out, &msg);
    if (r != AGLM_OK) put(err, len, msg);
    return r;
  });
}
void cu_program_free(aglm_hal_program *p) {
  if (!p) return;
  try {
    const api &cu = get_runtime().cu;
    ctx_scope scope(cu, p->dc->ctx);
    delete p; // frees the device copies of the weights in this context
  } catch (...) {
  }
}
void cu_program_describe(const aglm_hal_program *p, char *buf, size_t len) { put(buf, len, p ? p->description : "cuda"); }
uint64_t cu_program_memory(const aglm_hal_program *p) { return p ? p->bytes : 0; }

int32_t cu_session_create(aglm_hal_program *p, const aglm_hal_session_desc *desc, aglm_hal_session **out, char *err, size_t len) {
  if (out) *out = nullptr;
  return guarded(err, len, "creating the CUDA session", [&] {
    std::string msg;
    const int32_t r = session_build(p, desc, out, &msg);
    if (r != AGLM_OK) put(err, len, msg);
    return r;
  });
}
void cu_session_free(aglm_hal_session *s) {
  try {
    delete s;
  } catch (...) {
  }
}
int32_t cu_session_decode(aglm_hal_session *s, const aglm_hal_batch *b, char *err, size_t len) {
  return guarded(err, len, "running a batch on CUDA", [&] {
    std::string msg;
    const int32_t r = session_run(s, b, &msg);
    if (r != AGLM_OK) put(err, len, msg);
    return r;
  });
}
uint64_t cu_session_memory(const aglm_hal_session *s) { return s ? s->bytes : 0; }

// {"library", "error", "driverVersion", "devices": [{name, computeCapability, smCount, memoryBytes, clockKHz,
//  memoryClockKHz, busWidthBits, bandwidthGBs, l2Bytes}], "fatbinArchs", "fatbinBytes", "kernels", "experimental"}
size_t cu_report(const char *, char *buf, size_t len) {
  std::string j;
  try {
    const runtime &rt = get_runtime();
    j = "{\"library\":" + (rt.library_path.empty() ? std::string("null") : json_str(rt.library_path)) +
        ",\"error\":" + (rt.error.empty() ? std::string("null") : json_str(rt.error)) + ",\"driverVersion\":" + std::to_string(rt.driver_version) +
        ",\"devices\":[";
    for (size_t i = 0; i < rt.devices.size(); i++) {
      const device_desc &d = rt.devices[i];
      char bw[32];
      std::snprintf(bw, sizeof bw, "%.1f", d.bandwidth() / 1e9);
      j += std::string(i ? "," : "") + "{\"name\":" + json_str(d.name) + ",\"computeCapability\":\"" + std::to_string(d.cc_major) + "." +
           std::to_string(d.cc_minor) + "\",\"smCount\":" + std::to_string(d.sm_count) + ",\"memoryBytes\":" + std::to_string(d.memory_total) +
           ",\"clockKHz\":" + std::to_string(d.clock_khz) + ",\"memoryClockKHz\":" + std::to_string(d.memory_clock_khz) +
           ",\"busWidthBits\":" + std::to_string(d.bus_width_bits) + ",\"bandwidthGBs\":" + bw + ",\"l2Bytes\":" + std::to_string(d.l2_bytes) + "}";
    }
    j += std::string("],\"fatbinArchs\":") + json_str(AGLM_CUDA_ARCHS) + ",\"fatbinBytes\":" + std::to_string(aglm_cuda_fatbin_bytes) +
         ",\"kernels\":" + json_str(kernel_list()) + ",\"experimental\":" + (experimental() ? "true" : "false") + "}";
  } catch (...) {
    j = "{\"error\":\"the CUDA runtime failed to initialise\"}";
  }
  if (buf && len > 0) put(buf, len, j);
  return j.size();
}

const aglm_hal_backend kTable = {
    AGLM_HAL_API_VERSION, sizeof(aglm_hal_backend), "cuda", cu_score, cu_device_count, cu_device_info, cu_supports,
    cu_program_create, cu_program_free, cu_program_describe, cu_program_memory, cu_session_create, cu_session_free,
    cu_session_decode, cu_session_memory, cu_report,
};

} // namespace

extern "C" AGLM_HAL_EXPORT const aglm_hal_backend *aglm_backend_entry(uint32_t api_version, char *why, size_t why_len) {
  return aglm_backend::entry_for(&kTable, api_version, why, why_len);
}
