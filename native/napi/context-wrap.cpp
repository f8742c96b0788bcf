// `Context` for JS: evaluate(tokens, n, mode, out, kind) on a worker thread, abort(), clear(), dispose().
// The JS typed arrays stay referenced until the worker finishes; only plain pointers cross to the worker.
#include <memory>

#include "common.h"
#include "core/engine.h"

namespace {

class evaluate_worker : public aglm_promise_worker {
 public:
  evaluate_worker(Napi::Env env, std::shared_ptr<aglm_context_core> ctx, Napi::Value tokens, Napi::Value logits,
                  const uint32_t *tok, int64_t n, aglm_logits_mode mode, float *out, int out_kind)
      : aglm_promise_worker(env, "aglm.evaluate"), ctx_(std::move(ctx)), tok_(tok), n_(n), mode_(mode), out_(out),
        out_kind_(out_kind) {
    tokens_ref_ = Napi::Persistent(tokens.As<Napi::Object>());
    if (logits.IsObject()) logits_ref_ = Napi::Persistent(logits.As<Napi::Object>());
  }
  void Execute() override { result_ = aglm_context_evaluate(ctx_.get(), tok_, n_, mode_, out_, out_kind_); }
  Napi::Value resolved_value() override { return Napi::Number::New(Env(), (double)ctx_->n_past.load()); }
  void finished() override { ctx_->busy.store(false); }

 private:
  std::shared_ptr<aglm_context_core> ctx_;
  Napi::ObjectReference tokens_ref_, logits_ref_;
  const uint32_t *tok_;
  int64_t n_;
  aglm_logits_mode mode_;
  float *out_;
  int out_kind_;
};

class context_wrap : public Napi::ObjectWrap<context_wrap> {
 public:
  context_wrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<context_wrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      aglm_throw(info.Env(), AGLM_ERR_INVALID_ARGUMENT, "Context cannot be constructed directly; use model.createContext()");
      return;
    }
    ctx_ = *info[0].As<Napi::External<std::shared_ptr<aglm_context_core>>>().Data();
  }

  // evaluate(tokens: Uint32Array, n: number, mode: 0 last | 1 all | 2 none, out: Float32Array | null,
  //          kind?: 0 logits | 1 hidden states (final norm, width nHidden))
  Napi::Value evaluate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    if (info.Length() < 4 || !info[1].IsNumber() || !info[2].IsNumber())
      return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "evaluate(tokens, n, mode, logits)");
    double nd = info[1].As<Napi::Number>().DoubleValue();
    int mode = info[2].As<Napi::Number>().Int32Value();
    if (!(nd >= 1 && nd <= 1e9) || nd != (double)(int64_t)nd) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "token count out of range");
    if (mode < 0 || mode > 2) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "logits mode out of range");
    int kind = AGLM_OUT_LOGITS;
    if (info.Length() >= 5 && !info[4].IsUndefined()) {
      if (!info[4].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "output kind must be 0 or 1");
      kind = info[4].As<Napi::Number>().Int32Value();
      if (kind != AGLM_OUT_LOGITS && kind != AGLM_OUT_HIDDEN) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "output kind must be 0 or 1");
      if (kind == AGLM_OUT_HIDDEN && ctx_->model->n_hidden == 0)
        return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "this model has no hidden-state output");
    }
    const int64_t n = (int64_t)nd;
    uint32_t *tok;
    size_t len;
    if (!aglm_typed_array(env, info[0], napi_uint32_array, (size_t)n, "tokens", &tok, &len)) return env.Undefined();
    float *out = nullptr;
    if (mode != AGLM_LOGITS_NONE) {
      const int64_t width = kind == AGLM_OUT_HIDDEN ? ctx_->model->n_hidden : ctx_->model->n_vocab;
      size_t need = (size_t)width * (mode == AGLM_LOGITS_ALL ? (size_t)n : 1);
      if (!aglm_typed_array(env, info[3], napi_float32_array, need, kind == AGLM_OUT_HIDDEN ? "hidden" : "logits", &out, &len))
        return env.Undefined();
    }
    bool expected = false;
    if (!ctx_->busy.compare_exchange_strong(expected, true))
      return aglm_throw(env, AGLM_ERR_BUSY, "the context is already evaluating; await the previous call first");
    ctx_->abort.store(false);
    return (new evaluate_worker(env, ctx_, info[0], info[3], tok, n, (aglm_logits_mode)mode, out, kind))->queue();
  }

  Napi::Value abort(const Napi::CallbackInfo &info) {
    if (ctx_) ctx_->abort.store(true);
    return info.Env().Undefined();
  }

  // setPosition(n): forget every position at or after n (n <= what the context holds).
  Napi::Value set_position(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    if (ctx_->busy.load()) return aglm_throw(env, AGLM_ERR_BUSY, "the context is evaluating");
    if (info.Length() < 1 || !info[0].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "setPosition(n)");
    double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 0 && n <= (double)ctx_->n_past.load()) || n != (double)(int64_t)n)
      return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "position out of range");
    ctx_->n_past = (int64_t)n;
    return env.Undefined();
  }

  Napi::Value info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!ctx_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the context was disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("nPast", Napi::Number::New(env, (double)ctx_->n_past.load()));
    o.Set("nCtx", Napi::Number::New(env, (double)ctx_->n_ctx));
    o.Set("nBatch", Napi::Number::New(env, (double)ctx_->n_batch));
    const aglm_backend_i *b = ctx_->model->backend;
    o.Set("memoryBytes", Napi::Number::New(env, b->session_memory ? (double)b->session_memory(ctx_->session) : 0));
    return o;
  }

  Napi::Value dispose(const Napi::CallbackInfo &info) {
    if (ctx_) {
      ctx_->abort.store(true); // an in-flight evaluation stops at its next op and then releases the memory
      ctx_.reset();
    }
    return info.Env().Undefined();
  }

 private:
  std::shared_ptr<aglm_context_core> ctx_;
};

} // namespace

Napi::Function aglm_context_init(Napi::Env env, aglm_addon_data *data) {
  Napi::Function ctor = context_wrap::DefineClass(env, "Context", {
      context_wrap::InstanceMethod<&context_wrap::evaluate>("evaluate"),
      context_wrap::InstanceMethod<&context_wrap::abort>("abort"),
      context_wrap::InstanceMethod<&context_wrap::set_position>("setPosition"),
      context_wrap::InstanceMethod<&context_wrap::info>("info"),
      context_wrap::InstanceMethod<&context_wrap::dispose>("dispose"),
  });
  data->context_ctor = Napi::Persistent(ctor);
  return ctor;
}
