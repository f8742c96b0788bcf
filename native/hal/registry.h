// The backend registry: the CPU backend built into the addon, and backend modules (aglm-backend-<name>.so / .dll /
// .dylib) found next to the addon or in OPEN_AUTOGLM_BACKEND_PATH, loaded only when asked for by name or when the
// registry probes. A module that is missing, fails to load, refuses the HAL version or reports itself unusable is
// recorded with its reason; it never stops the CPU path.
#pragma once

#include <string>
#include <vector>

#include "open-autoglm/backend.h"

struct aglm_backend_record {
  std::string name;
  std::string path;   // the module's file; empty for the built-in backend
  std::string state;  // "ready" (usable), "unusable" (score 0), "failed" (did not load or refused the version)
  std::string reason; // the backend's own sentence, or why it failed
  int score = 0;
  const aglm_hal_backend *iface = nullptr; // set when it loaded (ready or unusable)
};

// Every backend known: the built-in one, then every module in the search path (loaded now if not yet), best first.
std::vector<aglm_backend_record> aglm_registry_list();
// The backend called `name` (loading its module if needed), or the best ready one when name is empty. Null with a
// message when it is unavailable; `why` receives the chosen backend's reason.
const aglm_hal_backend *aglm_registry_get(const std::string &name, std::string *why, std::string *error);
// The directories searched for modules: the addon's own, then OPEN_AUTOGLM_BACKEND_PATH's entries.
std::vector<std::string> aglm_registry_search_path();
