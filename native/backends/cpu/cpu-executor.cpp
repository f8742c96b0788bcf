// Runs an IR graph on the CPU: binds weights (bounds- and type-checked), plans the arena, and executes one batch
// op by op, each op split over the thread pool. The abort flag is checked between ops.
#include "backends/cpu/cpu-executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/convert.h"
#include "core/mapped-file.h"

namespace {

float *value_ptr(cpu_session *s, int v) { return (float *)((char *)s->arena.data() + s->plan.offset[v]); }

// Long ops check the abort flag per task, so an abort lands within one task's time rather than one op's.
bool aborted(const cpu_session *s) { return s->abort && s->abort->load(std::memory_order_relaxed); }

bool is_f32_vector_use(const aglm_graph &g, int w) {
  for (const aglm_op &op : g.ops) {
    if (op.kind == AGLM_OP_RMS_NORM && op.w[0] == w) return true;
    if (op.kind == AGLM_OP_MATMUL && op.w[1] == w) return true;
    if (op.kind == AGLM_OP_ROPE && op.w[0] == w) return true;
    if (op.kind == AGLM_OP_LAYER_NORM && (op.w[0] == w || op.w[1] == w)) return true;
    if (op.kind == AGLM_OP_ADD_VECTOR && op.w[0] == w) return true;
  }
  return false;
}

// Threads for load-time work: the caller's count (the cores the process may use, cgroup quota included), else every
// core the machine reports.
unsigned load_threads(const aglm_program_desc &desc) {
  return desc.n_threads > 0 ? (unsigned)desc.n_threads : std::max(1u, std::thread::hardware_concurrency());
}

// Converts the weights the planner asked for (weight.to) into owned buffers of the new type, rows split over the
// process's cores, then releases the mapped pages they came from so peak memory is not file + copy.
aglm_result convert_weights(const aglm_program_desc &desc, cpu_program *p) {
  const unsigned n_threads = load_threads(desc);
  for (size_t i = 0; i < p->graph.weights.size(); i++) {
    aglm_weight &w = p->graph.weights[i];
    if (w.to < 0 || w.to == w.type) continue;
    const int64_t k = w.ne[0], rows = w.nelements() / w.ne[0];
    const size_t dst_row = aglm_row_bytes(w.to, k);
    if (dst_row == 0) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": its rows cannot be stored as type " + std::to_string(w.to));
    aglm_aligned_buffer buf;
    if (!buf.allocate(dst_row * rows)) return aglm_result::fail(AGLM_ERR_OUT_OF_MEMORY, "out of memory converting " + w.name);
    if (!aglm_convert_rows(w.type, p->wdata[i], w.to, buf.data(), rows, k, (int)n_threads))
      return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + ": cannot convert type " + std::to_string(w.type) + " to " + std::to_string(w.to));
    aglm_mapped_release(desc.file_data, w.offset, w.nbytes);
    w.type = w.to;
    w.nbytes = dst_row * rows;
    p->wdata[i] = buf.data();
    p->owned.push_back(std::move(buf));
  }
  return aglm_result::ok();
}

