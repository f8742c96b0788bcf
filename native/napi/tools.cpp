// Free functions for JS: systemInfo(), alignmentOffset(buffer), convertRows(...) for the quantize tool.
#include <cstring>
#include <memory>
#include <vector>

#include "backends/cpu/cpu-features.h"
#include "backends/cpu/cpu-variants.h"
#include "common.h"
#include "core/aligned.h"
#include "core/convert.h"
#include "hal/registry.h"
#include "kernels/kernels.h"

namespace {

Napi::Value system_info(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  aglm_cpu_features f;
  aglm_cpu_probe(&f);
  char feats[512];
  aglm_cpu_features_string(&f, feats, sizeof feats);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("vendor", f.vendor);
  cpu.Set("brand", f.brand);
  cpu.Set("features", feats);
  o.Set("cpu", cpu);

  Napi::Array variants = Napi::Array::New(env);
  for (int i = 0; i < aglm_cpu_variant_count(); i++) {
    const aglm_cpu_variant *v = aglm_cpu_variant_at(i);
    Napi::Object vo = Napi::Object::New(env);
    vo.Set("name", v->name);
    vo.Set("score", v->score(&f));
    char note[256] = "";
    if (v->note) v->note(&f, note, sizeof note);
    vo.Set("note", note);
    variants.Set(i, vo);
  }
  o.Set("cpuVariants", variants);
  char why[512] = {0};
  const aglm_kernels *k = nullptr;
  std::string want = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  aglm_status st = aglm_cpu_select(want.c_str(), &k, why, sizeof why);
  Napi::Object chosen = Napi::Object::New(env);
  chosen.Set("variant", st == AGLM_OK ? Napi::Value(Napi::String::New(env, k->name)) : env.Null());
  chosen.Set("reason", why);
  if (st != AGLM_OK) chosen.Set("code", aglm_status_code(st));
  o.Set("cpuChoice", chosen);

  Napi::Array backends = Napi::Array::New(env);
  uint32_t i = 0;
  for (const aglm_backend_entry &e : aglm_registry_list()) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("name", e.iface->name);
    b.Set("score", e.score);
    b.Set("reason", e.why);
    backends.Set(i++, b);
  }
  o.Set("backends", backends);
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
  exports.Set("alignmentOffset", Napi::Function::New(env, alignment_offset, "alignmentOffset"));
  exports.Set("convertRows", Napi::Function::New(env, convert_rows, "convertRows"));
  exports.Set("rowBytes", Napi::Function::New(env, row_bytes, "rowBytes"));
}
