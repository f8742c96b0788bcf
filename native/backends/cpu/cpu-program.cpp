// A CPU program: the HAL graph copied, matmul weights bound to plugin kernels that accept them, the other weights
// prepared for one kernel table (vectors as f32, matmul weights repacked where the table has a layout of its own), and
// every matmul checked against what its kernel can multiply.
#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "backends/cpu/cpu-state.h"

namespace {

typedef int32_t status_t;

// Threads for load-time work: the caller's count (the cores the process may use), else every core the machine reports.
unsigned load_threads(const aglm_hal_program_desc *desc) {
  return desc->n_threads > 0 ? (unsigned)desc->n_threads : std::max(1u, std::thread::hardware_concurrency());
}

void copy_graph(const aglm_hal_graph &g, cpu_program *p) {
  p->assign(g);
  p->wdata.resize(g.n_weights);
  for (int32_t i = 0; i < g.n_weights; i++) p->wdata[i] = g.weights[i].data;
  p->wpacked.assign(g.n_weights, 0);
  p->wplugin.assign(g.n_weights, nullptr);
}

void release(const aglm_hal_program_desc *desc, int32_t w) {
  if (desc->release) desc->release(desc->release_user, w);
}

// Norm weights, biases and frequency factors are read as f32: convert any stored in another type once.
status_t convert_vectors(const aglm_hal_program_desc *desc, cpu_program *p, std::string *err) {
  for (size_t i = 0; i < p->weights.size(); i++) {
    const aglm_hal_weight &w = p->weights[i];
    if (!(w.uses & AGLM_WEIGHT_VECTOR) || w.type == AGLM_TYPE_F32) continue;
    const int64_t n = w.ne[0] * w.ne[1] * w.ne[2] * w.ne[3];
    aglm_aligned_buffer buf;
    if (!buf.allocate((size_t)n * sizeof(float))) return *err = "out of memory", AGLM_ERR_OUT_OF_MEMORY;
    if (!aglm_dequantize_row(w.type, p->wdata[i], buf.as<float>(), n))
      return *err = "tensor " + p->names[i] + ": cannot convert its type to f32", AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
    p->wdata[i] = buf.data();
    p->owned.push_back(std::move(buf));
    if (w.uses == AGLM_WEIGHT_VECTOR) release(desc, (int32_t)i);
  }
  return AGLM_OK;
}

// Where the kernel table has a layout of its own for a matmul weight (repack_size > 0), repacks it once into an owned
// 64-byte aligned buffer (weights spread over threads) and releases the core's copy, so peak memory is not file + copy.
// Weights that embed / embed_positions also gather rows of (a token table tied to the output) are repacked only when
// the table can read rows back (unpack_row); weights read in other ways keep the file layout.
status_t repack_weights(const aglm_hal_program_desc *desc, cpu_program *p, std::string *err) {
  const aglm_kernels *k = p->kernels;
  if (!k->repack_size || !k->repack) return AGLM_OK;
  struct job {
    size_t weight, bytes;
  };
  std::vector<job> jobs;
  for (size_t i = 0; i < p->weights.size(); i++) {
    const aglm_hal_weight &w = p->weights[i];
    const uint32_t readable = k->unpack_row ? AGLM_WEIGHT_MATMUL | AGLM_WEIGHT_ROWS : AGLM_WEIGHT_MATMUL;
    if (!(w.uses & AGLM_WEIGHT_MATMUL) || (w.uses & ~readable) || p->wplugin[i]) continue; // plugins read the GGUF layout
    const size_t bytes = k->repack_size(w.type, w.ne[1] * w.ne[2] * w.ne[3], w.ne[0]);
    if (bytes > 0) jobs.push_back({i, bytes});
  }
  std::vector<aglm_aligned_buffer> bufs(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::thread> workers;
  const unsigned n_threads = std::max(1u, std::min<unsigned>(load_threads(desc), (unsigned)jobs.size()));
  for (unsigned t = 0; t < n_threads && !jobs.empty(); t++) {
    workers.emplace_back([&] {
      for (size_t j; ok.load() && (j = next.fetch_add(1)) < jobs.size();) {
        const aglm_hal_weight &w = p->weights[jobs[j].weight];
        if (!bufs[j].allocate(jobs[j].bytes)) {
          ok = false;
          break;
        }
        k->repack(w.type, p->wdata[jobs[j].weight], bufs[j].data(), w.ne[1] * w.ne[2] * w.ne[3], w.ne[0]);
        // The source goes as soon as its copy is made, so peak memory is the copies plus the weights in flight, not
        // the file plus the copies (the core's release touches only this weight's pages or buffer).
        release(desc, (int32_t)jobs[j].weight);
      }
    });
  }
  for (auto &th : workers) th.join();
  // Weights repacked before a failure point at their new copies, so the program stays consistent either way.
  for (size_t j = 0; j < jobs.size(); j++) {
    if (!bufs[j].data()) continue;
    p->wdata[jobs[j].weight] = bufs[j].data();
    p->wpacked[jobs[j].weight] = 1;
    p->owned.push_back(std::move(bufs[j]));
  }
  if (!ok) return *err = "out of memory repacking the weights", AGLM_ERR_OUT_OF_MEMORY;
  return AGLM_OK;
}

status_t check_types(cpu_program *p, std::string *err) {
  for (const aglm_hal_op &op : p->ops) {
    if (op.kind != AGLM_OP_MATMUL && op.kind != AGLM_OP_EMBED && op.kind != AGLM_OP_EMBED_POSITIONS) continue;
    const aglm_hal_weight &w = p->weights[op.w[0]];
    const aglm_registered_kernel *plugin = op.kind == AGLM_OP_MATMUL ? p->wplugin[op.w[0]] : nullptr;
    const int act = plugin ? plugin->desc->act_type : p->kernels->matmul_act_type(w.type);
    if (act < 0)
      return *err = "tensor " + p->names[op.w[0]] + " has type " + std::to_string(w.type) + ", which this build cannot read yet",
             AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
    if (op.kind != AGLM_OP_MATMUL || act == AGLM_TYPE_F32) continue;
    // Activations are quantized to `act` (Q8_0, Q8_1 or Q8_K) per matmul: a table without quantize_row_act can only
    // produce Q8_0.
    const size_t qrow = aglm_row_bytes(act, w.ne[0]);
    if ((act != AGLM_TYPE_Q8_0 && !p->kernels->quantize_row_act) || qrow == 0)
      return *err = "tensor " + p->names[op.w[0]] + ": the " + p->kernels->name + " kernels cannot quantize its activations (type " +
                    std::to_string(act) + ")",
             AGLM_ERR_UNSUPPORTED_TENSOR_TYPE;
    p->max_qx_row_bytes = std::max<uint64_t>(p->max_qx_row_bytes, qrow);
  }
  return AGLM_OK;
}

// Whether the program can feed kernel `c` a matmul weight of k columns: its activation rows are whole blocks the
// table can quantize, and the plugin accepts the shape.
bool plugin_accepts(const cpu_program *p, const aglm_registered_kernel *c, int64_t k, int64_t m) {
  const int act = c->desc->act_type;
  if (aglm_row_bytes(act, k) == 0 || aglm_row_bytes(c->desc->weight_type, k) == 0) return false;
  if (act != AGLM_TYPE_F32 && act != AGLM_TYPE_Q8_0 && !p->kernels->quantize_row_act) return false;
  return !c->desc->supports || c->desc->supports(k, m) != 0;
}

// The planner's kernel choice: each matmul weight runs on the first plugin kernel registered for (matmul, its type,
// this backend) that accepts it, else on the table. The description says which kernels took how many weights.
void bind_plugin_kernels(cpu_program *p, const char *backend) {
  std::vector<std::pair<aglm_registered_kernel *, int>> used;
  int matmuls = 0;
  for (size_t i = 0; i < p->weights.size(); i++) {
    const aglm_hal_weight &w = p->weights[i];
    if (!(w.uses & AGLM_WEIGHT_MATMUL)) continue;
    matmuls++;
    for (aglm_registered_kernel *c : aglm_kernel_registry_find(AGLM_OP_MATMUL, w.type, backend)) {
      if (!plugin_accepts(p, c, w.ne[0], w.ne[1])) continue;
      p->wplugin[i] = c;
      auto it = std::find_if(used.begin(), used.end(), [&](const auto &u) { return u.first == c; });
      if (it == used.end()) used.push_back({c, 1});
      else it->second++;
      break;
    }
  }
  for (const auto &u : used)
    p->description += "; plugin kernel " + u.first->plugin + "/" + u.first->desc->name + " runs " + std::to_string(u.second) +
                      " of " + std::to_string(matmuls) + " matmul weights";
}

} // namespace

bool cpu_supports(const aglm_kernels *k, int32_t op, int32_t weight_type) {
  if (op < 0 || op >= AGLM_OP_COUNT) return false;
  if (weight_type < 0) return true;
  switch (op) {
    case AGLM_OP_MATMUL:
    case AGLM_OP_EMBED:
    case AGLM_OP_EMBED_POSITIONS: return k->matmul_act_type(weight_type) >= 0;
    default: return aglm_type_block_size(weight_type) != 0; // vectors are converted to f32 at load
  }
}

int32_t cpu_program_build(const aglm_hal_program_desc *desc, const aglm_kernels *kernels, const char *backend,
                          std::string description, std::unique_ptr<cpu_program> *out, std::string *err) {
  auto p = std::make_unique<cpu_program>();
  copy_graph(*desc->graph, p.get());
  p->kernels = kernels;
  p->description = std::move(description);
  bind_plugin_kernels(p.get(), backend);
  status_t st = check_types(p.get(), err);
  if (st == AGLM_OK) st = convert_vectors(desc, p.get(), err);
  if (st == AGLM_OK) st = repack_weights(desc, p.get(), err);
  if (st != AGLM_OK) return st;
  for (aglm_registered_kernel *c : p->wplugin)
    if (c) c->chosen.fetch_add(1, std::memory_order_relaxed);
  p->n_vocab = p->values[p->output].width;
  p->n_hidden = p->hidden >= 0 ? p->values[p->hidden].width : 0;
  *out = std::move(p);
  return AGLM_OK;
}
