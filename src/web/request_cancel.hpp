// The cancellation of the request a connection is answering, made only when someone asks for
// its token. Most handlers never do, and a CancelSource costs two allocations and a few atomic
// operations. A cancel that comes before the token is remembered, and the source made later
// starts cancelled with that reason, so nothing can tell the difference.
//
// The connection cancels on its I/O thread while the handler may ask for the token from
// another one (`ctx.token()` inside run_blocking's function, on the pool): a lock keeps the
// two apart. It is taken a few times a request, held for a few instructions and contended
// next to never, so a spin lock (one atomic exchange) rather than a mutex (a call and more,
// 1 % of a /json request).
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "molt/core/cancel.hpp"

namespace molt::web::detail {

class SpinLock {
 public:
  void lock() noexcept {
    while (held_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  }
  void unlock() noexcept { held_.clear(std::memory_order_release); }

 private:
  std::atomic_flag held_;
};

class RequestCancel {
 public:
  // A new request: not cancelled, no source yet.
  void begin() {
    std::lock_guard guard(lock_);
    active_ = true;
    early_reason_ = core::CancelReason::None;
  }
  // The request is answered: later cancels concern nobody (tokens handed out keep their state).
  void end() {
    std::lock_guard guard(lock_);
    active_ = false;
    source_.reset();
  }
  bool active() const {
    std::lock_guard guard(lock_);
    return active_;
  }

  // Sets `out` to the request's token unless an earlier call did: for a Ctx's copy, which
  // threads of one handler may ask for at once.
  void make_token(core::CancelToken& out) {
    std::lock_guard guard(lock_);
    if (!out.can_be_cancelled()) out = token_locked();
  }

  void cancel(core::CancelReason reason) {
    std::unique_lock guard(lock_);
    if (!active_) return;
    if (!source_) {
      if (early_reason_ == core::CancelReason::None) early_reason_ = reason;
      return;
    }
    // The token's callbacks run outside the lock: one may ask for the token again.
    core::CancelSource source = *source_;
    guard.unlock();
    source.cancel(reason);
  }

  core::CancelReason reason() const {
    std::lock_guard guard(lock_);
    return source_ ? source_->reason() : early_reason_;
  }

 private:
  core::CancelToken token_locked() {
    if (!source_) {
      source_.emplace();
      if (early_reason_ != core::CancelReason::None) source_->cancel(early_reason_);
    }
    return source_->token();
  }

  mutable SpinLock lock_;
  std::optional<core::CancelSource> source_;
  core::CancelReason early_reason_ = core::CancelReason::None;
  bool active_ = false;
};

}  // namespace molt::web::detail
