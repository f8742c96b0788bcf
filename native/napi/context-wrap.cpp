// `Context` for JS: the KV cell pool's sequences (create, fork, truncate, free) and steps. A step evaluates the tokens
// of several sequences in one forward pass on a worker thread; the JS output buffers stay referenced until it is done,
// and only plain data crosses to the worker. A failed step is rolled back on the JS thread before its promise settles.
#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "common.h"
#include "core/engine.h"

namespace {

class step_worker : public aglm_promise_worker {
 public:
  step_worker(Napi::Env env, std::shared_ptr<aglm_context_core> ctx, aglm_step step, std::vector<Napi::Value> buffers)
      : aglm_promise_worker(env, "aglm.step"), ctx_(std::move(ctx)), step_(std::move(step)) {
    for (Napi::Value &b : buffers) refs_.push_back(Napi::Persistent(b.As<Napi::Object>()));
  }
  void Execute() override { result_ = aglm_context_run_step(ctx_.get(), step_); }
  void finished() override {
    if (!result_.is_ok()) aglm_step_rollback(ctx_->pool, step_);
    ctx_->stepping.store(false);
  }

 private:
  std::shared_ptr<aglm_context_core> ctx_;
  aglm_step step_;
  std::vector<Napi::ObjectReference> refs_;
};

bool read_int(Napi::Object o, const char *key, double lo, double hi, int64_t *out) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) return false;
  *out = (int64_t)d;
  return true;
}

