#include "molt/core/timer_queue.hpp"

namespace molt::core {

TimerQueue::TimerQueue() : thread_([this] { run(); }) {}

TimerQueue::~TimerQueue() {
  stop();
}

TimerQueue::TimerId TimerQueue::schedule(Clock::time_point at, Callback callback) {
  bool wake;
  TimerId id;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    entries_.emplace(Key{at, id}, std::move(callback));
    index_.emplace(id, at);
    wake = at < next_look_;
    // The thread reads the queue before it sleeps again: one wake-up call is enough.
    if (wake) next_look_ = Clock::time_point::min();
  }
  if (wake) changed_.notify_one();
  return id;
}

bool TimerQueue::cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  entries_.erase(Key{it->second, id});
  index_.erase(it);
  return true;
}

std::size_t TimerQueue::pending() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::uint64_t TimerQueue::wakeups() const {
  std::lock_guard lock(mutex_);
  return wakeups_;
}

void TimerQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    entries_.clear();
    index_.clear();
  }
  changed_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void TimerQueue::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (entries_.empty()) {
      next_look_ = Clock::time_point::max();
      changed_.wait(lock);
      ++wakeups_;
      next_look_ = Clock::time_point::min();
      continue;
    }
    auto first = entries_.begin();
    // A copy: the entry may be cancelled (erased) while we wait.
    const Clock::time_point due = first->first.first;
    if (Clock::now() < due) {
      // A cancelled entry's time may pass with no work to do: a cheap look every deadline
      // period, instead of a wake-up call for each timer scheduled meanwhile.
      next_look_ = due;
      changed_.wait_until(lock, due);
      ++wakeups_;
      next_look_ = Clock::time_point::min();
      continue;
    }
    Callback callback = std::move(first->second);
    index_.erase(first->first.second);
    entries_.erase(first);
    lock.unlock();
    callback();
    lock.lock();
  }
}

}  // namespace molt::core
