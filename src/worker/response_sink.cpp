#include "molt/worker/response_sink.hpp"

#include <unistd.h>

#include <cerrno>

namespace molt::worker {

void FdResponseSink::send(std::string_view frames) {
  std::unique_lock lock(mutex_);
  if (broken_) return;
  if (writing_) {
    pending_.append(frames);
    return;
  }
  writing_ = true;
  std::string batch;
  std::string_view next = frames;  // the caller's bytes, uncopied, on the uncontended path
  for (;;) {
    lock.unlock();
    const bool ok = write_all(next);
    lock.lock();
    if (!ok) {
      broken_ = true;
      pending_.clear();
    }
    if (pending_.empty()) break;
    batch.swap(pending_);
    pending_.clear();
    next = batch;
  }
  writing_ = false;
}

bool FdResponseSink::healthy() const {
  std::lock_guard lock(mutex_);
  return !broken_;
}

bool FdResponseSink::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace molt::worker