// Where the kernel table has a layout of its own for a matmul weight (repack_size > 0), repacks it once, at load,
// into an owned 64-byte aligned buffer (weights spread over the machine's cores), then releases the mapped pages (or
// frees the converted copy) it came from, so peak memory is not file + copy. Only weights that nothing but matmul
// reads are repacked (a token embedding table shared with the output keeps the file layout). op_matmul passes
// p->wpacked[w] as the weight's w_packed.
aglm_result repack_weights(const aglm_program_desc &desc, cpu_program *p) {
  const aglm_graph &g = p->graph;
  const aglm_kernels *k = p->kernels;
  p->wpacked.assign(g.weights.size(), 0);
  if (!k->repack_size || !k->repack) return aglm_result::ok();
  std::vector<char> as_matmul(g.weights.size(), 0), other(g.weights.size(), 0);
  for (const aglm_op &op : g.ops)
    for (int slot = 0; slot < 2; slot++)
      if (op.w[slot] >= 0) (op.kind == AGLM_OP_MATMUL && slot == 0 ? as_matmul : other)[op.w[slot]] = 1;
  struct job {
    size_t weight, bytes;
    int owned; // index in p->owned of the converted copy it replaces, or -1 (it is in the mapping)
  };
  std::vector<job> jobs;
  for (size_t i = 0; i < g.weights.size(); i++) {
    const aglm_weight &w = g.weights[i];
    if (!as_matmul[i] || other[i]) continue;
    const size_t bytes = k->repack_size(w.type, w.nelements() / w.ne[0], w.ne[0]);
    if (bytes == 0) continue;
    int owned = -1;
    for (size_t o = 0; o < p->owned.size(); o++)
      if (p->owned[o].data() == p->wdata[i]) owned = (int)o;
    jobs.push_back({i, bytes, owned});
  }
  std::vector<aglm_aligned_buffer> bufs(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::thread> workers;
  const unsigned n_threads = std::max(1u, std::min<unsigned>(load_threads(desc), (unsigned)jobs.size()));
  for (unsigned t = 0; t < n_threads && !jobs.empty(); t++) {
    workers.emplace_back([&] {
      for (size_t j; ok.load() && (j = next.fetch_add(1)) < jobs.size();) {
        const aglm_weight &w = g.weights[jobs[j].weight];
        if (!bufs[j].allocate(jobs[j].bytes)) {
          ok = false;
          break;
        }
        k->repack(w.type, p->wdata[jobs[j].weight], bufs[j].data(), w.nelements() / w.ne[0], w.ne[0]);
        if (jobs[j].owned >= 0) p->owned[jobs[j].owned].allocate(0); // each job frees only its own copy
        else aglm_mapped_release(desc.file_data, w.offset, w.nbytes);
      }
    });
  }
  for (auto &th : workers) th.join();
  // Weights repacked before a failure point at their new copies, so the program stays consistent either way.
  for (size_t j = 0; j < jobs.size(); j++) {
    if (!bufs[j].data()) continue;
    p->wdata[jobs[j].weight] = bufs[j].data();
    p->wpacked[jobs[j].weight] = 1;
    p->owned.push_back(std::move(bufs[j]));
  }
  if (!ok) return aglm_result::fail(AGLM_ERR_OUT_OF_MEMORY, "out of memory repacking the weights");
  return aglm_result::ok();
}

aglm_result bind_weights(const aglm_program_desc &desc, cpu_program *p) {
  const aglm_graph &g = p->graph;
  p->wdata.assign(g.weights.size(), nullptr);
  for (size_t i = 0; i < g.weights.size(); i++) {
    const aglm_weight &w = g.weights[i];
    size_t bs = aglm_type_block_size(w.type);
    if (bs == 0) return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + " has unknown type " + std::to_string(w.type));
    if (w.ne[0] % (int64_t)bs) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": row length is not a multiple of its block size");
    uint64_t expect = (uint64_t)aglm_row_bytes(w.type, w.ne[0]) * (uint64_t)(w.ne[1] * w.ne[2] * w.ne[3]);
    if (w.nbytes != expect) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": byte size disagrees with its shape");
    if (w.offset > desc.file_size || w.nbytes > desc.file_size - w.offset)
      return aglm_result::fail(AGLM_ERR_GGUF_TENSOR_OUT_OF_BOUNDS, "tensor " + w.name + " lies outside the file");
    p->wdata[i] = desc.file_data + w.offset;
  }
  aglm_result r = convert_weights(desc, p);
  if (!r.is_ok()) return r;
  // Norm and bias vectors are read as f32; convert any stored in another type once, at load.
  for (size_t i = 0; i < g.weights.size(); i++) {
    const aglm_weight &w = g.weights[i];
    if (!is_f32_vector_use(g, (int)i) || w.type == AGLM_TYPE_F32) continue;
    aglm_aligned_buffer buf;
    if (!buf.allocate(w.nelements() * sizeof(float))) return aglm_result::fail(AGLM_ERR_OUT_OF_MEMORY, "out of memory");
    if (!aglm_dequantize_row(w.type, p->wdata[i], buf.as<float>(), w.nelements()))
      return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + ": cannot convert its type to f32");
    p->wdata[i] = buf.data();
    p->owned.push_back(std::move(buf));
  }
  return repack_weights(desc, p);
}

