#pragma once
// Cancellation, one concept everywhere (DESIGN.md §3): a CancelSource owns the right to
// cancel; CancelTokens observe it. A child source is cancelled when its parent is, with the
// parent's reason. Callbacks run exactly once, on the cancelling thread (or at once when the
// token is already cancelled); a registration's destructor waits for a running callback, so
// a callback never outlives what it captured.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string_view>

#include "molt/core/status.hpp"

namespace molt::core {

enum class CancelReason : std::uint8_t { None, Cancelled, Timeout, Shutdown, Disconnected };

std::string_view to_string(CancelReason reason) noexcept;
// The status a piece of work answers when it stops for `reason` (Timeout or Cancelled).
StatusCode status_for(CancelReason reason) noexcept;

namespace detail {
struct CancelState;
}

class CancelRegistration {
 public:
  CancelRegistration() = default;
  CancelRegistration(CancelRegistration&&) noexcept = default;
  CancelRegistration& operator=(CancelRegistration&&) noexcept = default;
  ~CancelRegistration();

  // Unregisters now; waits if the callback is running on another thread.
  void reset();

 private:
  friend class CancelToken;
  using Callback = std::stop_callback<std::function<void()>>;
  std::shared_ptr<detail::CancelState> state_;  // keeps the stop state alive
  std::unique_ptr<Callback> callback_;
};

class CancelToken {
 public:
  CancelToken() = default;  // a token that is never cancelled

  bool cancelled() const noexcept;
  CancelReason reason() const noexcept;
  // Whether anything can ever cancel this token.
  bool can_be_cancelled() const noexcept { return state_ != nullptr; }

  // Runs `callback` once when cancelled; at once, on this thread, when already cancelled.
  [[nodiscard]] CancelRegistration on_cancel(std::function<void()> callback) const;

  // Throws core::Error(Timeout or Cancelled) when cancelled.
  void throw_if_cancelled() const;

 private:
  friend class CancelSource;
  explicit CancelToken(std::shared_ptr<detail::CancelState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::CancelState> state_;
};

class CancelSource {
 public:
  CancelSource();
  // A child: cancelled (with the parent's reason) when `parent` is.
  explicit CancelSource(const CancelToken& parent);

  CancelToken token() const { return CancelToken(state_); }
  // Returns true when this call cancelled the source, false when it already was.
  bool cancel(CancelReason reason = CancelReason::Cancelled);
  bool cancelled() const noexcept;
  CancelReason reason() const noexcept;

 private:
  std::shared_ptr<detail::CancelState> state_;
};

}  // namespace molt::core
