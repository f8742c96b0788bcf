// CPU sessions and batches: the KV cells and the activation arena of one context, and the forward pass of one batch,
// op by op, each op split over the session's thread pool. The abort callback is polled between ops and per task.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/cpu-state.h"
#include "backends/rope-tables.h"

namespace {

typedef int32_t status_t;

float *value_ptr(cpu_session *s, int v) { return (float *)((char *)s->arena.data() + s->offsets[v]); }

// Long ops poll per task, so an abort lands within one task's time rather than one op's.
bool aborted(const cpu_session *s) { return s->batch->abort && s->batch->abort(s->batch->abort_user) != 0; }

int64_t rope_table_floats(const aglm_hal_rope &c, int64_t n_batch) { return n_batch * c.n_rot; }

// Splits `rows` rows into tasks of at least `min_rows` and runs fn(r0, r1) over the pool.
template <typename F> void parallel_rows(cpu_session *s, int64_t rows, int64_t min_rows, F fn) {
  const int nt = s->pool->n_threads();
  const int64_t per = std::max<int64_t>(min_rows, (rows + nt * 4 - 1) / (nt * 4));
  const int64_t tasks = (rows + per - 1) / per;
  s->pool->parallel_for(tasks, [&](int64_t task, int) {
    if (!aborted(s)) fn(task * per, std::min(rows, (task + 1) * per));
  });
}

// Rows of a table (token embeddings, or learned positions) gathered by index, as f32.
void op_gather(cpu_session *s, const aglm_hal_op &op, const int32_t *index, const uint32_t *tokens, int64_t n) {
  const cpu_program *p = s->program;
  const aglm_hal_weight &w = p->weights[op.w[0]];
  const size_t row_bytes = aglm_row_bytes(w.type, w.ne[0]);
  float *out = value_ptr(s, op.out);
  const bool packed = p->wpacked[op.w[0]] != 0; // repacked for matmul as well (a tied output): read through the table
  for (int64_t t = 0; t < n; t++) {
    const int64_t r = index ? index[t] : (int64_t)tokens[t];
    if (packed) p->kernels->unpack_row(w.type, p->wdata[op.w[0]], w.ne[1], w.ne[0], r, out + t * w.ne[0]);
    else p->kernels->dequantize_row(w.type, (const char *)p->wdata[op.w[0]] + r * row_bytes, out + t * w.ne[0], w.ne[0]);
  }
}

// embed with input rows: tokens that bring one take it, the others their table row.
void op_embed(cpu_session *s, const aglm_hal_op &op, int64_t n) {
  const aglm_hal_batch *b = s->batch;
  op_gather(s, op, nullptr, b->tokens, n);
  if (!b->embd_row) return;
  const int64_t w = s->program->values[op.out].width;
  float *out = value_ptr(s, op.out);
  for (int64_t t = 0; t < n; t++)
    if (b->embd_row[t] >= 0) std::memcpy(out + t * w, b->embd + (int64_t)b->embd_row[t] * w, w * sizeof(float));
}

status_t op_input(cpu_session *s, const aglm_hal_op &op, int64_t n, std::string *err) {
  const aglm_hal_batch *b = s->batch;
  const int64_t w = s->program->values[op.out].width;
  if (!b->embd_row || b->embd_width != w) return *err = "the batch brings no input rows of the input width", AGLM_ERR_INVALID_ARGUMENT;
  float *out = value_ptr(s, op.out);
  for (int64_t t = 0; t < n; t++) {
    if (b->embd_row[t] < 0) return *err = "a token without an input row", AGLM_ERR_INVALID_ARGUMENT;
    std::memcpy(out + t * w, b->embd + (int64_t)b->embd_row[t] * w, w * sizeof(float));
  }
  return AGLM_OK;
}

// Keys' cubic convolution weight (a = -0.75), as ggml's bicubic upscale.
inline float bicubic_weight(float d) {
  const float a = -0.75f;
  d = std::fabs(d);
  if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}

// Each token's row: the grid w0 [cols x rows] of `width`-vectors sampled at its (x, y) with 4 x 4 bicubic taps clamped
// to the edge; the 4 taps along x are combined first for each of the 4 rows, then those along y (ggml's order).
void op_embed_interp(cpu_session *s, const aglm_hal_op &op, int64_t n) {
  const aglm_hal_batch *b = s->batch;
  const cpu_program *p = s->program;
  const int64_t w = p->values[op.out].width, cols = op.i[0], rows = op.i[1];
  const float *grid = (const float *)p->wdata[op.w[0]];
  float *out = value_ptr(s, op.out);
  parallel_rows(s, n, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> line((size_t)w);
    for (int64_t t = r0; t < r1; t++) {
      const float sx = b->grid_pos ? b->grid_pos[t] : 0, sy = b->grid_pos ? b->grid_pos[n + t] : 0;
      const float fx = std::floor(sx), fy = std::floor(sy);
      const float tx = sx - fx, ty = sy - fy;
      const int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      const float wx[4] = {bicubic_weight(tx + 1), bicubic_weight(tx), bicubic_weight(1 - tx), bicubic_weight(2 - tx)};
      const float wy[4] = {bicubic_weight(ty + 1), bicubic_weight(ty), bicubic_weight(1 - ty), bicubic_weight(2 - ty)};
      float *o = out + t * w;
      std::fill(o, o + w, 0.0f);
      for (int dy = 0; dy < 4; dy++) {
        const int64_t y = std::min(rows - 1, std::max<int64_t>(0, y0 - 1 + dy));
        std::fill(line.begin(), line.end(), 0.0f);
        for (int dx = 0; dx < 4; dx++) {
          const int64_t x = std::min(cols - 1, std::max<int64_t>(0, x0 - 1 + dx));
          const float *src = grid + (y * cols + x) * w;
          for (int64_t c = 0; c < w; c++) line[c] += wx[dx] * src[c];
        }
        for (int64_t c = 0; c < w; c++) o[c] += wy[dy] * line[c];
      }
    }
  });
}

