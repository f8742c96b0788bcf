// What every backend's HAL table needs besides its own compute: messages into the caller's buffers, exceptions kept
// from crossing the C ABI, JSON strings for reports, and a program's own copy of the HAL graph.
#pragma once

#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "open-autoglm/backend.h"

namespace aglm_backend {

// Writes s into buf (at most len bytes, NUL-terminated; nothing when buf is null or len 0).
inline void put(char *buf, size_t len, const std::string &s) {
  if (!buf || len == 0) return;
  const size_t n = s.size() < len - 1 ? s.size() : len - 1;
  std::memcpy(buf, s.data(), n);
  buf[n] = 0;
}

// Runs fn, turning anything the C++ library throws into a status with a sentence: nothing may cross the C ABI.
template <class F> int32_t guarded(char *err, size_t len, const char *what, F fn) {
  try {
    return fn();
  } catch (const std::bad_alloc &) {
    put(err, len, std::string("out of memory ") + what);
    return AGLM_ERR_OUT_OF_MEMORY;
  } catch (...) {
    put(err, len, std::string("internal error ") + what);
    return AGLM_ERR_INTERNAL;
  }
}

// s as a JSON string literal (control characters escaped).
inline std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", (unsigned)(unsigned char)c);
      o += u;
    } else o += c;
  }
  return o + "\"";
}

// What a batch's outputs ask for, after the checks every backend makes (token count within the session's batch size,
// output count within the tokens, each output kind known and hidden states only where the graph has them).
struct batch_outputs {
  bool logits = false, hidden = false;
};
inline int32_t check_batch(const aglm_hal_batch *b, int64_t n_batch, bool graph_has_hidden, batch_outputs *out, std::string *err) {
  if (b->n_tokens < 1 || b->n_tokens > n_batch) return *err = "batch size out of range", AGLM_ERR_INVALID_ARGUMENT;
  if (b->n_out < 0 || b->n_out > b->n_tokens) return *err = "output count out of range", AGLM_ERR_INVALID_ARGUMENT;
  *out = batch_outputs{};
  for (int32_t i = 0; i < b->n_out; i++) {
    if (b->out_kind[i] == AGLM_OUT_LOGITS) out->logits = true;
    else if (b->out_kind[i] == AGLM_OUT_HIDDEN && graph_has_hidden) out->hidden = true;
    else return *err = "unknown output kind", AGLM_ERR_INVALID_ARGUMENT;
  }
  return AGLM_OK;
}

// A module's aglm_backend_entry: its table for the API version it was built for, else null with the reason.
inline const aglm_hal_backend *entry_for(const aglm_hal_backend *table, uint32_t api_version, char *why, size_t why_len) {
  if (api_version == AGLM_HAL_API_VERSION) return table;
  put(why, why_len, "built for HAL API version " + std::to_string(AGLM_HAL_API_VERSION));
  return nullptr;
}

// A program's copy of the graph program_create received (the caller's arrays are not kept; weight names point into
// `names`; weight data pointers stay the core's until the backend releases them).
struct graph_copy {
  std::vector<aglm_hal_weight> weights;
  std::vector<std::string> names;
  std::vector<aglm_hal_value> values;
  std::vector<aglm_hal_op> ops;
  std::vector<aglm_hal_cache_slot> cache;
  std::vector<aglm_hal_rope> ropes;
  int32_t output = -1, hidden = -1;

  void assign(const aglm_hal_graph &g) {
    names.resize((size_t)g.n_weights);
    weights.assign(g.weights, g.weights + g.n_weights);
    for (int32_t i = 0; i < g.n_weights; i++) {
      names[(size_t)i] = g.weights[i].name ? g.weights[i].name : "";
      weights[(size_t)i].name = names[(size_t)i].c_str();
    }
    values.assign(g.values, g.values + g.n_values);
    ops.assign(g.ops, g.ops + g.n_ops);
    cache.assign(g.cache, g.cache + g.n_cache);
    ropes.assign(g.ropes, g.ropes + g.n_ropes);
    output = g.output;
    hidden = g.hidden;
  }
};

} // namespace aglm_backend