class context_wrap : public Napi::ObjectWrap<context_wrap> {
 public:
  context_wrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<context_wrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      aglm_throw(info.Env(), AGLM_ERR_INVALID_ARGUMENT, "Context cannot be constructed directly; use model.createContext()");
      return;
    }
    ctx_ = *info[0].As<Napi::External<std::shared_ptr<aglm_context_core>>>().Data();
  }

  // createSequence(): a new empty sequence's id.
  Napi::Value create_sequence(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    int32_t id = -1;
    aglm_result r = ctx_->pool.seq_create(&id);
    if (!r.is_ok()) return aglm_throw(env, r.status, r.message);
    return Napi::Number::New(env, id);
  }

  // forkSequence(src, n): a new sequence sharing the first n cells of src.
  Napi::Value fork_sequence(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    int32_t src;
    int64_t n;
    if (!usable(info, 2, &src, &n)) return env.Undefined();
    int32_t id = -1;
    aglm_result r = ctx_->pool.seq_fork(src, n, &id);
    if (!r.is_ok()) return aglm_throw(env, r.status, r.message);
    return Napi::Number::New(env, id);
  }

  // truncateSequence(id, n): keep its first n positions.
  Napi::Value truncate_sequence(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    int32_t id;
    int64_t n;
    if (!usable(info, 2, &id, &n)) return env.Undefined();
    aglm_result r = ctx_->pool.seq_truncate(id, n);
    if (!r.is_ok()) return aglm_throw(env, r.status, r.message);
    return env.Undefined();
  }

  // freeSequence(id): its cells return to the pool at once (those no fork still holds).
  Napi::Value free_sequence(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    int32_t id;
    if (!usable(info, 1, &id, nullptr)) return env.Undefined();
    ctx_->pool.seq_free(id);
    return env.Undefined();
  }

  Napi::Value sequence_length(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    int32_t id;
    if (!usable(info, 1, &id, nullptr)) return env.Undefined();
    const std::vector<int32_t> *cells = ctx_->pool.seq_cells(id);
    if (!cells) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "no such sequence");
    return Napi::Number::New(env, (double)cells->size());
  }

  // step(parts: {seq, tokens: Uint32Array, offset, count, out: 0|1|2, kind: 0|1, buffer: Float32Array|null, row}[])
  // -> Promise<void>. A part that cannot be taken throws synchronously with .part set to its index.
  Napi::Value step(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    if (ctx_->stepping.load()) return aglm_throw(env, AGLM_ERR_BUSY, "the context is already running a step");
    if (info.Length() < 1 || !info[0].IsArray()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "step(parts)");
    Napi::Array arr = info[0].As<Napi::Array>();
    const aglm_model_core &m = *ctx_->model;
    aglm_step_limits lim{ctx_->n_batch, {m.n_vocab, m.n_hidden}};
    std::vector<aglm_step_part> parts(arr.Length());
    std::vector<Napi::Value> buffers;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value pv = arr.Get(i);
      if (!pv.IsObject()) return part_error(env, i, "a step part must be an object");
      Napi::Object o = pv.As<Napi::Object>();
      aglm_step_part &part = parts[i];
      int64_t seq, offset, count, mode, kind = 0, row = 0;
      if (!read_int(o, "seq", 0, 2147483647.0, &seq) || !read_int(o, "offset", 0, 4294967295.0, &offset) ||
          !read_int(o, "count", 1, (double)ctx_->n_batch, &count) || !read_int(o, "out", 0, 3, &mode) ||
          (mode != 0 && (!read_int(o, "kind", 0, 1, &kind) || !read_int(o, "row", 0, 4294967295.0, &row))))
        return part_error(env, i, "a step part has a field of the wrong type or range");
      uint32_t *tok;
      size_t len;
      if (!aglm_typed_array(env, o.Get("tokens"), napi_uint32_array, 0, "tokens", &tok, &len)) return env.Undefined();
      if ((size_t)(offset + count) > len) return part_error(env, i, "a step part's tokens lie outside its array");
      part.seq = (int32_t)seq;
      part.tokens.assign(tok + offset, tok + offset + count);
      // Optional input rows (embdRows: per token of `tokens`, -1 or a row of embd), rope positions (4 per token) and
      // grid coordinates (2 per token), all indexed like `tokens`.
      Napi::Value er = o.Get("embdRows");
      if (!er.IsUndefined() && !er.IsNull()) {
        int32_t *rows_idx;
        size_t rlen, elen;
        float *embd;
        if (!aglm_typed_array(env, er, napi_int32_array, 0, "embdRows", &rows_idx, &rlen)) return env.Undefined();
        if (rlen != len) return part_error(env, i, "embdRows must have one entry per token");
        if (!aglm_typed_array(env, o.Get("embd"), napi_float32_array, 0, "embd", &embd, &elen)) return env.Undefined();
        const int64_t width = ctx_->model->analysis.input_width;
        if (width == 0) return part_error(env, i, "this model takes no input rows");
        int32_t lo = INT32_MAX, hi = -1;
        for (int64_t t = offset; t < offset + count; t++)
          if (rows_idx[t] >= 0) lo = std::min(lo, rows_idx[t]), hi = std::max(hi, rows_idx[t]);
        if (hi >= 0) {
          if ((size_t)(hi + 1) * (size_t)width > elen) return part_error(env, i, "embdRows point past the rows of embd");
          part.embd.assign(embd + (size_t)lo * width, embd + (size_t)(hi + 1) * width);
          part.embd_row.resize((size_t)count);
          for (int64_t t = 0; t < count; t++) part.embd_row[(size_t)t] = rows_idx[offset + t] >= 0 ? rows_idx[offset + t] - lo : -1;
        }
      }
      Napi::Value rp = o.Get("ropePos");
      if (!rp.IsUndefined() && !rp.IsNull()) {
        int32_t *p4;
        size_t plen;
        if (!aglm_typed_array(env, rp, napi_int32_array, 0, "ropePos", &p4, &plen)) return env.Undefined();
        if (plen != 4 * len) return part_error(env, i, "ropePos must have four entries per token");
        part.rope_pos.assign(p4 + 4 * offset, p4 + 4 * (offset + count));
      }
      Napi::Value gp = o.Get("gridPos");
      if (!gp.IsUndefined() && !gp.IsNull()) {
        float *g2;
        size_t glen;
        if (!aglm_typed_array(env, gp, napi_float32_array, 0, "gridPos", &g2, &glen)) return env.Undefined();
        if (glen != 2 * len) return part_error(env, i, "gridPos must have two entries per token");
        part.grid_pos.assign(g2 + 2 * offset, g2 + 2 * (offset + count));
      }
      part.out_mode = (int)mode;
      part.out_kind = (int)kind;
      if (mode != 0) {
        const int64_t width = kind == AGLM_OUT_HIDDEN ? m.n_hidden : m.n_vocab;
        if (width == 0) return part_error(env, i, kind == AGLM_OUT_HIDDEN ? "this model has no hidden-state output" : "this model has no logits");
        const int64_t merge = std::max<int32_t>(1, ctx_->model->analysis.merge);
        const size_t need = (size_t)(row + (mode == 2 ? count : mode == 3 ? count / merge : 1)) * (size_t)width;
        float *out;
        Napi::Value buf = o.Get("buffer");
        if (!aglm_typed_array(env, buf, napi_float32_array, need, "output buffer", &out, &len)) return env.Undefined();
        part.out = out;
        part.out_row0 = row;
        buffers.push_back(buf);
      }
    }
    aglm_step built;
    aglm_result r = aglm_step_build(ctx_->pool, ctx_->model->analysis, lim, std::move(parts), &built);
    if (!r.is_ok()) {
      Napi::Error e = aglm_error(env, r.status, r.message);
      if (built.failed_part >= 0) e.Value().Set("part", Napi::Number::New(env, built.failed_part));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ctx_->abort.store(false);
    ctx_->stepping.store(true);
    return (new step_worker(env, ctx_, std::move(built), std::move(buffers)))->queue();
  }

  // abortStep(): the running step stops at its next op (or task) and rejects with ABORTED; it is rolled back.
  Napi::Value abort_step(const Napi::CallbackInfo &info) {
    if (ctx_ && ctx_->stepping.load()) ctx_->abort.store(true);
    return info.Env().Undefined();
  }

  Napi::Value info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("nCells", Napi::Number::New(env, (double)ctx_->n_cells));
    o.Set("nBatch", Napi::Number::New(env, (double)ctx_->n_batch));
    o.Set("cellsUsed", Napi::Number::New(env, (double)ctx_->pool.cells_used()));
    o.Set("sequences", Napi::Number::New(env, ctx_->pool.n_sequences()));
    o.Set("maxSequences", Napi::Number::New(env, ctx_->pool.max_sequences()));
    o.Set("stepping", Napi::Boolean::New(env, ctx_->stepping.load()));
    o.Set("memoryBytes", Napi::Number::New(env, (double)ctx_->memory_bytes()));
    return o;
  }

  Napi::Value dispose(const Napi::CallbackInfo &info) {
    if (ctx_) {
      if (ctx_->stepping.load()) ctx_->abort.store(true); // a step in flight stops at its next op, then frees the memory
      ctx_.reset();
    }
    return info.Env().Undefined();
  }

 private:
  std::shared_ptr<aglm_context_core> ctx_;

  // Checks the context is alive and reads (id[, n]) integer arguments.
  bool usable(const Napi::CallbackInfo &info, size_t n_args, int32_t *id, int64_t *n) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed"), false;
    for (size_t i = 0; i < n_args; i++) {
      const double d = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int64_t)d)
        return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "sequence id and length must be non-negative integers"), false;
      if (i == 0) *id = (int32_t)d;
      else *n = (int64_t)d;
    }
    return true;
  }

  Napi::Value part_error(Napi::Env env, uint32_t part, const char *msg) {
    Napi::Error e = aglm_error(env, AGLM_ERR_INVALID_ARGUMENT, msg);
    e.Value().Set("part", Napi::Number::New(env, part));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
};

} // namespace

Napi::Function aglm_context_init(Napi::Env env, aglm_addon_data *data) {
  Napi::Function ctor = context_wrap::DefineClass(env, "Context", {
      context_wrap::InstanceMethod<&context_wrap::create_sequence>("createSequence"),
      context_wrap::InstanceMethod<&context_wrap::fork_sequence>("forkSequence"),
      context_wrap::InstanceMethod<&context_wrap::truncate_sequence>("truncateSequence"),
      context_wrap::InstanceMethod<&context_wrap::free_sequence>("freeSequence"),
      context_wrap::InstanceMethod<&context_wrap::sequence_length>("sequenceLength"),
      context_wrap::InstanceMethod<&context_wrap::step>("step"),
      context_wrap::InstanceMethod<&context_wrap::abort_step>("abortStep"),
      context_wrap::InstanceMethod<&context_wrap::info>("info"),
      context_wrap::InstanceMethod<&context_wrap::dispose>("dispose"),
  });
  data->context_ctor = Napi::Persistent(ctor);
  return ctor;
}
