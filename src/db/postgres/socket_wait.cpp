#include "socket_wait.hpp"

#include <boost/system/error_code.hpp>

#include "molt/core/status.hpp"

namespace molt::db::pg {

using boost::asio::posix::descriptor_base;

// One thread runs the io_context at a time: the caller of the connection's current call.
SocketWaiter::SocketWaiter() : io_(1), descriptor_(io_) {}

SocketWaiter::~SocketWaiter() {
  forget();
}

void SocketWaiter::wake() noexcept {
  // The flag first: a waiter that restarts the io_context after this stop still sees it.
  woken_.store(true);
  io_.stop();
}

void SocketWaiter::forget() noexcept {
  if (!descriptor_.is_open()) return;
  descriptor_.release();  // libpq owns the socket: release, never close
  watched_ = -1;
}

void SocketWaiter::watch(int socket, bool socket_changed) {
  if (descriptor_.is_open() && watched_ == socket && !socket_changed) return;
  forget();
  boost::system::error_code error;
  descriptor_.assign(socket, error);
  if (error)
    throw core::Error(core::StatusCode::InternalError,
                      "cannot watch the PostgreSQL socket: " + error.message());
  watched_ = socket;
}

WaitResult SocketWaiter::wait(int socket, unsigned events, core::Clock::time_point until,
                              bool interruptible, bool socket_changed) {
  if (socket < 0) return WaitResult::kReady;  // let libpq run into the error and report it
  watch(socket, socket_changed);
  // Both handlers refer to this frame: the wait does not return before each has run.
  int pending = 0;
  bool ready = false;
  const auto on_ready = [&pending, &ready](const boost::system::error_code& error) {
    --pending;
    if (!error) ready = true;
  };
  if (events & kRead) {
    ++pending;
    descriptor_.async_wait(descriptor_base::wait_read, on_ready);
  }
  if (events & kWrite) {
    ++pending;
    descriptor_.async_wait(descriptor_base::wait_write, on_ready);
  }
  WaitResult result = WaitResult::kReady;
  while (!ready) {
    // Restarted before the flag is read: a wake() after this point stops the run below.
    if (io_.stopped()) io_.restart();
    if (interruptible && woken_.load()) {
      result = WaitResult::kWoken;
      break;
    }
    if (core::Clock::now() >= until) {
      result = WaitResult::kTimedOut;
      break;
    }
    io_.run_one_until(until);
  }
  if (pending > 0) {
    descriptor_.cancel();
    while (pending > 0) {
      if (io_.stopped()) io_.restart();
      io_.run_one();
    }
  }
  return result;
}

}  // namespace molt::db::pg
