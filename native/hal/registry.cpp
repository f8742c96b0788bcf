// Backend registry and module loader. Modules are loaded once per process and never unloaded (a backend may have
// started threads or registered callbacks in its driver). The registry is shared by every Node environment of the
// process, so a mutex guards it.
#include "hal/registry.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#endif

extern "C" const aglm_hal_backend *aglm_cpu_backend_entry(uint32_t api_version, char *why, size_t why_len);

namespace {

#if defined(_WIN32)
const char *const kModuleSuffix = ".dll";
const char kPathSep = ';';
#elif defined(__APPLE__)
const char *const kModuleSuffix = ".dylib";
const char kPathSep = ':';
#else
const char *const kModuleSuffix = ".so";
const char kPathSep = ':';
#endif
const char *const kModulePrefix = "aglm-backend-";

struct registry {
  std::mutex mu;
  std::map<std::string, aglm_backend_record> modules; // by file path
};

registry &reg() {
  static registry *r = new registry(); // never destroyed: modules stay loaded until the process ends
  return *r;
}

std::string dir_of(const std::string &path) {
  const size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string addon_dir() {
#ifdef _WIN32
  HMODULE self = nullptr;
  char buf[MAX_PATH] = {0};
  if (GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                         (LPCSTR)(void *)&addon_dir, &self) &&
      GetModuleFileNameA(self, buf, sizeof buf))
    return dir_of(buf);
  return "";
#else
  Dl_info info;
  if (dladdr((void *)&addon_dir, &info) && info.dli_fname) return dir_of(info.dli_fname);
  return "";
#endif
}

std::vector<std::string> list_modules(const std::string &dir) {
  std::vector<std::string> out;
  const size_t plen = std::strlen(kModulePrefix), slen = std::strlen(kModuleSuffix);
  auto wanted = [&](const std::string &n) {
    return n.size() > plen + slen && n.compare(0, plen, kModulePrefix) == 0 && n.compare(n.size() - slen, slen, kModuleSuffix) == 0;
  };
#ifdef _WIN32
  WIN32_FIND_DATAA fd;
  HANDLE h = FindFirstFileA((dir + "\\*").c_str(), &fd);
  if (h == INVALID_HANDLE_VALUE) return out;
  do {
    if (wanted(fd.cFileName)) out.push_back(dir + "\\" + fd.cFileName);
  } while (FindNextFileA(h, &fd));
  FindClose(h);
#else
  DIR *d = opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent *e = readdir(d))
    if (wanted(e->d_name)) out.push_back(dir + "/" + e->d_name);
  closedir(d);
#endif
  std::sort(out.begin(), out.end());
  return out;
}

std::string module_name(const std::string &path) {
  const size_t slash = path.find_last_of("/\\");
  std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  file = file.substr(std::strlen(kModulePrefix));
  return file.substr(0, file.size() - std::strlen(kModuleSuffix));
}

// Checks a table the entry function returned and asks for its score.
void accept_table(const aglm_hal_backend *t, aglm_backend_record *r) {
  if (t->api_version != AGLM_HAL_API_VERSION) {
    r->state = "failed";
    r->reason = "the module implements HAL API version " + std::to_string(t->api_version) + "; this build needs version " +
                std::to_string(AGLM_HAL_API_VERSION);
    return;
  }
  if (t->size < sizeof(aglm_hal_backend) || !t->score || !t->program_create || !t->program_free ||
      !t->program_describe || !t->session_create || !t->session_free || !t->session_decode || !t->device_count ||
      !t->device_info || !t->supports) {
    r->state = "failed";
    r->reason = "the module's backend table is incomplete";
    return;
  }
  if (t->name && *t->name) r->name = t->name;
  char why[512] = {0};
  r->score = t->score(why, sizeof why);
  r->reason = why;
  r->iface = t;
  r->state = r->score > 0 ? "ready" : "unusable";
}

