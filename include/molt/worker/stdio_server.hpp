#pragma once
// The worker's main loop: read frames from a file descriptor, answer control entries
// (__ping__, __cancel__) and malformed input at once, hand everything else to the Dispatcher.
// Answers produced while handling one read are written together.

#include <atomic>
#include <cstddef>
#include <string>

#include "molt/ipc/frame.hpp"
#include "molt/worker/dispatcher.hpp"

namespace molt::worker {

class StdioServer {
 public:
  StdioServer(Dispatcher& dispatcher, ResponseSink& sink, int in_fd,
              std::size_t max_frame = ipc::kDefaultMaxFrame)
      : dispatcher_(dispatcher), sink_(sink), in_fd_(in_fd), reader_(max_frame) {}

  // Serves until end of input, a read error, or request_stop(). Does not shut the dispatcher
  // down; the caller does, so that it can choose the grace period.
  void run();

  // Safe from any thread or a signal handler; the loop notices at its next wake-up (a signal
  // that interrupts its read(2), or the next input).
  void request_stop() noexcept { stop_.store(true, std::memory_order_release); }

  // Handles one complete frame body; public for tests and fuzzers.
  void handle_frame(std::string_view body, std::string& answers);

 private:
  void handle_oversized(std::uint64_t declared, std::string& answers) const;
  void handle_cancel(const ipc::Request& request, ipc::Wire wire, std::string& answers);

  Dispatcher& dispatcher_;
  ResponseSink& sink_;
  const int in_fd_;
  ipc::FrameReader reader_;
  std::atomic<bool> stop_{false};
  // Answers whose request could not be read go out on the wire the peer used last.
  ipc::Wire last_wire_ = ipc::Wire::MsgPack;
};

}  // namespace molt::worker
