// Binding the graph's weights to the mapped model file, load-time conversion, and release.
#include "core/weights.h"

#include "core/convert.h"
#include "kernels/kernels.h"

void aglm_model_weights::release(int w) {
  if (w < 0 || (size_t)w >= data.size() || !data[w]) return;
  if (owned[w].data()) owned[w].allocate(0);
  else aglm_mapped_release(file->data(), (uint64_t)((const uint8_t *)data[w] - file->data()), nbytes[w]);
  data[w] = nullptr;
}

uint64_t aglm_model_weights::owned_bytes() const {
  uint64_t n = 0;
  for (const aglm_aligned_buffer &b : owned) n += b.size();
  return n;
}

aglm_result aglm_weights_bind(const aglm_graph &g, const aglm_mapped_file &file, int n_threads, aglm_model_weights *out) {
  const size_t n = g.weights.size();
  out->file = &file;
  out->data.assign(n, nullptr);
  out->type.assign(n, 0);
  out->nbytes.assign(n, 0);
  out->owned.clear();
  out->owned.resize(n);
  for (size_t i = 0; i < n; i++) {
    const aglm_weight &w = g.weights[i];
    const size_t bs = aglm_type_block_size(w.type);
    if (bs == 0)
      return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + " has unknown type " + std::to_string(w.type));
    if (w.ne[0] % (int64_t)bs)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": row length is not a multiple of its block size");
    const uint64_t expect = (uint64_t)aglm_row_bytes(w.type, w.ne[0]) * (uint64_t)(w.ne[1] * w.ne[2] * w.ne[3]);
    if (w.nbytes != expect)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": byte size disagrees with its shape");
    if (w.offset > file.size() || w.nbytes > file.size() - w.offset)
      return aglm_result::fail(AGLM_ERR_GGUF_TENSOR_OUT_OF_BOUNDS, "tensor " + w.name + " lies outside the file");
    out->data[i] = file.data() + w.offset;
    out->type[i] = w.type;
    out->nbytes[i] = w.nbytes;
  }
  for (size_t i = 0; i < n; i++) {
    const aglm_weight &w = g.weights[i];
    if (w.to < 0 || w.to == w.type) continue;
    const int64_t k = w.ne[0], rows = w.nelements() / w.ne[0];
    const size_t dst_row = aglm_row_bytes(w.to, k);
    if (dst_row == 0)
      return aglm_result::fail(AGLM_ERR_INVALID_ARGUMENT, "tensor " + w.name + ": its rows cannot be stored as type " + std::to_string(w.to));
    aglm_aligned_buffer buf;
    if (!buf.allocate(dst_row * rows)) return aglm_result::fail(AGLM_ERR_OUT_OF_MEMORY, "out of memory converting " + w.name);
    if (!aglm_convert_rows(w.type, out->data[i], w.to, buf.data(), rows, k, n_threads))
      return aglm_result::fail(AGLM_ERR_UNSUPPORTED_TENSOR_TYPE, "tensor " + w.name + ": cannot convert type " +
                                                                     std::to_string(w.type) + " to " + std::to_string(w.to));
    out->release((int)i); // the mapped pages the copy replaces
    out->data[i] = buf.data();
    out->type[i] = w.to;
    out->nbytes[i] = dst_row * rows;
    out->owned[i] = std::move(buf);
  }
  return aglm_result::ok();
}
