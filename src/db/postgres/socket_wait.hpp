#pragma once
// The one place a PostgreSQL call blocks: waiting for the connection's socket, a wake-up
// signal (a cancel token fired) or a point in time. Internal to molt::db.

#include "molt/core/deadline.hpp"

namespace molt::db::pg {

enum class WaitResult { kReady, kWoken, kTimedOut };

// Waits until `socket` is ready for `events` (poll(2) flags), `wake_fd` becomes readable
// (-1 for none) or `until` passes. An Asio-driven wait (async_wait on the socket and the wake
// signal) can replace it without touching the protocol code around it.
WaitResult wait_for_socket(int socket, short events, int wake_fd, core::Clock::time_point until);

}  // namespace molt::db::pg
