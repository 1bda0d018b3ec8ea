#include "molt/jobs/retry_policy.hpp"

#include <algorithm>
#include <stdexcept>

namespace molt::jobs {

std::chrono::milliseconds RetryPolicy::delay_after(int failed, double random01) const noexcept {
  using std::chrono::milliseconds;
  milliseconds delay = base_delay;
  // Doubling stops at max_delay, so that no count of failures overflows.
  for (int i = 1; i < failed && delay < max_delay; ++i)
    delay = delay > max_delay / 2 ? max_delay : delay * 2;
  delay = std::min(delay, max_delay);
  const double keep = 1.0 - jitter * std::clamp(random01, 0.0, 1.0);
  return milliseconds(static_cast<milliseconds::rep>(static_cast<double>(delay.count()) * keep));
}

void RetryPolicy::validate() const {
  if (max_attempts < 1 || max_attempts > 1000)
    throw std::invalid_argument("RetryPolicy::max_attempts must be 1 to 1000");
  if (base_delay.count() < 0) throw std::invalid_argument("RetryPolicy::base_delay is negative");
  if (max_delay < base_delay)
    throw std::invalid_argument("RetryPolicy::max_delay is shorter than base_delay");
  if (max_delay > std::chrono::hours(24 * 366))
    throw std::invalid_argument("RetryPolicy::max_delay is longer than 366 days");
  if (!(jitter >= 0.0 && jitter <= 1.0))
    throw std::invalid_argument("RetryPolicy::jitter must be 0 to 1");
}

}  // namespace molt::jobs
