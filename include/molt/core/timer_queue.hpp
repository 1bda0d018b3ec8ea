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
  // How often the thread has woken up so far: a test can see that timers scheduled behind
  // the one it waits for leave it asleep.
  std::uint64_t wakeups() const;
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
  // When the thread will look at the queue again on its own: max while it waits with nothing
  // to do, min while it is awake. A timer due at or after this needs no wake-up call, which
  // spares the thread one wake-up per call when deadlines are scheduled and cancelled in turn
  // (the worker's one-call-at-a-time case).
  Clock::time_point next_look_ = Clock::time_point::min();
  std::uint64_t wakeups_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace molt::core
