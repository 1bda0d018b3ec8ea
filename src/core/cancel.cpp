#include "molt/core/cancel.hpp"

#include <optional>

namespace molt::core {
namespace detail {

struct CancelState {
  std::atomic<CancelReason> reason{CancelReason::None};
  std::stop_source stop;
  // Set for child sources: the parent's state and our callback registered on it.
  std::shared_ptr<CancelState> parent;
  std::optional<std::stop_callback<std::function<void()>>> parent_link;

  bool cancel(CancelReason why) {
    CancelReason expected = CancelReason::None;
    if (!reason.compare_exchange_strong(expected, why, std::memory_order_acq_rel)) return false;
    stop.request_stop();
    return true;
  }
};

}  // namespace detail

std::string_view to_string(CancelReason reason) noexcept {
  switch (reason) {
    case CancelReason::None:
      return "none";
    case CancelReason::Cancelled:
      return "cancelled";
    case CancelReason::Timeout:
      return "timeout";
    case CancelReason::Shutdown:
      return "shutdown";
    case CancelReason::Disconnected:
      return "disconnected";
  }
  return "unknown";
}

StatusCode status_for(CancelReason reason) noexcept {
  return reason == CancelReason::Timeout ? StatusCode::Timeout : StatusCode::Cancelled;
}

CancelRegistration::~CancelRegistration() {
  reset();
}

void CancelRegistration::reset() {
  callback_.reset();  // std::stop_callback's destructor waits for a running callback
  state_.reset();
}

bool CancelToken::cancelled() const noexcept {
  return state_ && state_->reason.load(std::memory_order_acquire) != CancelReason::None;
}

CancelReason CancelToken::reason() const noexcept {
  return state_ ? state_->reason.load(std::memory_order_acquire) : CancelReason::None;
}

CancelRegistration CancelToken::on_cancel(std::function<void()> callback) const {
  CancelRegistration registration;
  if (!state_) return registration;
  registration.state_ = state_;
  registration.callback_ =
      std::make_unique<CancelRegistration::Callback>(state_->stop.get_token(), std::move(callback));
  return registration;
}

void CancelToken::throw_if_cancelled() const {
  const CancelReason why = reason();
  if (why == CancelReason::None) return;
  const StatusCode code = status_for(why);
  throw Error(code, code == StatusCode::Timeout ? "deadline exceeded" : "cancelled");
}

CancelSource::CancelSource() : state_(std::make_shared<detail::CancelState>()) {}

CancelSource::CancelSource(const CancelToken& parent) : CancelSource() {
  if (!parent.state_) return;
  state_->parent = parent.state_;
  // The link captures a raw pointer: it is a member of the child state and is destroyed (and
  // so unregistered, waiting for a running call) before the rest of that state.
  detail::CancelState* child = state_.get();
  detail::CancelState* up = parent.state_.get();
  state_->parent_link.emplace(up->stop.get_token(), std::function<void()>([child, up] {
                                child->cancel(up->reason.load(std::memory_order_acquire));
                              }));
}

bool CancelSource::cancel(CancelReason reason) {
  if (reason == CancelReason::None) reason = CancelReason::Cancelled;
  return state_->cancel(reason);
}

bool CancelSource::cancelled() const noexcept {
  return state_->reason.load(std::memory_order_acquire) != CancelReason::None;
}

CancelReason CancelSource::reason() const noexcept {
  return state_->reason.load(std::memory_order_acquire);
}

}  // namespace molt::core
