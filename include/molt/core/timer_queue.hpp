#pragma once
// One thread that runs callbacks at their time: the worker's deadlines. Entries are kept
// ordered and removed when cancelled, so memory follows what is pending, not what was ever
// scheduled.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "molt/core/deadline.hpp"

namespace molt::core {

class TimerQueue {
 public:
  using Callback = std::function<void()>;
  // Identifies a scheduled callback; 0 is never used.
  using TimerId = std::uint64_t;

  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  TimerId schedule(Clock::time_point at, Callback callback);
  // True when the callback had not started and never will.
  bool cancel(TimerId id);
  std::size_t pending() const;
  // Drops what is pending and joins the thread. Idempotent.
  void stop();

 private:
  void run();

  using Key = std::pair<Clock::time_point, TimerId>;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<Key, Callback> entries_;
  std::map<TimerId, Clock::time_point> index_;
  TimerId next_id_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace molt::core
