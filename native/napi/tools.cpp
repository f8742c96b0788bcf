// Free functions for JS: systemInfo(), registerKernelPlugin(path), alignmentOffset(buffer), convertRows(...) and
// rowBytes() for the quantize tool.
#include <cstring>
#include <memory>
#include <vector>

#include "common.h"
#include "base/aligned.h"
#include "core/convert.h"
#include "hal/kernel-plugins.h"
#include "hal/registry.h"
#include "kernels/kernels.h"

namespace {

// {path, name, version, kernels: [{name, op, weightType, backend, actType, chosen, calls}]}: a registered kernel
// plugin and its kernels' counters as they stand now.
Napi::Object plugin_object(Napi::Env env, const aglm_kernel_plugin_record &r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", r.path);
  o.Set("name", r.name);
  o.Set("version", r.version);
  Napi::Array kernels = Napi::Array::New(env);
  for (const aglm_registered_kernel *k : r.kernels) {
    Napi::Object ko = Napi::Object::New(env);
    ko.Set("name", k->desc->name);
    ko.Set("op", aglm_op_kind_name(k->desc->op));
    ko.Set("weightType", k->desc->weight_type);
    ko.Set("backend", k->desc->backend);
    ko.Set("actType", k->desc->act_type);
    ko.Set("chosen", Napi::Number::New(env, (double)k->chosen.load()));
    ko.Set("calls", Napi::Number::New(env, (double)k->calls.load()));
    kernels.Set(kernels.Length(), ko);
  }
  o.Set("kernels", kernels);
  return o;
}

// registerKernelPlugin(path) -> the plugin's record (see plugin_object); FILE_NOT_FOUND or KERNEL_PLUGIN_INVALID.
Napi::Value register_kernel_plugin(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "registerKernelPlugin(path: string)");
  aglm_kernel_plugin_record rec;
  const aglm_result r = aglm_kernel_plugin_register(info[0].As<Napi::String>().Utf8Value(), &rec);
  if (!r.is_ok()) return aglm_throw(env, r.status, r.message);
  return plugin_object(env, rec);
}

// systemInfo(cpuVariant?) -> {backends: [{name, path, state, reason, score, devices, report}], searchPath,
// kernelPlugins}: every backend the registry knows (probing modules in the search path), each with its devices and its
// own report (JSON text; the CPU's lists the CPU features, the kernel variants and the one it would choose for
// cpuVariant), and every kernel plugin registered (see plugin_object).
Napi::Value system_info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const std::string variant = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Napi::Object o = Napi::Object::New(env);
  Napi::Array backends = Napi::Array::New(env);
  uint32_t i = 0;
  for (const aglm_backend_record &r : aglm_registry_list()) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("name", r.name);
    b.Set("path", r.path);
    b.Set("state", r.state);
    b.Set("reason", r.reason);
    b.Set("score", r.score);
    Napi::Array devices = Napi::Array::New(env);
    if (r.iface) {
      for (int32_t d = 0; d < r.iface->device_count(); d++) {
        aglm_hal_device_info di{};
        if (r.iface->device_info(d, &di) != AGLM_OK) continue;
        Napi::Object dv = Napi::Object::New(env);
        dv.Set("name", std::string(di.name, strnlen(di.name, sizeof di.name)));
        dv.Set("description", std::string(di.description, strnlen(di.description, sizeof di.description)));
        static const char *const kinds[] = {"cpu", "gpu", "igpu", "accel"};
        dv.Set("kind", di.kind >= 0 && di.kind < 4 ? kinds[di.kind] : "unknown");
        dv.Set("memoryTotal", Napi::Number::New(env, (double)di.memory_total));
        dv.Set("memoryFree", Napi::Number::New(env, (double)di.memory_free));
        devices.Set(devices.Length(), dv);
      }
      if (r.iface->report) {
        std::vector<char> buf(r.iface->report(variant.c_str(), nullptr, 0) + 1);
        r.iface->report(variant.c_str(), buf.data(), buf.size());
        b.Set("report", std::string(buf.data()));
      }
    }
    b.Set("devices", devices);
    backends.Set(i++, b);
  }
  o.Set("backends", backends);
  Napi::Array dirs = Napi::Array::New(env);
  for (const std::string &d : aglm_registry_search_path()) dirs.Set(dirs.Length(), d);
  o.Set("searchPath", dirs);
  Napi::Array plugins = Napi::Array::New(env);
  for (const aglm_kernel_plugin_record &r : aglm_kernel_plugins_list()) plugins.Set(plugins.Length(), plugin_object(env, r));
  o.Set("kernelPlugins", plugins);
  return o;
}

