#include "molt/web/blocking.hpp"

namespace molt::web::detail {

void PoolHandoffs::begin() {
  const std::lock_guard lock(mutex_);
  ++in_flight_;
}

void PoolHandoffs::end() {
  // Notified under the lock: the io_context's destruction, waiting in shutdown(), cannot go
  // on (and free this) until the pool thread has let go of the mutex, its last touch.
  const std::lock_guard lock(mutex_);
  if (--in_flight_ == 0) ended_.notify_all();
}

void PoolHandoffs::shutdown() {
  std::unique_lock lock(mutex_);
  ended_.wait(lock, [this] { return in_flight_ == 0; });
}

}  // namespace molt::web::detail
