#pragma once
// When a failed job runs again: exponential backoff with jitter, so that jobs that failed
// together (a database restart, an upstream outage) do not all come back at the same moment.

#include <chrono>

namespace molt::jobs {

struct RetryPolicy {
  int max_attempts = 5;  // runs in all, the first included; 1 = never retried
  std::chrono::milliseconds base_delay{1000};
  std::chrono::milliseconds max_delay{std::chrono::minutes(10)};  // at most 366 days
  // How much of each delay is random: 0 keeps it exact, 1 draws it anywhere from zero to the
  // full delay ("full jitter"). Between: the delay shrinks by up to this fraction.
  double jitter = 0.5;

  // The wait after the `failed`-th failed run (1 for the first): base_delay * 2^(failed-1),
  // at most max_delay, less jitter * random01 of it. random01 is in [0, 1).
  std::chrono::milliseconds delay_after(int failed, double random01) const noexcept;
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};

}  // namespace molt::jobs