aglm_backend_record load_module(const std::string &path) {
  aglm_backend_record r;
  r.name = module_name(path);
  r.path = path;
  r.state = "failed";
  char why[512] = {0};
  const aglm_hal_backend *t = nullptr;
#ifdef _WIN32
  HMODULE h = LoadLibraryA(path.c_str());
  if (!h) {
    r.reason = "LoadLibrary failed (error " + std::to_string(GetLastError()) + ")";
    return r;
  }
  auto entry = (aglm_hal_entry_fn)(void *)GetProcAddress(h, AGLM_HAL_ENTRY_SYMBOL);
#else
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    r.reason = std::string("dlopen failed: ") + (e ? e : "unknown error");
    return r;
  }
  auto entry = (aglm_hal_entry_fn)dlsym(h, AGLM_HAL_ENTRY_SYMBOL);
#endif
  if (!entry) {
    r.reason = std::string("the module does not export ") + AGLM_HAL_ENTRY_SYMBOL;
    return r;
  }
  t = entry(AGLM_HAL_API_VERSION, why, sizeof why);
  if (!t) {
    r.reason = std::string("the module refused HAL API version ") + std::to_string(AGLM_HAL_API_VERSION) + (why[0] ? ": " : "") + why;
    return r;
  }
  accept_table(t, &r);
  return r;
}

aglm_backend_record builtin_cpu() {
  static const aglm_backend_record record = [] {
    aglm_backend_record r;
    r.name = "cpu";
    char why[256] = {0};
    const aglm_hal_backend *t = aglm_cpu_backend_entry(AGLM_HAL_API_VERSION, why, sizeof why);
    if (!t) {
      r.state = "failed";
      r.reason = why;
      return r;
    }
    accept_table(t, &r);
    return r;
  }();
  return record;
}

// Loads (once) every module in the search path; returns their records. Called with the registry locked.
std::vector<aglm_backend_record> probe_locked(registry &g) {
  std::vector<aglm_backend_record> out;
  for (const std::string &dir : aglm_registry_search_path())
    for (const std::string &path : list_modules(dir)) {
      auto it = g.modules.find(path);
      if (it == g.modules.end()) it = g.modules.emplace(path, load_module(path)).first;
      out.push_back(it->second);
    }
  return out;
}

} // namespace

std::vector<std::string> aglm_registry_search_path() {
  std::vector<std::string> dirs;
  const std::string own = addon_dir();
  if (!own.empty()) dirs.push_back(own);
  if (const char *env = std::getenv("OPEN_AUTOGLM_BACKEND_PATH")) {
    std::string s = env;
    size_t at = 0;
    while (at <= s.size()) {
      const size_t end = std::min(s.find(kPathSep, at), s.size());
      if (end > at) dirs.push_back(s.substr(at, end - at));
      at = end + 1;
    }
  }
  return dirs;
}

std::vector<aglm_backend_record> aglm_registry_list() {
  registry &g = reg();
  std::lock_guard<std::mutex> lock(g.mu);
  std::vector<aglm_backend_record> out = {builtin_cpu()};
  for (const aglm_backend_record &r : probe_locked(g)) out.push_back(r);
  std::stable_sort(out.begin(), out.end(), [](const aglm_backend_record &a, const aglm_backend_record &b) {
    return (a.state == "ready") > (b.state == "ready") || ((a.state == "ready") == (b.state == "ready") && a.score > b.score);
  });
  return out;
}

const aglm_hal_backend *aglm_registry_get(const std::string &name, std::string *why, std::string *error) {
  std::vector<aglm_backend_record> all = aglm_registry_list();
  std::string names;
  for (const aglm_backend_record &r : all) {
    if (name.empty() ? r.state == "ready" : r.name == name) {
      if (r.state == "ready") {
        *why = r.reason;
        return r.iface;
      }
      *error = "backend " + r.name + (r.path.empty() ? "" : " (" + r.path + ")") + " cannot be used: " + r.reason;
      return nullptr;
    }
    names += (names.empty() ? "" : ", ") + r.name;
  }
  std::string dirs;
  for (const std::string &d : aglm_registry_search_path()) dirs += (dirs.empty() ? "" : ", ") + d;
  *error = name.empty() ? "no usable backend" : "no backend named '" + name + "' (found: " + names + "; no module " + kModulePrefix +
                                                    name + kModuleSuffix + " in " + dirs + ")";
  return nullptr;
}
