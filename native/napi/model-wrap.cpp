// `Model` for JS: loads a model asynchronously from {path, backend, variant, graph}, creates contexts, disposes.
#include <memory>

#include "common.h"
#include "core/engine.h"

namespace {

// ---- graph description (JS object) -> aglm_graph; every field checked, never trusted -------------------------

struct reader {
  Napi::Env env;
  std::string error;

  bool fail(const std::string &m) {
    if (error.empty()) error = m;
    return false;
  }
  bool num(Napi::Object o, const char *k, double *out) {
    Napi::Value v = o.Get(k);
    if (!v.IsNumber()) return fail(std::string("graph field '") + k + "' must be a number");
    *out = v.As<Napi::Number>().DoubleValue();
    return true;
  }
  bool int64(Napi::Object o, const char *k, int64_t *out, double lo, double hi) {
    double d;
    if (!num(o, k, &d)) return false;
    if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) return fail(std::string("graph field '") + k + "' is out of range");
    *out = (int64_t)d;
    return true;
  }
  bool array(Napi::Object o, const char *k, Napi::Array *out, uint32_t max_len) {
    Napi::Value v = o.Get(k);
    if (!v.IsArray()) return fail(std::string("graph field '") + k + "' must be an array");
    *out = v.As<Napi::Array>();
    if (out->Length() > max_len) return fail(std::string("graph field '") + k + "' is too long");
    return true;
  }
  bool object(Napi::Value v, Napi::Object *out, const char *what) {
    if (!v.IsObject()) return fail(std::string(what) + " must be an object");
    *out = v.As<Napi::Object>();
    return true;
  }
  bool ints(Napi::Object o, const char *k, int32_t *out, int n, double lo, double hi) {
    Napi::Value v = o.Get(k);
    if (v.IsUndefined()) return true;
    Napi::Array a;
    if (!array(o, k, &a, n)) return false;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) return fail(std::string("graph field '") + k + "' must hold numbers");
      double d = e.As<Napi::Number>().DoubleValue();
      if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) return fail(std::string("graph field '") + k + "' is out of range");
      out[i] = (int32_t)d;
    }
    return true;
  }
  bool floats(Napi::Object o, const char *k, float *out, int n) {
    Napi::Value v = o.Get(k);
    if (v.IsUndefined()) return true;
    Napi::Array a;
    if (!array(o, k, &a, n)) return false;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) return fail(std::string("graph field '") + k + "' must hold numbers");
      out[i] = (float)e.As<Napi::Number>().DoubleValue();
    }
    return true;
  }

  bool weight(Napi::Value v, aglm_weight *w) {
    Napi::Object o;
    if (!object(v, &o, "a graph weight")) return false;
    Napi::Value name = o.Get("name");
    if (!name.IsString()) return fail("graph weight name must be a string");
    w->name = name.As<Napi::String>().Utf8Value();
    int64_t type, offset, nbytes;
    Napi::Array dims;
    if (!int64(o, "type", &type, 0, AGLM_TYPE_COUNT - 1) || !int64(o, "offset", &offset, 0, 9007199254740991.0) ||
        !int64(o, "nbytes", &nbytes, 0, 9007199254740991.0) || !array(o, "dims", &dims, 4))
      return false;
    w->type = (int)type;
    Napi::Value to = o.Get("to");
    if (!to.IsUndefined()) {
      int64_t t;
      if (!int64(o, "to", &t, 0, AGLM_TYPE_COUNT - 1)) return false;
      w->to = (int)t;
    }
    w->offset = (uint64_t)offset;
    w->nbytes = (uint64_t)nbytes;
    w->n_dims = (int)dims.Length();
    for (uint32_t d = 0; d < dims.Length(); d++) {
      Napi::Value e = dims.Get(d);
      if (!e.IsNumber()) return fail("graph weight dims must be numbers");
      double x = e.As<Napi::Number>().DoubleValue();
      if (!(x >= 1 && x <= 4294967296.0) || x != (double)(int64_t)x) return fail("graph weight dims out of range");
      w->ne[d] = (int64_t)x;
    }
    return true;
  }

  bool graph(Napi::Value v, aglm_graph *g) {
    Napi::Object o;
    if (!object(v, &o, "graph")) return false;
    int64_t version, output;
    if (!int64(o, "version", &version, 0, 1e9)) return false;
    if (version != AGLM_IR_VERSION) return fail("graph IR version " + std::to_string(version) + " is not the addon's (" + std::to_string(AGLM_IR_VERSION) + ")");
    Napi::Array weights, values, ops, cache;
    if (!array(o, "weights", &weights, 1u << 20) || !array(o, "values", &values, 1u << 22) ||
        !array(o, "ops", &ops, 1u << 22) || !array(o, "cache", &cache, 1u << 16) ||
        !int64(o, "output", &output, 0, 1u << 22))
      return false;
    g->output = (int)output;
    if (!o.Get("hidden").IsUndefined()) {
      int64_t hidden;
      if (!int64(o, "hidden", &hidden, 0, 1u << 22)) return false;
      g->hidden = (int)hidden;
    }
    g->weights.resize(weights.Length());
    for (uint32_t i = 0; i < weights.Length(); i++)
      if (!weight(weights.Get(i), &g->weights[i])) return false;
    g->values.resize(values.Length());
    for (uint32_t i = 0; i < values.Length(); i++) {
      Napi::Object vo;
      int64_t rows, width;
      if (!object(values.Get(i), &vo, "a graph value") || !int64(vo, "rows", &rows, 0, 1) ||
          !int64(vo, "width", &width, 1, 1 << 24))
        return false;
      g->values[i] = {(int)rows, width};
    }
    g->cache.resize(cache.Length());
    for (uint32_t i = 0; i < cache.Length(); i++) {
      Napi::Object co;
      if (!object(cache.Get(i), &co, "a cache slot") || !int64(co, "k", &g->cache[i].k_width, 1, 1 << 24) ||
          !int64(co, "v", &g->cache[i].v_width, 1, 1 << 24))
        return false;
    }
    g->ops.resize(ops.Length());
    for (uint32_t i = 0; i < ops.Length(); i++) {
      Napi::Object oo;
      if (!object(ops.Get(i), &oo, "a graph op")) return false;
      aglm_op &op = g->ops[i];
      Napi::Value name = oo.Get("op");
      if (!name.IsString() || !aglm_op_from_name(name.As<Napi::String>().Utf8Value(), &op.kind))
        return fail("graph op " + std::to_string(i) + " has an unknown kind");
      int64_t out;
      if (!int64(oo, "out", &out, 0, 1u << 22)) return false;
      op.out = (int)out;
      if (!ints(oo, "in", op.in, 3, 0, 1u << 22) || !ints(oo, "w", op.w, 2, 0, 1u << 20) ||
          !ints(oo, "i", op.i, AGLM_OP_INTS, -2147483648.0, 2147483647.0) || !floats(oo, "f", op.f, AGLM_OP_FLOATS))
        return false;
    }
    return true;
  }
};