aglm_result check_types(cpu_program *p) {
  const aglm_graph &g = p->graph;
  for (const aglm_op &op : g.ops) {
    if (op.kind == AGLM_OP_MATMUL) {
      const aglm_weight &w = g.weights[op.w[0]];
      const int act = p->kernels->matmul_act_type(w.type);
      if (act < 0)
        return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE,
                                 "tensor " + w.name + " has type " + std::to_string(w.type) + ", which this build cannot multiply yet");
      if (act != AGLM_TYPE_F32) {
        // Activations are quantized to `act` (Q8_0, Q8_1 or Q8_K) per matmul: a table without quantize_row_act can
        // only produce Q8_0.
        const size_t qrow = aglm_row_bytes(act, w.ne[0]);
        if ((act != AGLM_TYPE_Q8_0 && !p->kernels->quantize_row_act) || qrow == 0)
          return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE,
                                   "tensor " + w.name + ": the " + p->kernels->name + " kernels cannot quantize its activations (type " + std::to_string(act) + ")");
        p->max_qx_row_bytes = std::max<uint64_t>(p->max_qx_row_bytes, qrow);
      }
    }
    if (op.kind == AGLM_OP_EMBED || op.kind == AGLM_OP_EMBED_POSITIONS) {
      const aglm_weight &w = g.weights[op.w[0]];
      if (p->kernels->matmul_act_type(w.type) < 0)
        return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + " has a type this build cannot read yet");
    }
  }
  return aglm_result::ok();
}

void collect_ropes(cpu_program *p) {
  p->op_rope.assign(p->graph.ops.size(), -1);
  for (size_t i = 0; i < p->graph.ops.size(); i++) {
    const aglm_op &op = p->graph.ops[i];
    if (op.kind != AGLM_OP_ROPE) continue;
    cpu_rope_config c;
    c.n_rot = op.i[2];
    c.n_ctx_orig = op.i[4];
    c.freq_base = op.f[0];
    c.freq_scale = op.f[1];
    c.ext_factor = op.f[2];
    c.attn_factor = op.f[3] == 0 ? 1.0f : op.f[3];
    c.beta_fast = op.f[4];
    c.beta_slow = op.f[5];
    c.freq_factors = op.w[0];
    size_t j = 0;
    for (; j < p->ropes.size(); j++)
      if (p->ropes[j] == c) break;
    if (j == p->ropes.size()) p->ropes.push_back(c);
    p->op_rope[i] = (int)j;
  }
}

int64_t rope_table_floats(const cpu_rope_config &c, int64_t n_batch) { return n_batch * c.n_rot; }

// The ops the hidden value depends on (walking the graph backwards from it), so a batch asking for hidden states
// skips the output projection and anything else only the logits need.
void mark_hidden_ops(cpu_program *p) {
  const aglm_graph &g = p->graph;
  p->op_for_hidden.assign(g.ops.size(), 0);
  if (g.hidden < 0) return;
  p->n_hidden = g.values[g.hidden].width;
  std::vector<char> needed(g.values.size(), 0);
  needed[g.hidden] = 1;
  for (size_t i = g.ops.size(); i-- > 0;) {
    const aglm_op &op = g.ops[i];
    if (!needed[op.out]) continue;
    p->op_for_hidden[i] = 1;
    for (int in : op.in)
      if (in >= 0) needed[in] = 1;
  }
}

