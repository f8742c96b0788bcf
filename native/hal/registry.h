// The backend registry: every backend compiled in (or loaded) is listed here with its score.
#pragma once

#include <string>
#include <vector>

#include "hal/backend.h"

struct aglm_backend_entry {
  const aglm_backend_i *iface;
  int score;
  std::string why;
};

// All registered backends with their score on this machine, best first.
std::vector<aglm_backend_entry> aglm_registry_list();
// The backend called `name`, or the best one when name is empty; null with a message if unavailable.
const aglm_backend_i *aglm_registry_get(const std::string &name, std::string *error);
