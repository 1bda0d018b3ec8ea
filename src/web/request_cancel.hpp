// The cancellation of the request a connection is answering, made only when someone asks for
// its token. Most handlers never do, and a CancelSource costs two allocations and a few atomic
// operations. A cancel that comes before the token is remembered, and the source made later
// starts cancelled with that reason, so nothing can tell the difference.
#pragma once

#include <optional>

#include "molt/core/cancel.hpp"

namespace molt::web::detail {

class RequestCancel {
 public:
  // A new request: not cancelled, no source yet.
  void begin() {
    active_ = true;
    early_reason_ = core::CancelReason::None;
  }
  // The request is answered: later cancels concern nobody (tokens handed out keep their state).
  void end() {
    active_ = false;
    source_.reset();
  }
  bool active() const { return active_; }

  core::CancelToken token() {
    if (!source_) {
      source_.emplace();
      if (early_reason_ != core::CancelReason::None) source_->cancel(early_reason_);
    }
    return source_->token();
  }

  void cancel(core::CancelReason reason) {
    if (!active_) return;
    if (source_) {
      source_->cancel(reason);
    } else if (early_reason_ == core::CancelReason::None) {
      early_reason_ = reason;
    }
  }

  core::CancelReason reason() const { return source_ ? source_->reason() : early_reason_; }

 private:
  std::optional<core::CancelSource> source_;
  core::CancelReason early_reason_ = core::CancelReason::None;
  bool active_ = false;
};

}  // namespace molt::web::detail
