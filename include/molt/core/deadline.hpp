#pragma once
// A point in time after which work must stop. "No deadline" is explicit, never a huge number.

#include <chrono>
#include <cstdint>

namespace molt::core {

using Clock = std::chrono::steady_clock;

class Deadline {
 public:
  Deadline() = default;  // never expires
  explicit Deadline(Clock::time_point at) : at_(at), set_(true) {}

  static Deadline none() { return {}; }
  // A duration beyond the clock's range gives the latest representable time, never a wrap.
  static Deadline after(Clock::duration d, Clock::time_point now = Clock::now()) {
    if (d > Clock::time_point::max() - now) return Deadline(Clock::time_point::max());
    return Deadline(now + d);
  }
  // 0 means "no deadline", as in the worker protocol's timeout_ms. `ms` comes from clients, so
  // any u64 must work: huge values saturate instead of overflowing into the past.
  static Deadline after_ms(std::uint64_t ms, Clock::time_point now = Clock::now()) {
    if (ms == 0) return none();
    const auto room =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    if (ms >= static_cast<std::uint64_t>(room.count())) return Deadline(Clock::time_point::max());
    return after(std::chrono::milliseconds(static_cast<std::int64_t>(ms)), now);
  }

  bool is_set() const noexcept { return set_; }
  Clock::time_point at() const noexcept { return set_ ? at_ : Clock::time_point::max(); }
  bool expired(Clock::time_point now = Clock::now()) const noexcept { return set_ && now >= at_; }
  // Time left, never negative; Clock::duration::max() when unset.
  Clock::duration remaining(Clock::time_point now = Clock::now()) const noexcept {
    if (!set_) return Clock::duration::max();
    return now >= at_ ? Clock::duration::zero() : at_ - now;
  }
  // The earlier of two deadlines.
  Deadline min(const Deadline& other) const noexcept {
    if (!set_) return other;
    if (!other.set_) return *this;
    return at_ <= other.at_ ? *this : other;
  }

 private:
  Clock::time_point at_{};
  bool set_ = false;
};

}  // namespace molt::core
