// The kernel plugin loader: dlopen / LoadLibrary, the entry symbol, the ABI version and the table checked field by
// field before any kernel is registered. A plugin that fails a check registers nothing; the library stays mapped (its
// entry function ran and may have set up state of its own), as backend modules do.
#include "hal/kernel-plugins.h"

#include <cstring>
#include <mutex>

#include "kernels/kernels.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#endif

namespace {

struct plugin_registry {
  std::mutex mu;
  std::vector<aglm_kernel_plugin_record> plugins;
};

plugin_registry &plugins() {
  static plugin_registry *r = new plugin_registry(); // never destroyed: plugins stay loaded until the process ends
  return *r;
}

aglm_result invalid(const std::string &path, const std::string &sentence) {
  return aglm_result::fail(AGLM_ERR_KERNEL_PLUGIN_INVALID, "kernel plugin " + path + ": " + sentence);
}

// The canonical absolute path of an existing regular file, or false.
bool canonical_file(const std::string &path, std::string *out) {
#ifdef _WIN32
  char buf[MAX_PATH] = {0};
  const DWORD n = GetFullPathNameA(path.c_str(), sizeof buf, buf, nullptr);
  if (n == 0 || n >= sizeof buf) return false;
  const DWORD attr = GetFileAttributesA(buf);
  if (attr == INVALID_FILE_ATTRIBUTES || (attr & FILE_ATTRIBUTE_DIRECTORY)) return false;
  *out = buf;
  return true;
#else
  char buf[PATH_MAX];
  struct stat st;
  if (!realpath(path.c_str(), buf) || stat(buf, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *out = buf;
  return true;
#endif
}

// Opens the library and finds its entry function.
aglm_result open_entry(const std::string &path, aglm_kernel_plugin_entry_fn *entry) {
#ifdef _WIN32
  HMODULE h = LoadLibraryA(path.c_str());
  if (!h) return invalid(path, "LoadLibrary failed (error " + std::to_string(GetLastError()) + "): it is not a loadable library");
  *entry = (aglm_kernel_plugin_entry_fn)(void *)GetProcAddress(h, AGLM_KERNEL_PLUGIN_ENTRY_SYMBOL);
#else
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    return invalid(path, std::string("dlopen failed: ") + (e ? e : "unknown error"));
  }
  *entry = (aglm_kernel_plugin_entry_fn)dlsym(h, AGLM_KERNEL_PLUGIN_ENTRY_SYMBOL);
#endif
  if (!*entry)
    return invalid(path, std::string("the library does not export ") + AGLM_KERNEL_PLUGIN_ENTRY_SYMBOL + ", so it is not a kernel plugin");
  return aglm_result::ok();
}

bool is_activation_type(int32_t t) {
  return t == AGLM_TYPE_F32 || t == AGLM_TYPE_Q8_0 || t == AGLM_TYPE_Q8_1 || t == AGLM_TYPE_Q8_K;
}

// One kernel descriptor: "" when it is acceptable, else what is wrong with it.
std::string check_kernel(const aglm_kernel_desc &k) {
  const std::string which = k.name ? std::string("kernel ") + k.name : std::string("a kernel without a name");
  if (!k.name || !*k.name) return which + " has no name";
  if (k.op != AGLM_OP_MATMUL) return which + " is for " + aglm_op_kind_name(k.op) + "; ABI version 1 defines matmul kernels only";
  if (!k.backend || !*k.backend) return which + " names no backend";
  if (k.weight_type < 0 || k.weight_type >= AGLM_TYPE_COUNT || aglm_kernels_ref.matmul_act_type(k.weight_type) < 0)
    return which + " is for weight type " + std::to_string(k.weight_type) + ", which this build cannot read";
  if (!is_activation_type(k.act_type))
    return which + " reads activations of type " + std::to_string(k.act_type) + "; only F32 (0), Q8_0 (8), Q8_1 (9) and Q8_K (15) are produced";
  if (!k.matmul) return which + " has no matmul function";
  return "";
}

// The table the entry function returned, checked before anything is registered.
aglm_result check_table(const std::string &path, const aglm_kernel_plugin *t) {
  if (t->abi_version != AGLM_KERNEL_PLUGIN_ABI_VERSION)
    return invalid(path, "it was built for kernel plugin ABI version " + std::to_string(t->abi_version) +
                             "; this build of open-autoglm implements version " + std::to_string(AGLM_KERNEL_PLUGIN_ABI_VERSION));
  if (t->size < sizeof(aglm_kernel_plugin) || t->kernel_size < sizeof(aglm_kernel_desc))
    return invalid(path, "its table or kernel descriptors are smaller than ABI version 1 defines (" + std::to_string(t->size) +
                             " and " + std::to_string(t->kernel_size) + " bytes)");
  if (!t->name || !*t->name || !t->version) return invalid(path, "its table gives no name or version");
  if (t->n_kernels < 1 || t->n_kernels > 1024 || !t->kernels)
    return invalid(path, "its table lists " + std::to_string(t->n_kernels) + " kernels (1 to 1024 expected)");
  for (int32_t i = 0; i < t->n_kernels; i++) {
    const auto *k = (const aglm_kernel_desc *)((const char *)t->kernels + (size_t)i * t->kernel_size);
    const std::string bad = check_kernel(*k);
    if (!bad.empty()) return invalid(path, bad);
  }
  return aglm_result::ok();
}

aglm_result load_locked(plugin_registry &g, const std::string &path, aglm_kernel_plugin_record *out) {
  aglm_kernel_plugin_entry_fn entry = nullptr;
  aglm_result r = open_entry(path, &entry);
  if (!r.is_ok()) return r;
  char why[512] = {0};
  const aglm_kernel_plugin *t = entry(AGLM_KERNEL_PLUGIN_ABI_VERSION, why, sizeof why);
  if (!t)
    return invalid(path, "it refused kernel plugin ABI version " + std::to_string(AGLM_KERNEL_PLUGIN_ABI_VERSION) +
                             " (the version this build of open-autoglm implements)" + (why[0] ? ": " : "") + why);
  r = check_table(path, t);
  if (!r.is_ok()) return r;
  aglm_kernel_plugin_record rec;
  rec.path = path;
  rec.name = t->name;
  rec.version = t->version;
  for (int32_t i = 0; i < t->n_kernels; i++)
    rec.kernels.push_back(aglm_kernel_registry_add((const aglm_kernel_desc *)((const char *)t->kernels + (size_t)i * t->kernel_size), rec.name));
  g.plugins.push_back(rec);
  *out = std::move(rec);
  return aglm_result::ok();
}

} // namespace

aglm_result aglm_kernel_plugin_register(const std::string &path, aglm_kernel_plugin_record *out) {
  std::string file;
  if (path.empty() || !canonical_file(path, &file))
    return aglm_result::fail(AGLM_ERR_FILE_NOT_FOUND, "no kernel plugin file at " + (path.empty() ? std::string("''") : path));
  plugin_registry &g = plugins();
  std::lock_guard<std::mutex> lock(g.mu);
  for (const aglm_kernel_plugin_record &rec : g.plugins)
    if (rec.path == file) {
      *out = rec;
      return aglm_result::ok();
    }
  return load_locked(g, file, out);
}

std::vector<aglm_kernel_plugin_record> aglm_kernel_plugins_list() {
  plugin_registry &g = plugins();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.plugins;
}

std::string aglm_op_kind_name(int32_t op) {
  static const char *const names[AGLM_OP_COUNT] = {
      "embed", "rms_norm", "matmul", "add", "mul", "silu_mul", "rope", "attention", "output_rows", "layer_norm",
      "gelu", "embed_positions", "add_vector", "input", "embed_interp", "merge_rows", "gelu_erf"};
  return op >= 0 && op < AGLM_OP_COUNT && names[op] ? names[op] : "op " + std::to_string(op);
}
