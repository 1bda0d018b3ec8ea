#include "molt/worker/export_context.hpp"

#include <condition_variable>
#include <mutex>

namespace molt::worker {

void ExportContext::check() const {
  // Said as the dispatcher says it: whichever notices the deadline first (the handler here,
  // or the dispatcher's timer through the token), the answer has the same words.
  const bool timed_out = token_.cancelled() && token_.reason() == core::CancelReason::Timeout;
  if (timed_out || deadline_.expired())
    throw core::Error(core::StatusCode::Timeout, "deadline exceeded while running");
  token_.throw_if_cancelled();
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
