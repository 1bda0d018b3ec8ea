#pragma once
// A ResponseSink that keeps every answer, decoded, and lets a test wait for them.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"
#include "molt/worker/response_sink.hpp"

namespace molt::testing {

class CollectingSink final : public worker::ResponseSink {
 public:
  void send(std::string_view frames) override {
    std::lock_guard lock(mutex_);
    reader_.feed(frames);
    while (auto event = reader_.next()) {
      ipc::Wire wire;
      answers_.push_back(ipc::decode_response(event->bytes, &wire));
      wires_.push_back(wire);
    }
    changed_.notify_all();
  }

  // Waits until `count` answers have arrived; returns them all (or what came in time).
  std::vector<ipc::Response> wait_for(std::size_t count,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return answers_.size() >= count; });
    return answers_;
  }

  std::optional<ipc::Response> answer_for(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    for (const auto& r : answers_)
      if (r.request_id == id) return r;
    return std::nullopt;
  }

  // The wire each answer came on, in order.
  std::vector<ipc::Wire> wires() {
    std::lock_guard lock(mutex_);
    return wires_;
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return answers_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  ipc::FrameReader reader_;
  std::vector<ipc::Response> answers_;
  std::vector<ipc::Wire> wires_;
};

}  // namespace molt::testing
