// The cancellation of the request a connection is answering, made only when someone asks for
// its token. Most handlers never do, and a CancelSource costs two allocations and a few atomic
// operations. A cancel that comes before the token is remembered, and the source made later
// starts cancelled with that reason, so nothing can tell the difference.
//
// The connection cancels on its I/O thread while the handler may ask for the token from
// another one (`ctx.token()` inside run_blocking's function, on the pool): a mutex, taken a
// few times a request and never contended in practice, keeps the two apart.
#pragma once

#include <mutex>
#include <optional>

#include "molt/core/cancel.hpp"

namespace molt::web::detail {

class RequestCancel {
 public:
  // A new request: not cancelled, no source yet.
  void begin() {
    std::lock_guard lock(mutex_);
    active_ = true;
    early_reason_ = core::CancelReason::None;
  }
  // The request is answered: later cancels concern nobody (tokens handed out keep their state).
  void end() {
    std::lock_guard lock(mutex_);
    active_ = false;
    source_.reset();
  }
  bool active() const {
    std::lock_guard lock(mutex_);
    return active_;
  }

  core::CancelToken token() {
    std::lock_guard lock(mutex_);
    if (!source_) {
      source_.emplace();
      if (early_reason_ != core::CancelReason::None) source_->cancel(early_reason_);
    }
    return source_->token();
  }

  void cancel(core::CancelReason reason) {
    std::unique_lock lock(mutex_);
    if (!active_) return;
    if (!source_) {
      if (early_reason_ == core::CancelReason::None) early_reason_ = reason;
      return;
    }
    // The token's callbacks run outside the lock: one may ask for the token again.
    core::CancelSource source = *source_;
    lock.unlock();
    source.cancel(reason);
  }

  core::CancelReason reason() const {
    std::lock_guard lock(mutex_);
    return source_ ? source_->reason() : early_reason_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<core::CancelSource> source_;
  core::CancelReason early_reason_ = core::CancelReason::None;
  bool active_ = false;
};

}  // namespace molt::web::detail
