#include "molt/worker/export_context.hpp"

#include <condition_variable>
#include <mutex>

namespace molt::worker {

void ExportContext::check() const {
  token_.throw_if_cancelled();
  if (deadline_.expired()) throw core::Error(core::StatusCode::Timeout, "deadline exceeded");
}

void ExportContext::sleep_for(std::chrono::microseconds duration) const {
  check();
  const auto until = deadline_.min(core::Deadline::after(duration));
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  auto registration = token_.on_cancel([&] {
    std::lock_guard lock(mutex);
    stop = true;
    wake.notify_all();
  });
  {
    std::unique_lock lock(mutex);
    wake.wait_until(lock, until.at(), [&] { return stop; });
  }
  registration.reset();
  check();
}

}  // namespace molt::worker
