// A memory read-bandwidth probe: a 64-byte aligned buffer much larger than the caches, touched once, then read in
// full several times by `threads` threads, each summing its slice with independent accumulators (so the loop is
// limited by loads, not by an add chain). The best pass is reported, in GB/s (10^9 bytes/s). Plain C++ with no ISA
// intrinsics: the compiler's baseline vectorization is enough to saturate DRAM from one or two cores.
#include "bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "common.h"
#include "base/aligned.h"

namespace {

// Sum of a range of uint64_t with 8 independent accumulators; the result is used so the loads are not elided.
uint64_t sum_range(const uint64_t *p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 += p[i + 0];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
    a4 += p[i + 4];
    a5 += p[i + 5];
    a6 += p[i + 6];
    a7 += p[i + 7];
  }
  for (; i < n; i++) a0 += p[i];
  return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

class bandwidth_worker : public Napi::AsyncWorker {
 public:
  bandwidth_worker(Napi::Env env, size_t bytes, int threads, int passes)
      : Napi::AsyncWorker(env, "aglm.measureReadBandwidth"), bytes_(bytes), threads_(threads), passes_(passes),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    const size_t words = bytes_ / sizeof(uint64_t);
    aglm_aligned_buffer mem;
    if (words == 0 || !mem.allocate(words * sizeof(uint64_t))) {
      SetError("measureReadBandwidth: could not allocate the buffer");
      return;
    }
    uint64_t *buf = mem.as<uint64_t>();
    // Fill it (the allocation already touched every page), so the reads below are of real, distinct data.
    auto slice = [&](int t, size_t *lo, size_t *hi) {
      size_t per = (words / threads_ + 7) & ~size_t(7);
      *lo = std::min(words, per * t);
      *hi = t == threads_ - 1 ? words : std::min(words, per * (t + 1));
    };
    {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads_; t++)
        pool.emplace_back([&, t] {
          size_t lo, hi;
          slice(t, &lo, &hi);
          for (size_t i = lo; i < hi; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
        });
      for (auto &th : pool) th.join();
    }
    std::atomic<uint64_t> sink{0};
    double best = 0;
    for (int pass = 0; pass < passes_; pass++) {
      std::atomic<int> ready{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> pool;
      for (int t = 0; t < threads_; t++)
        pool.emplace_back([&, t] {
          size_t lo, hi;
          slice(t, &lo, &hi);
          ready.fetch_add(1);
          while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
          sink.fetch_add(sum_range(buf + lo, hi - lo), std::memory_order_relaxed);
        });
      while (ready.load() < threads_) std::this_thread::yield();
      auto t0 = std::chrono::steady_clock::now();
      go.store(true, std::memory_order_release);
      for (auto &th : pool) th.join();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s > 0) best = std::max(best, (double)(words * sizeof(uint64_t)) / s / 1e9);
    }
    sink_ = sink.load();
    result_ = best;
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error &e) override {
    deferred_.Reject(aglm_error(Env(), AGLM_ERR_OUT_OF_MEMORY, e.Message()).Value());
  }

 private:
  size_t bytes_;
  int threads_, passes_;
  double result_ = 0;
  uint64_t sink_ = 0;
  Napi::Promise::Deferred deferred_;
};

// measureReadBandwidth(bytes = 1 GiB, threads = 1, passes = 5) -> Promise<number> (GB/s)
Napi::Value measure_read_bandwidth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double bytes = 1073741824.0, threads = 1, passes = 5;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: bytes must be a number");
    bytes = info[0].As<Napi::Number>().DoubleValue();
  }
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: threads must be a number");
    threads = info[1].As<Napi::Number>().DoubleValue();
  }
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsNumber()) return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: passes must be a number");
    passes = info[2].As<Napi::Number>().DoubleValue();
  }
  if (!(bytes >= 1 << 20 && bytes <= 64.0 * (1ull << 30)) || bytes != (double)(uint64_t)bytes)
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: bytes must be an integer from 1 MiB to 64 GiB");
  if (!(threads >= 1 && threads <= 1024) || threads != (double)(int)threads)
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: threads must be an integer from 1 to 1024");
  if (!(passes >= 1 && passes <= 100) || passes != (double)(int)passes)
    return aglm_throw(env, AGLM_ERR_INVALID_ARGUMENT, "measureReadBandwidth: passes must be an integer from 1 to 100");
  auto *w = new bandwidth_worker(env, (size_t)bytes, (int)threads, (int)passes);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

} // namespace

void aglm_bandwidth_init(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, measure_read_bandwidth, "measureReadBandwidth"));
}
