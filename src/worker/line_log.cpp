#include "molt/worker/line_log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <thread>

namespace molt::worker {

LineLog::LineLog(int fd, std::size_t max_waiting)
    : state_(std::make_shared<State>()), max_waiting_(max_waiting) {
  std::thread(run, fd, state_).detach();
}

LineLog::~LineLog() {
  std::unique_lock lock(state_->mutex);
  state_->stopping = true;
  state_->wake.notify_one();
  state_->idle.wait_for(lock, std::chrono::seconds(1),
                        [&] { return state_->lines.empty() && !state_->writing; });
}

void LineLog::write(std::string line) {
  std::lock_guard lock(state_->mutex);
  if (state_->lines.size() >= max_waiting_) {
    ++state_->dropped;
    return;
  }
  state_->lines.push_back(std::move(line));
  state_->wake.notify_one();
}

std::uint64_t LineLog::dropped() const {
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

void LineLog::run(int fd, std::shared_ptr<State> state) {
  std::unique_lock lock(state->mutex);
  for (;;) {
    state->wake.wait(lock, [&] { return state->stopping || !state->lines.empty(); });
    if (state->lines.empty()) return;  // stopping, and everything is written
    std::string line = std::move(state->lines.front());
    state->lines.pop_front();
    state->writing = true;
    lock.unlock();
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a log that cannot be written is not worth failing for
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    lock.lock();
    state->writing = false;
    state->idle.notify_all();
  }
}

}  // namespace molt::worker
