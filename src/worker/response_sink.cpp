#include "molt/worker/response_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace molt::worker {

namespace {

// stderr on the same pipe (`2>&1`) would share the non-blocking flag, which belongs to the open
// pipe, and its log lines could be dropped while the pipe is full.
bool shared_with_stderr(int fd, const struct stat& st) {
  struct stat err {};
  return fd != STDERR_FILENO && ::fstat(STDERR_FILENO, &err) == 0 && err.st_dev == st.st_dev &&
         err.st_ino == st.st_ino;
}

}  // namespace

FdResponseSink::FdResponseSink(int fd) : fd_(fd) {
  struct stat st {};
  const int flags = ::fcntl(fd_, F_GETFL);
  // Only pipes and sockets: a file or a terminal keeps plain blocking writes.
  if (::fstat(fd_, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) &&
      !shared_with_stderr(fd_, st) && flags >= 0 &&
      ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) == 0) {
    nonblocking_ = true;
    drain_ = std::thread([this] { drain_loop(); });
  }
}

FdResponseSink::~FdResponseSink() {
  close();
}

void FdResponseSink::close() {
  if (drain_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_drain_.notify_one();
    drain_.join();
  }
  std::lock_guard lock(mutex_);
  closed_ = true;  // the process is ending: what comes later is dropped
  room_.notify_all();
}

void FdResponseSink::send(std::string_view frames) {
  send_frames(frames, nullptr);
}

void FdResponseSink::send(std::string&& frames) {
  send_frames(frames, &frames);
}

void FdResponseSink::send_frames(std::string_view frames, std::string* owned) {
  std::unique_lock lock(mutex_);
  if (broken_ || closed_) return;
  if (writing_ || draining_) {
    if (pending_.empty() && owned) {
      pending_ = std::move(*owned);
    } else {
      pending_.append(frames);
    }
    return;
  }
  writing_ = true;
  std::string batch;
  std::string_view next = frames;  // the caller's bytes, uncopied, on the uncontended path
  for (;;) {
    lock.unlock();
    const Write result = write_some(next);
    lock.lock();
    if (result == Write::Failed) {
      broken_ = true;
      pending_.clear();
      break;
    }
    if (result == Write::WouldBlock) {
      // The rest goes out before whatever other threads appended meanwhile: the caller's
      // own bytes become the pending ones when nothing else waits (a large answer is then
      // not copied), else it goes in front of them.
      if (pending_.empty() && owned && next.data() >= owned->data() &&
          next.data() < owned->data() + owned->size()) {
        const std::size_t written = static_cast<std::size_t>(next.data() - owned->data());
        pending_ = std::move(*owned);
        pending_.erase(0, written);
      } else {
        pending_.insert(0, next);
      }
      draining_ = true;
      wake_drain_.notify_one();
      break;
    }
    if (pending_.empty()) break;
    batch.swap(pending_);
    pending_.clear();
    next = batch;
  }
  writing_ = false;
}

bool FdResponseSink::wait_for_room(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  return room_.wait_for(lock, wait, [this] {
    return broken_ || closed_ || pending_.size() + batch_bytes_ <= kBacklogLimit;
  });
}

bool FdResponseSink::healthy() const {
  std::lock_guard lock(mutex_);
  return !broken_;
}

FdResponseSink::Write FdResponseSink::write_some(std::string_view& bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Write::WouldBlock;
      return Write::Failed;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Write::Done;
}

void FdResponseSink::drain_loop() {
  std::unique_lock lock(mutex_);
  std::string batch;
  for (;;) {
    wake_drain_.wait(lock, [&] { return stopping_ || (draining_ && !pending_.empty()); });
    if (!draining_ || pending_.empty() || broken_) {
      if (stopping_) return;
      continue;
    }
    batch.swap(pending_);
    pending_.clear();
    batch_bytes_ = batch.size();
    lock.unlock();
    std::string_view rest = batch;
    bool failed = false;
    while (!rest.empty()) {
      const Write result = write_some(rest);
      if (result == Write::Done) break;
      if (result == Write::Failed) {
        failed = true;
        break;
      }
      // Wait for the reader; at shutdown give up after a second without progress.
      pollfd p{fd_, POLLOUT, 0};
      const int ready = ::poll(&p, 1, 1000);
      if (ready == 0) {
        std::lock_guard check(mutex_);
        if (stopping_) {
          failed = true;
          break;
        }
      }
    }
    lock.lock();
    batch_bytes_ = 0;
    if (failed) {
      broken_ = true;
      pending_.clear();
    }
    // Handlers write directly again once everything that waited is out.
    if (pending_.empty()) draining_ = false;
    room_.notify_all();
  }
}

}  // namespace molt::worker