// ---- ops -------------------------------------------------------------------------------------------------

// Splits `rows` rows into tasks of at least `min_rows` and runs fn(r0, r1) over the pool.
template <typename F> void parallel_rows(cpu_session *s, int64_t rows, int64_t min_rows, F fn) {
  int nt = s->pool->n_threads();
  int64_t per = std::max<int64_t>(min_rows, (rows + nt * 4 - 1) / (nt * 4));
  int64_t tasks = (rows + per - 1) / per;
  s->pool->parallel_for(tasks, [&](int64_t task, int) {
    if (!aborted(s)) fn(task * per, std::min(rows, (task + 1) * per));
  });
}

void op_embed(cpu_session *s, const aglm_op &op, const uint32_t *tokens, int64_t n) {
  const cpu_program *p = s->program;
  const aglm_weight &w = p->graph.weights[op.w[0]];
  size_t row_bytes = aglm_row_bytes(w.type, w.ne[0]);
  float *out = value_ptr(s, op.out);
  for (int64_t t = 0; t < n; t++)
    p->kernels->dequantize_row(w.type, (const char *)p->wdata[op.w[0]] + tokens[t] * row_bytes, out + t * w.ne[0], w.ne[0]);
}

// Learned absolute position embeddings: row pos[t] of the table (cpu_session_decode checked the positions).
void op_embed_positions(cpu_session *s, const aglm_op &op, int64_t n) {
  const cpu_program *p = s->program;
  const aglm_weight &w = p->graph.weights[op.w[0]];
  size_t row_bytes = aglm_row_bytes(w.type, w.ne[0]);
  float *out = value_ptr(s, op.out);
  for (int64_t t = 0; t < n; t++)
    p->kernels->dequantize_row(w.type, (const char *)p->wdata[op.w[0]] + s->pos[t] * row_bytes, out + t * w.ne[0], w.ne[0]);
}

void op_matmul(cpu_session *s, const aglm_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const aglm_weight &w = p->graph.weights[op.w[0]];
  const aglm_kernels *k = p->kernels;
  const int64_t K = w.ne[0], M = w.ne[1];
  const float *x = value_ptr(s, op.in[0]);
  aglm_matmul_args a{};
  a.w = p->wdata[op.w[0]];
  a.w_row_bytes = aglm_row_bytes(w.type, K);
  a.w_type = w.type;
  a.w_packed = p->wpacked[op.w[0]];
  a.y = value_ptr(s, op.out);
  a.y_stride = M;
  a.n = rows;
  a.k = K;
  a.m = M;
  const int act = k->matmul_act_type(w.type);
  if (act != AGLM_TYPE_F32) { // Q8_0, Q8_1 or Q8_K rows, whichever the weight type pairs with (check_types)
    size_t qrow = aglm_row_bytes(act, K);
    char *q = (char *)s->qx.data();
    parallel_rows(s, rows, 4, [&](int64_t r0, int64_t r1) {
      for (int64_t t = r0; t < r1; t++) {
        if (act == AGLM_TYPE_Q8_0) k->quantize_row_q8_0(x + t * K, q + t * qrow, K);
        else k->quantize_row_act(act, x + t * K, q + t * qrow, K);
      }
    });
    a.x = q;
    a.x_row_bytes = qrow;
  } else {
    a.x = x;
    a.x_row_bytes = K * sizeof(float);
  }
  parallel_rows(s, M, 16, [&](int64_t r0, int64_t r1) { k->matmul(&a, r0, r1); });
  if (op.w[1] >= 0) {
    const float *bias = (const float *)p->wdata[op.w[1]];
    for (int64_t t = 0; t < rows; t++) k->add(a.y + t * M, bias, a.y + t * M, M);
  }
}

