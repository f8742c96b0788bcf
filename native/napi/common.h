// Shared N-API helpers: per-environment instance data, errors carrying a `code`, argument readers.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "base/status.h"

struct aglm_addon_data {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference context_ctor;
};

inline aglm_addon_data *aglm_data(Napi::Env env) { return env.GetInstanceData<aglm_addon_data>(); }

// An Error object with .code set to the status name; TS turns it into an AglmError.
inline Napi::Error aglm_error(Napi::Env env, aglm_status s, const std::string &msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, aglm_status_code(s)));
  return e;
}

inline Napi::Value aglm_throw(Napi::Env env, aglm_status s, const std::string &msg) {
  aglm_error(env, s, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A typed array's data pointer and length, checked for type, 64-byte alignment and minimum length.
template <typename T>
bool aglm_typed_array(Napi::Env env, Napi::Value v, napi_typedarray_type want, size_t min_len, const char *what,
                      T **data, size_t *len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, std::string(what) + " must be a typed array of the right type");
    return false;
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  uint8_t *base = static_cast<uint8_t *>(ta.ArrayBuffer().Data());
  if (!base && ta.ElementLength() > 0) {
    aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, std::string(what) + " has a detached buffer");
    return false;
  }
  uint8_t *p = base ? base + ta.ByteOffset() : nullptr;
  if (p && ((uintptr_t)p % 64) != 0) {
    aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, std::string(what) + " is not 64-byte aligned (use the aligned buffer helpers)");
    return false;
  }
  if (ta.ElementLength() < min_len) {
    aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, std::string(what) + " holds " + std::to_string(ta.ElementLength()) +
                                                   " elements but " + std::to_string(min_len) + " are needed");
    return false;
  }
  *data = reinterpret_cast<T *>(p);
  *len = ta.ElementLength();
  return true;
}

// An async worker that settles a promise: Execute() runs off the JS thread and sets result_; on the JS thread a
// failed result rejects with an Error carrying its code, a good one resolves with resolved_value().
class aglm_promise_worker : public Napi::AsyncWorker {
 public:
  aglm_promise_worker(Napi::Env env, const char *name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  // Queues the work; the worker deletes itself when done.
  Napi::Promise queue() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

 protected:
  aglm_result result_;
  virtual Napi::Value resolved_value() { return Env().Undefined(); }
  // Runs on the JS thread before the promise settles, whatever the outcome (release flags, references).
  virtual void finished() {}
  void OnOK() override {
    finished();
    if (result_.is_ok()) deferred_.Resolve(resolved_value());
    else deferred_.Reject(aglm_error(Env(), result_.status, result_.message).Value());
  }
  void OnError(const Napi::Error &e) override {
    finished();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
};

// A new JS object of class `ctor` wrapping a copy of `core` (the wrap classes take it as an External).
template <typename T> Napi::Object aglm_wrap_shared(Napi::Env env, Napi::FunctionReference &ctor, const std::shared_ptr<T> &core) {
  std::shared_ptr<T> copy = core;
  return ctor.New({Napi::External<std::shared_ptr<T>>::New(env, &copy)});
}

Napi::Function aglm_model_init(Napi::Env env, aglm_addon_data *data);
Napi::Function aglm_context_init(Napi::Env env, aglm_addon_data *data);
void aglm_tools_init(Napi::Env env, Napi::Object exports);