status_t op_merge_rows(cpu_session *s, const aglm_hal_op &op, std::string *err) {
  const aglm_hal_batch *b = s->batch;
  const int64_t k = op.i[0], w = s->program->values[op.in[0]].width;
  const float *in = value_ptr(s, op.in[0]);
  float *out = value_ptr(s, op.out);
  for (int32_t r = 0; r < b->n_out; r++) {
    const int64_t first = b->out_rows[r];
    if (first + k > b->n_tokens) return *err = "merge_rows: an output row without its following rows", AGLM_ERR_INVALID_ARGUMENT;
    float *o = out + (int64_t)r * w * k;
    for (int64_t j = 0; j < k; j++) {
      const float *src = in + (first + j) * w;
      for (int64_t c = 0; c < w; c++) o[c * k + j] = src[c];
    }
  }
  return AGLM_OK;
}

// A matmul on the weight's kernel: a plugin's (cpu_program::wplugin) or the table's, with the activations quantized
// to the type that kernel reads.
void op_matmul(cpu_session *s, const aglm_hal_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const aglm_hal_weight &w = p->weights[op.w[0]];
  const aglm_kernels *k = p->kernels;
  aglm_registered_kernel *plugin = p->wplugin[op.w[0]];
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
  const int act = plugin ? plugin->desc->act_type : k->matmul_act_type(w.type);
  if (act != AGLM_TYPE_F32) { // Q8_0, Q8_1 or Q8_K rows, whichever the weight type pairs with
    const size_t qrow = aglm_row_bytes(act, K);
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
  if (plugin) {
    const aglm_kernel_matmul_args pa = {a.w, a.w_row_bytes, a.w_type, a.x, a.x_row_bytes, act, a.y, a.y_stride, a.n, a.k, a.m};
    plugin->calls.fetch_add(1, std::memory_order_relaxed);
    parallel_rows(s, M, 16, [&](int64_t r0, int64_t r1) { plugin->desc->matmul(&pa, r0, r1); });
  } else {
    parallel_rows(s, M, 16, [&](int64_t r0, int64_t r1) { k->matmul(&a, r0, r1); });
  }
  if (op.w[1] >= 0) {
    const float *bias = (const float *)p->wdata[op.w[1]];
    for (int64_t t = 0; t < rows; t++) k->add(a.y + t * M, bias, a.y + t * M, M);
  }
}

void op_rope(cpu_session *s, const aglm_hal_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const float *tables = s->rope_tables.as<float>();
  for (int i = 0; i < op.rope; i++) tables += rope_table_floats(p->ropes[i], s->n_batch);
  const int64_t heads = op.i[0], hd = op.i[1], n_rot = op.i[2];
  const float *in = value_ptr(s, op.in[0]);
  float *out = value_ptr(s, op.out);
  const int64_t width = heads * hd;
  for (int64_t t = 0; t < rows; t++) {
    if (out != in) std::memcpy(out + t * width, in + t * width, width * sizeof(float));
    p->kernels->rope(out + t * width, heads, hd, n_rot, tables + t * n_rot, op.i[3] == 0 ? 0 : 2); // modes 8, 24: neox pairs
  }
}

// Stores the batch's keys and values in their cells, then attends each token over the cells its sequence holds (in
// position order): causal ones up to its own position (within the sliding window), non-causal ones all of them.
void op_attention(cpu_session *s, const aglm_hal_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const aglm_hal_batch *b = s->batch;
  const int slot = op.i[0];
  const int64_t kw = p->cache[slot].k_width, vw = p->cache[slot].v_width;
  const float *k = value_ptr(s, op.in[1]), *v = value_ptr(s, op.in[2]);
  char *kc = (char *)s->k_cache[slot], *vc = (char *)s->v_cache[slot];
  for (int64_t t = 0; t < rows; t++) {
    const int64_t cell = b->cell[t];
    if (s->kv_type == AGLM_TYPE_F16) {
      aglm_quantize_row(AGLM_TYPE_F16, k + t * kw, kc + cell * kw * s->kv_elem, kw);
      aglm_quantize_row(AGLM_TYPE_F16, v + t * vw, vc + cell * vw * s->kv_elem, vw);
    } else {
      std::memcpy(kc + cell * kw * s->kv_elem, k + t * kw, kw * sizeof(float));
      std::memcpy(vc + cell * vw * s->kv_elem, v + t * vw, vw * sizeof(float));
    }
  }
  const int32_t window = op.i[4];
  for (int64_t t = 0; t < rows; t++) {
    const int32_t *list = b->kv_cells + b->kv_start[t];
    if (op.i[5]) { // non-causal: every position of the sequence
      s->rows[t] = list;
      s->n_kv[t] = b->seq_len[t];
      continue;
    }
    const int32_t first = window > 0 ? std::max(0, b->pos[t] - window + 1) : 0;
    s->rows[t] = list + first;
    s->n_kv[t] = b->pos[t] + 1 - first;
  }
  aglm_attn_args a{};
  a.q = value_ptr(s, op.in[0]);
  a.q_stride = p->values[op.in[0]].width;
  a.k = (const float *)s->k_cache[slot];
  a.v = (const float *)s->v_cache[slot];
  a.kv_type = s->kv_type;
  a.kv_stride = kw;
  a.out = value_ptr(s, op.out);
  a.out_stride = p->values[op.out].width;
  a.n_kv = s->n_kv.data();
  a.rows = s->rows.data();
  a.n_head = op.i[1];
  a.n_head_kv = op.i[2];
  a.head_dim = op.i[3];
  a.scale = op.f[0];
  float *scratch = s->scratch.as<float>();
  // One task per (token, KV head): the heads of a group share each cached row they read.
  const int64_t groups = a.n_head_kv;
  s->pool->parallel_for(rows * groups, [&](int64_t task, int thread) {
    if (aborted(s)) return;
    p->kernels->attention_group(&a, task / groups, task % groups, scratch + thread * s->scratch_per_thread);
  });
}

void op_rowwise(cpu_session *s, const aglm_hal_op &op, int64_t rows) {
  const cpu_program *p = s->program;
  const aglm_kernels *k = p->kernels;
  const int64_t w = p->values[op.out].width;
  float *out = value_ptr(s, op.out);
  const float *a = value_ptr(s, op.in[0]);
  const float *b = op.in[1] >= 0 ? value_ptr(s, op.in[1]) : nullptr;
  const float *w0 = op.w[0] >= 0 ? (const float *)p->wdata[op.w[0]] : nullptr;
  const float *w1 = op.w[1] >= 0 ? (const float *)p->wdata[op.w[1]] : nullptr;
  auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t t = r0; t < r1; t++) {
      switch (op.kind) {
        case AGLM_OP_RMS_NORM: k->rms_norm(a + t * w, w0, out + t * w, w, op.f[0]); break;
        case AGLM_OP_ADD: k->add(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_MUL: k->mul(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_SILU_MUL: k->silu_mul(a + t * w, b + t * w, out + t * w, w); break;
        case AGLM_OP_LAYER_NORM: k->layer_norm(a + t * w, w0, w1, out + t * w, w, op.f[0]); break;
        case AGLM_OP_GELU: k->gelu(a + t * w, out + t * w, w); break;
        case AGLM_OP_GELU_ERF: k->gelu_erf(a + t * w, out + t * w, w); break;
        case AGLM_OP_ADD_VECTOR: k->add(a + t * w, w0, out + t * w, w); break;
        default: break;
      }
    }
  };
  if (rows * w < 65536) run(0, rows);
  else parallel_rows(s, rows, 1, run);
}

// Per rope configuration: the (cos, sin) table of the batch's tokens (backends/rope-tables.h).
void compute_rope_tables(cpu_session *s, int64_t n) {
  float *t = s->rope_tables.as<float>();
  for (const aglm_hal_rope &c : s->program->ropes) {
    const float *ff = c.freq_factors >= 0 ? (const float *)s->program->wdata[c.freq_factors] : nullptr;
    aglm_backend::rope_table(c, n, s->batch->pos, s->batch->rope_pos, ff, t);
    t += rope_table_floats(c, s->n_batch);
  }
}

} // namespace

