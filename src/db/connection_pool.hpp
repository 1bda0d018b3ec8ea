#pragma once
// A fixed set of connections shared by both backends, handed out to waiters in arrival order.
// Waiting is bounded by the pool wait and the call's deadline and stops at once on
// cancellation: Busy when the wait runs out, Timeout when the deadline did, Cancelled (or the
// token's reason) when cancelled. `Connection` needs only `bool is_open() const`.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"
#include "molt/db/database.hpp"

namespace molt::db::detail {

template <class Connection>
class ConnectionPool {
 public:
  void add(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mutex_);
    free_.push_back(c.get());
    all_.push_back(std::move(c));
  }

  // The right to use one connection; gives it back when destroyed.
  class Lease {
   public:
    Lease(ConnectionPool& pool, Connection* c) : pool_(&pool), c_(c) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), c_(std::exchange(other.c_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (c_) pool_->release(c_);
    }
    Connection& operator*() const { return *c_; }

   private:
    ConnectionPool* pool_;
    Connection* c_;
  };

  Lease acquire(core::Deadline deadline, const core::CancelToken& cancel,
                std::chrono::milliseconds pool_wait) {
    Waiter waiter;
    // Registered before taking the lock: it runs at once when the token already fired.
    auto wake = cancel.on_cancel([this, &waiter] {
      std::lock_guard lock(mutex_);
      waiter.ready.notify_all();
    });
    std::unique_lock lock(mutex_);
    if (waiters_.empty() && !free_.empty() && !cancel.cancelled()) {
      Connection* c = free_.back();
      free_.pop_back();
      return Lease(*this, c);
    }
    const auto until = deadline.min(core::Deadline::after(pool_wait));
    waiters_.push_back(&waiter);
    waiter.ready.wait_until(lock, until.at(), [&] { return waiter.granted || cancel.cancelled(); });
    if (waiter.granted && !cancel.cancelled()) return Lease(*this, waiter.granted);
    if (waiter.granted)
      hand_over(waiter.granted);
    else
      waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
    lock.unlock();
    cancel.throw_if_cancelled();
    if (deadline.expired())
      throw core::Error(core::StatusCode::Timeout,
                        "deadline passed while waiting for a database connection");
    throw core::Error(core::StatusCode::Busy, "no database connection free within " +
                                                  std::to_string(pool_wait.count()) + " ms");
  }

  PoolStats stats() const {
    std::lock_guard lock(mutex_);
    std::size_t open = 0;
    for (const auto& c : all_) open += c->is_open() ? 1 : 0;
    return {open, all_.size() - free_.size(), waiters_.size()};
  }

 private:
  struct Waiter {
    std::condition_variable ready;
    Connection* granted = nullptr;
  };

  void release(Connection* c) {
    std::lock_guard lock(mutex_);
    hand_over(c);
  }
  // Gives `c` to the longest waiter, or back to the free list. Called with the lock held,
  // which also keeps the waiter (on its own stack) alive until it wakes.
  void hand_over(Connection* c) {
    if (waiters_.empty()) {
      free_.push_back(c);
      return;
    }
    Waiter* first = waiters_.front();
    waiters_.pop_front();
    first->granted = c;
    first->ready.notify_one();
  }

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> free_;
  std::deque<Waiter*> waiters_;
};

}  // namespace molt::db::detail