// ---- async load -----------------------------------------------------------------------------------------------

class load_worker : public aglm_promise_worker {
 public:
  load_worker(Napi::Env env, aglm_load_request req) : aglm_promise_worker(env, "aglm.loadModel"), req_(std::move(req)) {}
  void Execute() override { result_ = aglm_model_load(req_, &model_); }
  Napi::Value resolved_value() override { return aglm_wrap_shared(Env(), aglm_data(Env())->model_ctor, model_); }

 private:
  aglm_load_request req_;
  std::shared_ptr<aglm_model_core> model_;
};

class context_worker : public aglm_promise_worker {
 public:
  context_worker(Napi::Env env, std::shared_ptr<aglm_model_core> model, aglm_context_desc desc)
      : aglm_promise_worker(env, "aglm.createContext"), model_(std::move(model)), desc_(desc) {}
  void Execute() override { result_ = aglm_context_create(model_, desc_, &ctx_); }
  Napi::Value resolved_value() override { return aglm_wrap_shared(Env(), aglm_data(Env())->context_ctor, ctx_); }

 private:
  std::shared_ptr<aglm_model_core> model_;
  aglm_context_desc desc_;
  std::shared_ptr<aglm_context_core> ctx_;
};

class model_wrap : public Napi::ObjectWrap<model_wrap> {
 public:
  model_wrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<model_wrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      aglm_throw(info.Env(), AGLM_ERR_INVALID_ARGUMENT, "Model cannot be constructed directly; use Model.load()");
      return;
    }
    model_ = *info[0].As<Napi::External<std::shared_ptr<aglm_model_core>>>().Data();
  }

  static Napi::Value load(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "Model.load expects a spec object");
    Napi::Object spec = info[0].As<Napi::Object>();
    aglm_load_request req;
    auto str = [&](const char *k, std::string *out) {
      Napi::Value v = spec.Get(k);
      if (v.IsString()) *out = v.As<Napi::String>().Utf8Value();
      return v.IsString() || v.IsUndefined() || v.IsNull();
    };
    if (!spec.Get("path").IsString() || !str("path", &req.path) || !str("backend", &req.backend) ||
        !str("variant", &req.variant) || !str("variantSource", &req.variant_source))
      return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "Model.load: path must be a string; backend, variant strings");
    const Napi::Value threads = spec.Get("threads");
    if (!threads.IsUndefined() && !threads.IsNull()) {
      if (!threads.IsNumber() || threads.As<Napi::Number>().DoubleValue() < 1 || threads.As<Napi::Number>().DoubleValue() > 4096)
        return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "Model.load: threads must be a number from 1 to 4096");
      req.threads = (int)threads.As<Napi::Number>().DoubleValue();
    }
    const Napi::Value gpu_layers = spec.Get("gpuLayers");
    if (!gpu_layers.IsUndefined() && !gpu_layers.IsNull()) {
      const double g = gpu_layers.IsNumber() ? gpu_layers.As<Napi::Number>().DoubleValue() : -1;
      if (!(g >= 0 && g <= 1e6) || g != (double)(int)g)
        return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "Model.load: gpuLayers must be a whole number from 0");
      req.gpu_layers = (int)g;
    }
    reader rd{env, {}};
    if (!rd.graph(spec.Get("graph"), &req.graph)) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, rd.error);
    return (new load_worker(env, std::move(req)))->queue();
  }

  Napi::Value create_context(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!model_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the model was disposed");
    if (info.Length() < 1 || !info[0].IsObject()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "createContext expects options");
    Napi::Object o = info[0].As<Napi::Object>();
    reader rd{env, {}};
    int64_t n_ctx, n_batch, n_threads, n_seqs = 1, kv_type = 0;
    if (!rd.int64(o, "nCtx", &n_ctx, 1, 1 << 24) || !rd.int64(o, "nBatch", &n_batch, 1, 1 << 20) ||
        !rd.int64(o, "nThreads", &n_threads, 1, 1024) ||
        (!o.Get("nSeqs").IsUndefined() && !rd.int64(o, "nSeqs", &n_seqs, 1, 1 << 16)) ||
        (!o.Get("kvType").IsUndefined() && !rd.int64(o, "kvType", &kv_type, 0, 1)))
      return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, rd.error);
    const aglm_context_desc desc{n_ctx, n_batch, (int32_t)n_seqs, (int32_t)n_threads,
                                 kv_type == 1 ? AGLM_TYPE_F16 : AGLM_TYPE_F32};
    return (new context_worker(env, model_, desc))->queue();
  }

  Napi::Value describe(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!model_) return aglm_throw(env, AGLM_ERR_DISPOSED, "the model was disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("backend", model_->backend->name);
    o.Set("backendReason", model_->backend_why);
    o.Set("description", model_->description);
    o.Set("nVocab", Napi::Number::New(env, (double)model_->n_vocab));
    o.Set("nHidden", Napi::Number::New(env, (double)model_->n_hidden));
    o.Set("fileSize", Napi::Number::New(env, (double)model_->file.size()));
    double program_bytes = 0;
    for (const aglm_model_part &p : model_->parts)
      if (p.backend->program_memory) program_bytes += (double)p.backend->program_memory(p.program);
    o.Set("programBytes", Napi::Number::New(env, program_bytes));
    o.Set("layers", Napi::Number::New(env, model_->n_layers));
    o.Set("gpuLayers", Napi::Number::New(env, model_->gpu_layers));
    o.Set("convertedBytes", Napi::Number::New(env, (double)model_->weights.owned_bytes()));
    return o;
  }

  Napi::Value dispose(const Napi::CallbackInfo &info) {
    model_.reset(); // contexts (and in-flight work) keep the core alive until they finish
    return info.Env().Undefined();
  }

 private:
  std::shared_ptr<aglm_model_core> model_;
};

} // namespace

Napi::Function aglm_model_init(Napi::Env env, aglm_addon_data *data) {
  Napi::Function ctor = model_wrap::DefineClass(env, "Model", {
      model_wrap::StaticMethod<&model_wrap::load>("load"),
      model_wrap::InstanceMethod<&model_wrap::create_context>("createContext"),
      model_wrap::InstanceMethod<&model_wrap::describe>("describe"),
      model_wrap::InstanceMethod<&model_wrap::dispose>("dispose"),
  });
  data->model_ctor = Napi::Persistent(ctor);
  return ctor;
}