void op_rope(cpu_session *s, const aglm_op &op, int rope_index, int64_t rows) {
  const cpu_program *p = s->program;
  const float *tables = s->rope_tables.as<float>();
  for (int i = 0; i < rope_index; i++) tables += rope_table_floats(p->ropes[i], s->n_batch);
  const int64_t heads = op.i[0], hd = op.i[1], n_rot = op.i[2];
  const float *in = value_ptr(s, op.in[0]);
  float *out = value_ptr(s, op.out);
  const int64_t width = heads * hd;
  for (int64_t t = 0; t < rows; t++) {
    if (out != in) std::memcpy(out + t * width, in + t * width, width * sizeof(float));
    p->kernels->rope(out + t * width, heads, hd, n_rot, tables + t * n_rot, op.i[3]);
  }
}

void op_attention(cpu_session *s, const aglm_op &op, int64_t rows, const aglm_batch &b) {
  const cpu_program *p = s->program;
  const int slot = op.i[0];
  const int64_t kw = p->graph.cache[slot].k_width, vw = p->graph.cache[slot].v_width;
  const float *k = value_ptr(s, op.in[1]), *v = value_ptr(s, op.in[2]);
  char *kc = (char *)s->k_cache[slot], *vc = (char *)s->v_cache[slot];
  for (int64_t t = 0; t < rows; t++) {
    if (s->kv_type == AGLM_TYPE_F16) {
      aglm_quantize_row(AGLM_TYPE_F16, k + t * kw, kc + s->pos[t] * kw * s->kv_elem, kw);
      aglm_quantize_row(AGLM_TYPE_F16, v + t * vw, vc + s->pos[t] * vw * s->kv_elem, vw);
    } else {
      std::memcpy(kc + s->pos[t] * kw * s->kv_elem, k + t * kw, kw * sizeof(float));
      std::memcpy(vc + s->pos[t] * vw * s->kv_elem, v + t * vw, vw * sizeof(float));
    }
  }
  aglm_attn_args a{};
  a.q = value_ptr(s, op.in[0]);
  a.q_stride = p->graph.values[op.in[0]].width;
  a.k = (const float *)s->k_cache[slot];
  a.v = (const float *)s->v_cache[slot];
  a.kv_type = s->kv_type;
  a.kv_stride = kw;
  a.out = value_ptr(s, op.out);
  a.out_stride = p->graph.values[op.out].width;
  a.n_kv = op.i[5] ? s->n_kv_all.data() : s->n_kv.data(); // non-causal: every position up to the batch's last
  a.n_head = op.i[1];
  a.n_head_kv = op.i[2];
  a.head_dim = op.i[3];
  a.scale = op.f[0];
  float *scratch = s->scratch.as<float>();
  // One task per (token, KV head): the heads of a group share each cached row they read.
  const int64_t groups = a.n_head_kv;
  const int32_t window = op.i[4];
  s->pool->parallel_for(rows * groups, [&](int64_t task, int thread) {
    if (aborted(s)) return;
    const int64_t t = task / groups, g = task % groups;
    float *scr = scratch + thread * s->scratch_per_thread;
    const int32_t first = window > 0 ? std::max(0, s->pos[t] - window + 1) : 0;
    if (first == 0) {
      p->kernels->attention_group(&a, t, g, scr);
      return;
    }
    // Sliding window: the same kernel over the cache rows [first, n_kv), as a one-token call.
    aglm_attn_args w = a;
    const int32_t n_kv = a.n_kv[t] - first;
    w.q = a.q + t * a.q_stride;
    w.out = a.out + t * a.out_stride;
    w.k = (const float *)((const char *)a.k + first * a.kv_stride * s->kv_elem);
    w.v = (const float *)((const char *)a.v + first * a.kv_stride * s->kv_elem);
    w.n_kv = &n_kv;
    p->kernels->attention_group(&w, 0, g, scr);
  });
}

