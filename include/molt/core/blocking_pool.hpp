#pragma once
// A fixed set of threads for blocking work (handlers, SQLite) with a bounded wait queue.
// Over the bound, try_post says no at once: the caller answers Busy instead of queueing
// without limit. A task still waiting can be taken back (cancel, deadline) and frees its slot.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace molt::core {

// The cores this process may run on: its CPU affinity mask (taskset, cgroup cpusets), which
// std::thread::hardware_concurrency ignores; at least 1. Thread counts default to this.
unsigned usable_cores() noexcept;

class BlockingPool {
 public:
  using Task = std::function<void()>;
  using TaskId = std::uint64_t;

  // `max_queued` counts tasks waiting for a thread, not the ones running.
  BlockingPool(std::size_t threads, std::size_t max_queued);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `task`; nullopt when the queue is full or the pool is closed.
  std::optional<TaskId> try_post(Task task);
  // Removes a task that has not started. True when it was removed (it will never run).
  bool remove_queued(TaskId id);

  std::size_t queued() const;
  std::size_t running() const;
  // Waits until no task runs or waits, or `until` passes. True when idle.
  bool wait_idle(std::chrono::steady_clock::time_point until) const;
  std::size_t thread_count() const noexcept { return thread_count_; }
  std::size_t max_queued() const noexcept { return max_queued_; }

  // Stops accepting, lets queued and running tasks finish, joins the threads. Idempotent.
  void close();

 private:
  struct Entry {
    TaskId id;
    Task task;
  };
  void run_thread();

  const std::size_t thread_count_;
  const std::size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  mutable std::condition_variable idle_;
  std::deque<Entry> queue_;
  std::size_t running_ = 0;
  TaskId next_id_ = 1;
  bool closed_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace molt::core
