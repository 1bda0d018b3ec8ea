#pragma once
// The one place a PostgreSQL call blocks: waiting for the connection's socket, a wake-up (a
// cancel token fired) or a point in time. The socket is an Asio descriptor on a small
// io_context of the connection's own, run by the calling thread for as long as it waits;
// a cancel token's callback, on any thread, stops that io_context to wake the waiter.
// Internal to molt::db.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "molt/core/deadline.hpp"

namespace molt::db::pg {

enum class WaitResult { kReady, kWoken, kTimedOut };

class SocketWaiter {
 public:
  enum Events : unsigned { kRead = 1, kWrite = 2 };

  SocketWaiter();
  ~SocketWaiter();
  SocketWaiter(const SocketWaiter&) = delete;
  SocketWaiter& operator=(const SocketWaiter&) = delete;

  // Forgets an earlier wake-up: only the new call's token can end its waits. Callers make
  // sure no wake() of an earlier call is still running (a call's cancel registration is
  // reset, waiting for its callback, as the call ends).
  void clear_wake() noexcept { woken_.store(false); }
  // Ends the running or next interruptible wait with kWoken. Any thread.
  void wake() noexcept;

  // Waits until `socket` is ready for `events` (kRead | kWrite: either), `until` passes or,
  // when `interruptible`, wake() is called. `socket_changed` says the socket may not be the
  // one of the previous wait even if its number is (libpq opens a new socket for each address
  // it tries while connecting, and the number of a closed one is soon reused).
  WaitResult wait(int socket, unsigned events, core::Clock::time_point until,
                  bool interruptible = true, bool socket_changed = false);

  // Lets go of the socket before libpq closes it.
  void forget() noexcept;

 private:
  void watch(int socket, bool socket_changed);

  boost::asio::io_context io_;
  boost::asio::posix::stream_descriptor descriptor_;
  int watched_ = -1;
  std::atomic<bool> woken_{false};
};

}  // namespace molt::db::pg