void op_rowwise(cpu_session *s, const aglm_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const aglm_kernels *k = p->kernels;
  const int64_t w = p->graph.values[op.out].width;
  float *out = value_ptr(s, op.out);
  const float *a = value_ptr(s, op.in[0]);
  const float *b = op.in[1] >= 0 ? value_ptr(s, op.in[1]) : nullptr;
  auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t t = r0; t < r1; t++) {
      switch (op.kind) {
        case AGLM_OP_RMS_NORM: k->rms_norm(a + t * w, (const float *)p->wdata[op.w[0]], out + t * w, w, op.f[0]); break;
        case AGLM_OP_ADD: k->add(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_MUL: k->mul(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_SILU_MUL: k->silu_mul(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_LAYER_NORM:
          k->layer_norm(a + t * w, (const float *)p->wdata[op.w[0]], op.w[1] >= 0 ? (const float *)p->wdata[op.w[1]] : nullptr,
                        out + t * w, w, op.f[0]);
          break;
        case AGLM_OP_GELU: k->gelu(a + t * w, out + t * w, w); break;
        case AGLM_OP_ADD_VECTOR: k->add(a + t * w, (const float *)p->wdata[op.w[0]], out + t * w, w); break;
        default: break;
      }
    }
  };
  if (rows * w < 65536) run(0, rows);
  else parallel_rows(s, rows, 1, run);
}

// YaRN's correction range (ggml's ggml_rope_yarn_corr_dims, in float as there): the rotary dimensions from which on
// frequencies are interpolated rather than extrapolated.
void yarn_corr_dims(const cpu_rope_config &c, float dims[2]) {
  const float pi = 3.14159265358979323846f;
  auto corr_dim = [&](float n_rot_beta) {
    return (float)c.n_rot * logf((float)c.n_ctx_orig / (n_rot_beta * 2 * pi)) / (2 * logf(c.freq_base));
  };
  dims[0] = std::max(0.0f, floorf(corr_dim(c.beta_fast)));
  dims[1] = std::min((float)(c.n_rot - 1), ceilf(corr_dim(c.beta_slow)));
}

// Per rope configuration and batch token: the (cos, sin) of each rotary pair j. theta = position * base^(-2j/n_rot)
// / freq_factor[j], times freq_scale (linear scaling); with YaRN (ext_factor != 0) blended towards the unscaled
// angle for the fast dimensions and cos/sin scaled by attn_factor * (1 + 0.1 ln(1/freq_scale)), as ggml's rope_yarn.
void compute_rope_tables(cpu_session *s, int64_t n) {
  float *t = s->rope_tables.as<float>();
  for (const cpu_rope_config &c : s->program->ropes) {
    const float *ff = c.freq_factors >= 0 ? (const float *)s->program->wdata[c.freq_factors] : nullptr;
    float corr[2] = {0, 0};
    if (c.ext_factor != 0) yarn_corr_dims(c, corr);
    const double mscale = c.ext_factor != 0 ? c.attn_factor * (1.0 + 0.1 * std::log(1.0 / c.freq_scale)) : c.attn_factor;
    for (int64_t i = 0; i < n; i++) {
      for (int j = 0; j < c.n_rot / 2; j++) {
        double extrap = (double)s->pos[i] * std::pow((double)c.freq_base, -2.0 * j / c.n_rot);
        if (ff) extrap /= ff[j];
        double theta = extrap * c.freq_scale;
        if (c.ext_factor != 0) {
          const double y = (j - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
          const double mix = (1 - std::min(1.0, std::max(0.0, y))) * c.ext_factor;
          theta = theta * (1 - mix) + extrap * mix;
        }
        t[i * c.n_rot + 2 * j] = (float)(std::cos(theta) * mscale);
        t[i * c.n_rot + 2 * j + 1] = (float)(std::sin(theta) * mscale);
      }
    }
    t += rope_table_floats(c, s->n_batch);
  }
}

} // namespace

aglm_result cpu_program_create(const aglm_program_desc &desc, const aglm_kernels *kernels, std::string description,
                               std::unique_ptr<cpu_program> *out) {
  auto p = std::make_unique<cpu_program>();
  p->graph = *desc.graph;
  p->kernels = kernels;
  p->description = std::move(description);
  aglm_result r = bind_weights(desc, p.get());
  if (!r.is_ok()) return r;
  r = check_types(p.get());
  if (!r.is_ok()) return r;
  collect_ropes(p.get());
  mark_hidden_ops(p.get());
  p->n_vocab = p->graph.values[p->graph.output].width;
  *out = std::move(p);
  return aglm_result::ok();
}

aglm_result cpu_session_create(const cpu_program *p, const aglm_session_desc &desc, std::unique_ptr<cpu_session> *out) {
  if (desc.n_ctx < 1 || desc.n_batch < 1 || desc.n_threads < 1)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "context size, batch size and threads must be positive");
  auto s = std::make_unique<cpu_session>();
  s->program = p;
  s->n_ctx = desc.n_ctx;
  s->n_batch = std::min(desc.n_batch, desc.n_ctx);
  const aglm_graph &g = p->graph;
  if (desc.kv_type != AGLM_TYPE_F32 && desc.kv_type != AGLM_TYPE_F16)
    return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "the KV cache type must be F32 or F16");
  if (!p->kernels->attention_group)
    return aglm_result::fail(AGLM_ERR_INTERNAL, std::string("the ") + p->kernels->name + " kernels lack attention_group");
  s->kv_type = desc.kv_type;
  s->kv_elem = desc.kv_type == AGLM_TYPE_F16 ? 2 : 4;
  uint64_t kv_elems = 0;
  int64_t max_group = 1;
  for (const aglm_cache_slot &c : g.cache) kv_elems += (uint64_t)s->n_ctx * (c.k_width + c.v_width);
  for (const aglm_op &op : g.ops)
    if (op.kind == AGLM_OP_ATTENTION) max_group = std::max<int64_t>(max_group, op.i[1] / op.i[2]);
  s->scratch_per_thread = (int64_t)aglm_align_up(max_group * s->n_ctx * sizeof(float)) / (int64_t)sizeof(float);
  s->plan = aglm_plan_arena(g, s->n_batch);
  uint64_t rope_floats = 0;
  for (const cpu_rope_config &c : p->ropes) rope_floats += rope_table_floats(c, s->n_batch);
  // Quantized activation rows of the widest matmul input, over all activation types (check_types), for a whole batch.
  uint64_t qx_bytes = (uint64_t)s->n_batch * p->max_qx_row_bytes;
  bool ok = s->kv.allocate(kv_elems * s->kv_elem) && s->arena.allocate(s->plan.size) &&
            s->qx.allocate(qx_bytes) &&
            s->scratch.allocate((uint64_t)desc.n_threads * s->scratch_per_thread * sizeof(float)) &&
            s->rope_tables.allocate(rope_floats * sizeof(float));
  if (!ok) return aglm_result::fail(AGLM_ERR_OUT_OF_MEMORY, "cannot allocate the context's memory");
  char *at = (char *)s->kv.data();
  for (const aglm_cache_slot &c : g.cache) {
    s->k_cache.push_back(at);
    at += s->n_ctx * c.k_width * s->kv_elem;
    s->v_cache.push_back(at);
    at += s->n_ctx * c.v_width * s->kv_elem;
  }
  s->pos.resize(s->n_batch);
  s->n_kv.resize(s->n_batch);
  s->n_kv_all.resize(s->n_batch);
  s->bytes = s->kv.size() + s->arena.size() + s->qx.size() + s->scratch.size() + s->rope_tables.size();
  s->pool = std::make_unique<aglm_thread_pool>(desc.n_threads);
  *out = std::move(s);
  return aglm_result::ok();
}

