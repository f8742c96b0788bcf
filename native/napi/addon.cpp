// The addon's entry point: per-environment instance data (worker_threads safe) and the exports.
#include "bandwidth.h"
#include "common.h"
#include "core/graph.h"

void aglm_crash_trace_init();

static Napi::Object aglm_addon_init(Napi::Env env, Napi::Object exports) {
  aglm_crash_trace_init();
  auto *data = new aglm_addon_data();
  env.SetInstanceData<aglm_addon_data>(data);
  exports.Set("Model", aglm_model_init(env, data));
  exports.Set("Context", aglm_context_init(env, data));
  exports.Set("irVersion", Napi::Number::New(env, AGLM_IR_VERSION));
  aglm_tools_init(env, exports);
  aglm_bandwidth_init(env, exports);
  return exports;
}

NODE_API_MODULE(open_autoglm, aglm_addon_init)
