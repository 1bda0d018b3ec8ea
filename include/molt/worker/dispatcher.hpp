#pragma once
// Runs requests on a bounded pool (DESIGN.md §4): Busy at once when the queue is full,
// deadlines measured from arrival, cancellation of queued and running requests, exactly one
// answer per request, and the metrics of each answer.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "molt/core/blocking_pool.hpp"
#include "molt/core/timer_queue.hpp"
#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"
#include "molt/worker/export_registry.hpp"
#include "molt/worker/line_log.hpp"
#include "molt/worker/response_sink.hpp"

namespace molt::worker {

struct DispatcherOptions {
  std::size_t threads = 1;
  std::size_t max_queue = 64;
  // Write one JSON line per answered request to stderr.
  bool log_requests = false;
  // The largest answer frame: the peer refuses larger ones (as this worker refuses larger
  // requests), so an answer over it is replaced by an InternalError saying so.
  std::size_t max_frame = ipc::kDefaultMaxFrame;
  // Payload bytes that admitted requests may hold together, from arrival until their handler
  // lets go (queued, running, or answered but still running). Past it a request answers Busy,
  // unless it would be the only one: decoding takes several times a payload's size, so this
  // is what bounds the worker's memory when large requests arrive together.
  std::size_t max_pending_bytes = ipc::kDefaultMaxFrame;
  // What its log lines start with: the program's name, so a custom worker's log says its own.
  std::string name = "molt-worker";
};

class Dispatcher {
 public:
  Dispatcher(const ExportTable& exports, DispatcherOptions options, ResponseSink& sink);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Queues `request`, received at `arrival`. Returns the answer when it is immediate (Busy,
  // InvalidInput, shutting down); otherwise the answer goes to the sink later.
  std::optional<ipc::Response> submit(ipc::Request request, ipc::Wire wire,
                                      core::Clock::time_point arrival);
  // Cancels request `request_id` if it is queued or running; it answers Cancelled.
  // Returns false when no such request is pending.
  bool cancel(std::uint64_t request_id);

  std::size_t pending() const;
  // Payload bytes held by requests not yet let go (max_pending_bytes counts these).
  std::size_t pending_bytes() const;

  // Refuses new work, cancels everything pending (queued work answers at once, running work at
  // its next check) and waits up to `grace` for every answer and every handler's return (one
  // answered for, cancelled or timed out, may still run). Returns true when all work stopped;
  // false when a handler is still running (its request has been answered).
  bool shutdown(std::chrono::milliseconds grace);

 private:
  struct Job;
  void run(const std::shared_ptr<Job>& job);
  void expire(const std::shared_ptr<Job>& job);
  // Answers `job` unless it already was; the one place a response leaves for the sink.
  void finish(Job& job, ipc::Response response);
  static std::string deadline_message(const Job& job, bool was_queued);
  std::string logged_failure(const Job& job, const char* why) const;
  void log_late_outcome(const Job& job, const char* error) const;
  void add_timing_metrics(Job& job, ipc::Response& response, std::chrono::nanoseconds decode,
                          std::chrono::nanoseconds handler) const;
  void log_request(const Job& job, const ipc::Response& response) const;

  const ExportTable& exports_;
  const DispatcherOptions options_;
  ResponseSink& sink_;
  std::unique_ptr<LineLog> log_;  // with log_requests: stderr, off the handlers' threads

  // Shared with each job's hold on it: a handler abandoned at shutdown lets go of its bytes
  // after the dispatcher is gone.
  std::shared_ptr<std::atomic<std::size_t>> held_bytes_;

  mutable std::mutex mutex_;
  std::condition_variable drained_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Job>> jobs_;  // answered jobs leave at once
  bool closing_ = false;

  core::BlockingPool pool_;
  core::TimerQueue timers_;
};

}  // namespace molt::worker
