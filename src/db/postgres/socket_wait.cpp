#include "socket_wait.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

namespace molt::db::pg {

WaitResult wait_for_socket(int socket, short events, int wake_fd, core::Clock::time_point until) {
  for (;;) {
    const auto now = core::Clock::now();
    if (now >= until) return WaitResult::kTimedOut;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    const int timeout = static_cast<int>(std::min<std::int64_t>(left, 60'000));
    pollfd fds[2] = {{socket, events, 0}, {wake_fd, POLLIN, 0}};  // poll skips a negative fd
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return WaitResult::kReady;  // let libpq run into the error and report it
    if (fds[1].revents) return WaitResult::kWoken;
    if (fds[0].revents) return WaitResult::kReady;
  }
}

}  // namespace molt::db::pg
