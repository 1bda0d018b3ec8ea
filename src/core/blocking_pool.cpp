#include "molt/core/blocking_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace molt::core {

unsigned usable_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<unsigned>(count);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

BlockingPool::BlockingPool(std::size_t threads, std::size_t max_queued)
    : thread_count_(std::max<std::size_t>(threads, 1)), max_queued_(max_queued) {
  threads_.reserve(thread_count_);
  for (std::size_t i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { run_thread(); });
}

BlockingPool::~BlockingPool() {
  close();
}

std::optional<BlockingPool::TaskId> BlockingPool::try_post(Task task) {
  TaskId id;
  {
    std::lock_guard lock(mutex_);
    // A task can start at once when a thread is idle, so only waiting tasks count.
    const std::size_t idle = thread_count_ - std::min(thread_count_, running_);
    if (closed_ || queue_.size() >= max_queued_ + idle) return std::nullopt;
    id = next_id_++;
    queue_.push_back({id, std::move(task)});
  }
  wake_.notify_one();
  return id;
}

bool BlockingPool::remove_queued(TaskId id) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(queue_.begin(), queue_.end(), [id](const Entry& e) { return e.id == id; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

std::size_t BlockingPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t BlockingPool::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

bool BlockingPool::wait_idle(std::chrono::steady_clock::time_point until) const {
  std::unique_lock lock(mutex_);
  return idle_.wait_until(lock, until, [this] { return running_ == 0 && queue_.empty(); });
}

void BlockingPool::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_ && threads_.empty()) return;
    closed_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  std::lock_guard lock(mutex_);
  threads_.clear();
}

void BlockingPool::run_thread() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return closed_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closed and drained
    Task task = std::move(queue_.front().task);
    queue_.pop_front();
    ++running_;
    lock.unlock();
    task();  // tasks own their error handling; an escaping exception terminates, loudly
    task = nullptr;
    lock.lock();
    --running_;
    if (running_ == 0 && queue_.empty()) idle_.notify_all();
  }
}

}  // namespace molt::core
