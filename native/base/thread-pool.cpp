// Thread pool: between loops a worker spins for a short while (a forward pass issues hundreds of loops, each
// microseconds apart) and then sleeps on a condition variable, so an idle context costs no CPU. The pool never has
// more threads than the caller asked for (the caller itself is thread 0), so spinning never competes with more
// runnable threads than there are workers.
#include "base/thread-pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void aglm_cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void aglm_cpu_relax() { __asm__ __volatile__("yield"); }
#else
static inline void aglm_cpu_relax() {}
#endif

// How long a worker keeps spinning for the next loop before it sleeps.
static constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);

aglm_thread_pool::aglm_thread_pool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int t = 1; t < n_threads_; t++) workers_.emplace_back([this, t] { worker_main(t); });
}

aglm_thread_pool::~aglm_thread_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto &w : workers_) w.join();
}

void aglm_thread_pool::run_tasks(uint32_t generation, int thread) {
  for (;;) {
    uint64_t v = next_.load(std::memory_order_acquire);
    if ((uint32_t)(v >> 32) != generation) return;
    const uint32_t task = (uint32_t)v;
    if ((int64_t)task >= n_tasks_.load(std::memory_order_acquire)) return;
    if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    (*fn_)(task, thread);
    // seq_cst with the caller's caller_waiting_ store: one of the two sees the other (no lost wake-up).
    if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == n_tasks_.load(std::memory_order_relaxed) &&
        caller_waiting_.load(std::memory_order_seq_cst)) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_cv_.notify_all();
    }
  }
}

void aglm_thread_pool::worker_main(int thread) {
  uint32_t seen = 0;
  for (;;) {
    // Spin for the next loop, then sleep.
    auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      aglm_cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > until) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_tasks(seen, thread);
  }
}

void aglm_thread_pool::parallel_for(int64_t n_tasks, const task_fn &fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; t++) fn(t, 0);
    return;
  }
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  // Close the previous loop's counter first: a worker still in run_tasks for it may have read its last `next_` and be
  // about to compare it with n_tasks_. Had n_tasks_ grown first, its compare-exchange could still succeed and run a
  // phantom task of this loop (an extra done_, and a caller waiting forever). The release store of n_tasks_ orders the
  // closing before it: a worker that reads the new count then fails its compare-exchange and sees the new generation.
  next_.store(((uint64_t)gen << 32) | 0xFFFFFFFFu, std::memory_order_relaxed);
  fn_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  n_tasks_.store(n_tasks, std::memory_order_release);
  next_.store((uint64_t)gen << 32, std::memory_order_release);
  {
    // Publishing under the mutex orders it with a worker about to sleep (it re-checks the generation under the lock).
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.store(gen, std::memory_order_release);
  }
  if (sleeping_.load(std::memory_order_seq_cst) > 0) wake_.notify_all();
  run_tasks(gen, 0);
  // Wait only for tasks other threads claimed and are still running; a worker that has not woken up yet is not
  // waited for (it will find no task left to claim).
  // Spin as long as an idle worker does (the usual case: the others finish within microseconds), then sleep until the
  // last task is done.
  const auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  for (int spins = 0; done_.load(std::memory_order_acquire) != n_tasks; spins++) {
    if (spins < 256 || (spins % 64 != 0) || std::chrono::steady_clock::now() < until) {
      aglm_cpu_relax();
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    caller_waiting_.store(1, std::memory_order_seq_cst);
    done_cv_.wait(lock, [&] { return done_.load(std::memory_order_seq_cst) == n_tasks; });
    caller_waiting_.store(0, std::memory_order_relaxed);
    break;
  }
}