int32_t cpu_session_build(const cpu_program *p, const aglm_hal_session_desc *desc, std::unique_ptr<cpu_session> *out,
                          std::string *err) {
  if (desc->n_cells < 1 || desc->n_batch < 1 || desc->n_threads < 1)
    return *err = "context size, batch size and threads must be positive", AGLM_ERR_INVALID_ARGUMENT;
  if (desc->kv_type != AGLM_TYPE_F32 && desc->kv_type != AGLM_TYPE_F16)
    return *err = "the KV cache type must be F32 or F16", AGLM_ERR_INVALID_ARGUMENT;
  if (!p->kernels->attention_group) return *err = std::string("the ") + p->kernels->name + " kernels lack attention_group", AGLM_ERR_INTERNAL;
  auto s = std::make_unique<cpu_session>();
  s->program = p;
  s->n_cells = desc->n_cells;
  s->n_batch = std::min(desc->n_batch, desc->n_cells);
  s->kv_type = desc->kv_type;
  s->kv_elem = desc->kv_type == AGLM_TYPE_F16 ? 2 : 4;
  s->offsets.assign(desc->value_offsets, desc->value_offsets + p->values.size());
  uint64_t kv_elems = 0;
  int64_t max_group = 1;
  for (const aglm_hal_cache_slot &c : p->cache) kv_elems += (uint64_t)s->n_cells * (c.k_width + c.v_width);
  for (const aglm_hal_op &op : p->ops)
    if (op.kind == AGLM_OP_ATTENTION) max_group = std::max<int64_t>(max_group, op.i[1] / op.i[2]);
  s->scratch_per_thread = (int64_t)aglm_align_up(max_group * s->n_cells * sizeof(float)) / (int64_t)sizeof(float);
  uint64_t rope_floats = 0;
  for (const aglm_hal_rope &c : p->ropes) rope_floats += rope_table_floats(c, s->n_batch);
  // Quantized activation rows of the widest matmul input, over all activation types, for a whole batch.
  const uint64_t qx_bytes = (uint64_t)s->n_batch * p->max_qx_row_bytes;
  const bool ok = s->kv.allocate(kv_elems * s->kv_elem) && s->arena.allocate(desc->arena_bytes) && s->qx.allocate(qx_bytes) &&
                  s->scratch.allocate((uint64_t)desc->n_threads * s->scratch_per_thread * sizeof(float)) &&
                  s->rope_tables.allocate(rope_floats * sizeof(float));
  if (!ok) return *err = "cannot allocate the context's memory", AGLM_ERR_OUT_OF_MEMORY;
  char *at = (char *)s->kv.data();
  for (const aglm_hal_cache_slot &c : p->cache) {
    s->k_cache.push_back(at);
    at += s->n_cells * c.k_width * s->kv_elem;
    s->v_cache.push_back(at);
    at += s->n_cells * c.v_width * s->kv_elem;
  }
  s->n_kv.resize(s->n_batch);
  s->rows.resize(s->n_batch);
  s->bytes = s->kv.size() + s->arena.size() + s->qx.size() + s->scratch.size() + s->rope_tables.size();
  s->pool = std::make_unique<aglm_thread_pool>(desc->n_threads);
  *out = std::move(s);
  return AGLM_OK;
}