aglm_result cpu_session_decode(cpu_session *s, const aglm_batch &b) {
  const cpu_program *p = s->program;
  const aglm_graph &g = p->graph;
  const int64_t n = b.n_tokens;
  if (n < 1 || n > s->n_batch) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "batch size out of range");
  if (b.n_past < 0 || b.n_past + n > s->n_ctx) return aglm_result::fail(AGLM_ERR_CONTEXT_FULL, "the batch does not fit in the context");
  if (b.n_out != 0 && b.n_out != 1 && b.n_out != n) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "n_out must be 0, 1 or n_tokens");
  const bool hidden = b.out_kind == AGLM_OUT_HIDDEN;
  if (b.out_kind != AGLM_OUT_LOGITS && !hidden) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "unknown output kind");
  if (hidden && g.hidden < 0) return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "this model's graph has no hidden-state output");
  for (const aglm_op &op : g.ops) {
    if (op.kind != AGLM_OP_EMBED) continue;
    const int64_t vocab = g.weights[op.w[0]].ne[1];
    for (int64_t t = 0; t < n; t++)
      if ((int64_t)b.tokens[t] >= vocab)
        return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "token id " + std::to_string(b.tokens[t]) + " is outside the vocabulary (" + std::to_string(vocab) + ")");
  }
  for (const aglm_op &op : g.ops) {
    if (op.kind == AGLM_OP_ATTENTION && op.i[5] && b.n_past != 0)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "a model with non-causal attention evaluates each sequence in one batch from an empty context (the batch size must hold all its tokens)");
    if (op.kind == AGLM_OP_EMBED_POSITIONS && b.n_past + n > g.weights[op.w[0]].ne[1])
      return aglm_result::fail(AGLM_ERR_CONTEXT_FULL, "positions up to " + std::to_string(b.n_past + n) + " exceed the model's " + std::to_string(g.weights[op.w[0]].ne[1]) + " position embeddings");
  }
  for (int64_t t = 0; t < n; t++) {
    s->pos[t] = (int32_t)(b.n_past + t);
    s->n_kv[t] = s->pos[t] + 1;
    s->n_kv_all[t] = (int32_t)(b.n_past + n);
  }
  compute_rope_tables(s, n);
  s->abort = b.abort;
  for (size_t i = 0; i < g.ops.size(); i++) {
    if (aborted(s)) return aglm_result::fail(AGLM_ERR_ABORTED, "aborted");
    const aglm_op &op = g.ops[i];
    if (hidden && !p->op_for_hidden[i]) continue;
    const bool out_rows = g.values[op.out].rows == AGLM_ROWS_OUTPUTS;
    if (out_rows && b.n_out == 0) continue;
    const int64_t rows = out_rows ? b.n_out : n;
    switch (op.kind) {
      case AGLM_OP_EMBED: op_embed(s, op, b.tokens, n); break;
      case AGLM_OP_EMBED_POSITIONS: op_embed_positions(s, op, n); break;
      case AGLM_OP_MATMUL: op_matmul(s, op, rows); break;
      case AGLM_OP_ROPE: op_rope(s, op, p->op_rope[i], rows); break;
      case AGLM_OP_ATTENTION: op_attention(s, op, rows, b); break;
      case AGLM_OP_OUTPUT_ROWS: {
        const int64_t w = g.values[op.out].width;
        std::memcpy(value_ptr(s, op.out), value_ptr(s, op.in[0]) + (n - b.n_out) * w, b.n_out * w * sizeof(float));
        break;
      }
      default: op_rowwise(s, op, rows); break;
    }
  }
  if (aborted(s)) return aglm_result::fail(AGLM_ERR_ABORTED, "aborted");
  if (b.n_out > 0) {
    if (hidden) std::memcpy(b.logits, value_ptr(s, g.hidden), b.n_out * p->n_hidden * sizeof(float));
    else std::memcpy(b.logits, value_ptr(s, g.output), b.n_out * p->n_vocab * sizeof(float));
  }
  return aglm_result::ok();
}
