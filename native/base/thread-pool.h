// A fixed pool of worker threads that runs parallel-for loops together with the calling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

class aglm_thread_pool {
 public:
  // fn(task, thread): task in [0, n_tasks), thread in [0, n_threads()).
  using task_fn = std::function<void(int64_t task, int thread)>;

  explicit aglm_thread_pool(int n_threads);
  ~aglm_thread_pool();
  aglm_thread_pool(const aglm_thread_pool &) = delete;
  aglm_thread_pool &operator=(const aglm_thread_pool &) = delete;

  int n_threads() const { return n_threads_; }
  // Runs fn for every task, spread over the workers and the caller; returns when all tasks are done.
  // Not re-entrant: one parallel_for at a time per pool.
  void parallel_for(int64_t n_tasks, const task_fn &fn);

 private:
  void worker_main(int thread);
  void run_tasks(uint32_t generation, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint32_t> generation_{0}; // bumped for each loop; idle workers wait for it to change
  std::atomic<int> sleeping_{0};         // workers blocked on wake_ (the caller notifies only if some are)
  std::atomic<bool> stop_{false};
  // The current loop. A task is claimed by a compare-and-swap on next_, which packs the loop's generation (high 32
  // bits) with the next task index (low 32), so a worker that wakes late can never claim a task of a later loop, and
  // fn_ / n_tasks_ cannot change while a claimed task runs (the caller waits for every task to finish).
  const task_fn *fn_ = nullptr;
  std::atomic<int64_t> n_tasks_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<int64_t> done_{0};
  // The caller, after spinning a while for tasks other threads still run, sleeps on done_cv_ (set: caller_waiting_);
  // the thread that finishes the last task wakes it. On a machine with more runnable threads than cores a preempted
  // worker then gets the core the caller would have burnt yielding (yield storms made a step 60x slower there).
  std::condition_variable done_cv_;
  std::atomic<int> caller_waiting_{0};
};