int32_t cpu_session_run(cpu_session *s, const aglm_hal_batch *b, std::string *err) {
  const cpu_program *p = s->program;
  const int64_t n = b->n_tokens;
  aglm_backend::batch_outputs wants;
  const status_t checked = aglm_backend::check_batch(b, s->n_batch, p->hidden >= 0, &wants, err);
  if (checked != AGLM_OK) return checked;
  const bool any_logits = wants.logits;
  s->batch = b;
  compute_rope_tables(s, n);
  for (size_t i = 0; i < p->ops.size(); i++) {
    if (aborted(s)) return *err = "aborted", AGLM_ERR_ABORTED;
    const aglm_hal_op &op = p->ops[i];
    if (!any_logits && !(op.flags & AGLM_OPF_FOR_HIDDEN)) continue; // only hidden states asked for
    const bool out_rows = p->values[op.out].rows == AGLM_ROWS_OUTPUTS;
    if (out_rows && b->n_out == 0) continue;
    const int64_t rows = out_rows ? b->n_out : n;
    switch (op.kind) {
      case AGLM_OP_EMBED: op_embed(s, op, n); break;
      case AGLM_OP_INPUT: {
        const status_t st = op_input(s, op, n, err);
        if (st != AGLM_OK) return st;
        break;
      }
      case AGLM_OP_EMBED_INTERP: op_embed_interp(s, op, n); break;
      case AGLM_OP_MERGE_ROWS: {
        const status_t st = op_merge_rows(s, op, err);
        if (st != AGLM_OK) return st;
        break;
      }
      case AGLM_OP_EMBED_POSITIONS: op_gather(s, op, b->pos, nullptr, n); break;
      case AGLM_OP_MATMUL: op_matmul(s, op, rows); break;
      case AGLM_OP_ROPE: op_rope(s, op, rows); break;
      case AGLM_OP_ATTENTION: op_attention(s, op, rows); break;
      case AGLM_OP_OUTPUT_ROWS: {
        const int64_t w = p->values[op.out].width;
        const float *in = value_ptr(s, op.in[0]);
        float *out = value_ptr(s, op.out);
        for (int32_t r = 0; r < b->n_out; r++) std::memcpy(out + r * w, in + (int64_t)b->out_rows[r] * w, w * sizeof(float));
        break;
      }
      default: op_rowwise(s, op, rows); break;
    }
  }
  if (aborted(s)) return *err = "aborted", AGLM_ERR_ABORTED;
  for (int32_t r = 0; r < b->n_out; r++) {
    const bool hidden = b->out_kind[r] == AGLM_OUT_HIDDEN;
    const int64_t w = hidden ? p->n_hidden : p->n_vocab;
    std::memcpy(b->out[r], value_ptr(s, hidden ? p->hidden : p->output) + r * w, w * sizeof(float));
  }
  return AGLM_OK;
}
