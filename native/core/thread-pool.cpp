// Thread pool: workers sleep on a condition variable between loops, spin briefly for the next one, and never
// outnumber the threads the caller asked for (the caller itself is thread 0).
#include "core/thread-pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void aglm_cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void aglm_cpu_relax() { __asm__ __volatile__("yield"); }
#else
static inline void aglm_cpu_relax() {}
#endif

aglm_thread_pool::aglm_thread_pool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int t = 1; t < n_threads_; t++) workers_.emplace_back([this, t] { worker_main(t); });
}

aglm_thread_pool::~aglm_thread_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto &w : workers_) w.join();
}

void aglm_thread_pool::run_tasks(int thread) {
  for (;;) {
    int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*fn_)(task, thread);
  }
}

void aglm_thread_pool::worker_main(int thread) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_tasks(thread);
    active_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void aglm_thread_pool::parallel_for(int64_t n_tasks, const task_fn &fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; t++) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    active_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_++;
  }
  wake_.notify_all();
  run_tasks(0);
  // The workers finish the tasks they already took; wait for them with a short spin, then yield.
  for (int spins = 0; active_workers_.load(std::memory_order_acquire) != 0; spins++) {
    if (spins < 4096) aglm_cpu_relax();
    else std::this_thread::yield();
  }
}
