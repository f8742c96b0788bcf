// Kernel plugins (include/open-autoglm/kernel-plugin.h): shared libraries that add kernels for (op, weight type,
// backend). Loading one checks its entry symbol, ABI version, table and every kernel, then adds its kernels to the
// process-wide kernel registry (base/kernel-registry.h) that backends consult when they create a program. Plugins are
// loaded once per file and never unloaded.
#pragma once

#include <string>
#include <vector>

#include "base/kernel-registry.h"
#include "base/status.h"

struct aglm_kernel_plugin_record {
  std::string path; // the file, as a canonical absolute path
  std::string name, version;
  std::vector<aglm_registered_kernel *> kernels;
};

// Loads and registers the plugin at `path`. The same file a second time returns its first record. Errors:
// FILE_NOT_FOUND (no such file) or KERNEL_PLUGIN_INVALID (not a library, no entry symbol, another ABI version, a bad
// table), each with one sentence naming the file.
aglm_result aglm_kernel_plugin_register(const std::string &path, aglm_kernel_plugin_record *out);
// Every plugin registered so far, in registration order.
std::vector<aglm_kernel_plugin_record> aglm_kernel_plugins_list();
// "matmul" for AGLM_OP_MATMUL, ... ("op <n>" for others).
std::string aglm_op_kind_name(int32_t op);