// alignmentOffset(buffer: ArrayBuffer): bytes to skip so that a view starts 64-byte aligned.
Napi::Value alignment_offset(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "alignmentOffset expects an ArrayBuffer");
  uintptr_t p = (uintptr_t)info[0].As<Napi::ArrayBuffer>().Data();
  return Napi::Number::New(env, (double)((AGLM_ALIGN - p % AGLM_ALIGN) % AGLM_ALIGN));
}

// convertRows(srcType, src: Uint8Array, dstType, rows, rowLength, dst: Uint8Array) -> Promise<void>
class convert_worker : public aglm_promise_worker {
 public:
  convert_worker(Napi::Env env, Napi::Value src, Napi::Value dst, int st, int dt, int64_t rows, int64_t k,
                 const uint8_t *s, uint8_t *d)
      : aglm_promise_worker(env, "aglm.convertRows"), st_(st), dt_(dt), rows_(rows), k_(k), s_(s), d_(d) {
    src_ref_ = Napi::Persistent(src.As<Napi::Object>());
    dst_ref_ = Napi::Persistent(dst.As<Napi::Object>());
  }
  void Execute() override {
    if (!aglm_convert_rows(st_, s_, dt_, d_, rows_, k_, 1))
      result_ = aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "conversion between these types is not supported");
  }

 private:
  int st_, dt_;
  int64_t rows_, k_;
  const uint8_t *s_;
  uint8_t *d_;
  Napi::ObjectReference src_ref_, dst_ref_;
};

bool byte_view(Napi::Value v, uint8_t **p, size_t *n) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *p = a.Data();
  *n = a.ByteLength();
  return true;
}

Napi::Value convert_rows(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber())
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "convertRows(srcType, src, dstType, rows, rowLength, dst)");
  int st = info[0].As<Napi::Number>().Int32Value(), dt = info[2].As<Napi::Number>().Int32Value();
  double rows = info[3].As<Napi::Number>().DoubleValue(), k = info[4].As<Napi::Number>().DoubleValue();
  if (st < 0 || st >= AGLM_TYPE_COUNT || dt < 0 || dt >= AGLM_TYPE_COUNT || !(rows >= 0 && rows < 1e12) || !(k >= 1 && k < 1e9) ||
      rows != (double)(int64_t)rows || k != (double)(int64_t)k)
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "convertRows: bad type, row count or row length");
  size_t sb = aglm_row_bytes(st, (int64_t)k), db = aglm_row_bytes(dt, (int64_t)k);
  if (sb == 0 || db == 0)
    return aglm_throw(env, AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "convertRows: type unknown or row length not a multiple of its block size");
  uint8_t *s, *d;
  size_t sn, dn;
  if (!byte_view(info[1], &s, &sn) || !byte_view(info[5], &d, &dn))
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "convertRows: src and dst must be Uint8Arrays");
  if (sn < sb * (size_t)rows || dn < db * (size_t)rows)
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "convertRows: buffers are too small");
  return (new convert_worker(env, info[1], info[5], st, dt, (int64_t)rows, (int64_t)k, s, d))->queue();
}

Napi::Value row_bytes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "rowBytes(type, n)");
  return Napi::Number::New(env, (double)aglm_row_bytes(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int64Value()));
}

} // namespace

void aglm_tools_init(Napi::Env env, Napi::Object exports) {
  exports.Set("systemInfo", Napi::Function::New(env, system_info, "systemInfo"));
  exports.Set("registerKernelPlugin", Napi::Function::New(env, register_kernel_plugin, "registerKernelPlugin"));
  exports.Set("alignmentOffset", Napi::Function::New(env, alignment_offset, "alignmentOffset"));
  exports.Set("convertRows", Napi::Function::New(env, convert_rows, "convertRows"));
  exports.Set("rowBytes", Napi::Function::New(env, row_bytes, "rowBytes"));
}
