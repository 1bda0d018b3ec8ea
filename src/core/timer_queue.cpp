#include "molt/core/timer_queue.hpp"

namespace molt::core {

TimerQueue::TimerQueue() : thread_([this] { run(); }) {}

TimerQueue::~TimerQueue() {
  stop();
}

TimerQueue::TimerId TimerQueue::schedule(Clock::time_point at, Callback callback) {
  bool earliest;
  TimerId id;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    auto it = entries_.emplace(Key{at, id}, std::move(callback)).first;
    index_.emplace(id, at);
    earliest = it == entries_.begin();
  }
  if (earliest) changed_.notify_one();
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
      changed_.wait(lock);
      continue;
    }
    auto first = entries_.begin();
    // A copy: the entry may be cancelled (erased) while we wait.
    const Clock::time_point due = first->first.first;
    if (Clock::now() < due) {
      changed_.wait_until(lock, due);
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
