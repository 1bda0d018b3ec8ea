#include "molt/worker/dispatcher.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "molt/codec/json.hpp"

namespace molt::worker {

using core::Clock;
using core::StatusCode;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

namespace {
// A request's payload bytes, counted from admission until its handler returns, or until it
// leaves the queue without running. The answer goes out after that, so a caller that sends
// its next request on reading the answer finds them let go. The destructor lets go of what
// no path did (a refused job).
class HeldBytes {
 public:
  HeldBytes() = default;
  HeldBytes(const HeldBytes&) = delete;
  HeldBytes& operator=(const HeldBytes&) = delete;
  ~HeldBytes() { release(); }

  void hold(std::shared_ptr<std::atomic<std::size_t>> counter, std::size_t bytes) {
    counter_ = std::move(counter);
    counter_->fetch_add(bytes, std::memory_order_relaxed);
    bytes_.store(bytes, std::memory_order_release);
  }
  // Idempotent: only the first call gives the bytes back.
  void release() noexcept {
    if (const std::size_t bytes = bytes_.exchange(0, std::memory_order_acq_rel); bytes > 0)
      counter_->fetch_sub(bytes, std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<std::atomic<std::size_t>> counter_;
  std::atomic<std::size_t> bytes_{0};
};
}  // namespace

struct Dispatcher::Job {
  ipc::Request request;
  HeldBytes held;
  ipc::Wire wire = ipc::Wire::MsgPack;
  const Export* exp = nullptr;
  core::CancelSource cancel;
  core::Deadline deadline;
  Clock::time_point arrival;
  std::size_t queue_depth = 0;
  std::atomic<bool> answered{false};
  std::atomic<core::BlockingPool::TaskId> task_id{0};
  std::atomic<core::TimerQueue::TimerId> timer_id{0};
  // When a pool thread picked the job up (0: never); nanoseconds on Clock.
  std::atomic<Clock::rep> started{0};

  Clock::time_point started_at() const {
    return Clock::time_point(Clock::duration(started.load(std::memory_order_acquire)));
  }
  bool was_started() const { return started.load(std::memory_order_acquire) != 0; }
};

namespace {
ipc::Response error_response(std::uint64_t id, StatusCode code, std::string message) {
  ipc::Response r;
  r.request_id = id;
  r.status = code;
  r.error = std::move(message);
  return r;
}
}  // namespace

Dispatcher::Dispatcher(const ExportTable& exports, DispatcherOptions options, ResponseSink& sink)
    : exports_(exports),
      options_(options),
      sink_(sink),
      log_(options.log_requests ? std::make_unique<LineLog>(STDERR_FILENO) : nullptr),
      held_bytes_(std::make_shared<std::atomic<std::size_t>>(0)),
      pool_(options.threads, options.max_queue) {}

Dispatcher::~Dispatcher() {
  shutdown(std::chrono::milliseconds(0));
}

std::optional<ipc::Response> Dispatcher::submit(ipc::Request request, ipc::Wire wire,
                                                Clock::time_point arrival) {
  const std::uint64_t id = request.request_id;
  const Export* exp = exports_.find(request.entry);
  if (!exp)
    return error_response(id, StatusCode::InvalidInput,
                          "unknown entry '" + request.entry + "' (not in this worker's exports)");
  if (request.codec != exp->spec.codec_in)
    return error_response(id, StatusCode::InvalidInput,
                          "entry '" + request.entry + "' takes codec '" +
                              std::string(ipc::to_string(exp->spec.codec_in)) + "', not '" +
                              std::string(ipc::to_string(request.codec)) + "'");

  auto job = std::make_shared<Job>();
  job->wire = wire;
  job->exp = exp;
  job->arrival = arrival;
  job->deadline = core::Deadline::after_ms(request.timeout_ms, arrival);
  job->request = std::move(request);
  {
    std::lock_guard lock(mutex_);
    if (closing_) return error_response(id, StatusCode::Cancelled, "worker is shutting down");
    if (jobs_.contains(id))
      return error_response(id, StatusCode::InvalidInput,
                            "request_id " + std::to_string(id) + " is already in flight");
    // Admissions happen under the lock and releases only lower the count, so it cannot pass
    // the limit between this check and the hold.
    const std::size_t size = job->request.payload.size();
    const std::size_t held = held_bytes_->load(std::memory_order_relaxed);
    if (held > 0 && held + size > options_.max_pending_bytes)
      return error_response(
          id, StatusCode::Busy,
          "worker holds " + std::to_string(held) + " bytes of requests; this one's " +
              std::to_string(size) + " would pass its limit of " +
              std::to_string(options_.max_pending_bytes) + " (--max-pending-bytes)");
    job->held.hold(held_bytes_, size);
    jobs_.emplace(id, job);
  }
  job->queue_depth = pool_.queued();
  if (job->deadline.is_set())
    job->timer_id = timers_.schedule(job->deadline.at(), [this, job] { expire(job); });

  const auto task = pool_.try_post([this, job] { run(job); });
  if (task) {
    job->task_id = *task;
    return std::nullopt;
  }
  timers_.cancel(job->timer_id);
  {
    std::lock_guard lock(mutex_);
    jobs_.erase(id);
    if (jobs_.empty()) drained_.notify_all();
  }
  if (job->answered.exchange(true)) return std::nullopt;  // its deadline already answered it
  return error_response(id, StatusCode::Busy,
                        "worker queue is full (" + std::to_string(options_.max_queue) +
                            " waiting, " + std::to_string(pool_.thread_count()) + " running)");
}

bool Dispatcher::cancel(std::uint64_t request_id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(request_id);
    if (it == jobs_.end()) return false;
    job = it->second;
  }
  job->cancel.cancel(core::CancelReason::Cancelled);
  const bool was_queued = pool_.remove_queued(job->task_id);
  if (was_queued) job->held.release();
  finish(*job, error_response(request_id, StatusCode::Cancelled,
                              was_queued ? "cancelled while queued" : "cancelled while running"));
  return true;
}

std::size_t Dispatcher::pending() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

std::size_t Dispatcher::pending_bytes() const {
  return held_bytes_->load(std::memory_order_relaxed);
}

// What a request whose deadline passed is answered, whoever noticed first.
std::string Dispatcher::deadline_message(const Job& job, bool was_queued) {
  return "deadline of " + std::to_string(job.request.timeout_ms) + " ms exceeded while " +
         (was_queued ? "queued" : "running");
}

// Logs why an export failed and gives what the caller is told instead.
std::string Dispatcher::logged_failure(const Job& job, const char* why) const {
  std::fprintf(stderr, "%s: export '%s' (request %llu) failed: %s\n", options_.name.c_str(),
               job.exp->spec.name.c_str(), static_cast<unsigned long long>(job.request.request_id),
               core::one_line(why).c_str());
  return "export '" + job.exp->spec.name + "' failed (the worker's log says why)";
}

// The caller was answered at the deadline or cancel, and the handler went on to an end that
// the answer cannot say: it finished its work (a write is in effect), or it reports that it
// committed before it could be stopped. Said in the log, where an operator looking into a
// Timeout finds it; a stop that undid the work is the answer's own story and not repeated.
// `error` is nullptr when the handler returned.
void Dispatcher::log_late_outcome(const Job& job, const char* error) const {
  if (!job.answered.load(std::memory_order_acquire)) return;
  if (error && !std::strstr(error, "had been committed before it could be stopped")) return;
  std::fprintf(stderr, "%s: export '%s' (request %llu) ended after its caller was answered: %s\n",
               options_.name.c_str(), job.exp->spec.name.c_str(),
               static_cast<unsigned long long>(job.request.request_id),
               error ? core::one_line(error).c_str() : "Ok, its work is done");
}

void Dispatcher::run(const std::shared_ptr<Job>& job) {
  if (job->answered.load(std::memory_order_acquire)) {
    job->held.release();
    return;
  }
  const auto started = Clock::now();
  job->started.store(started.time_since_epoch().count(), std::memory_order_release);

  ExportContext ctx(job->cancel.token(), job->deadline,
                    ipc::payload_room(options_.max_frame, job->wire));
  ipc::Response response;
  response.request_id = job->request.request_id;
  nanoseconds handler_time{0};
  try {
    ctx.check();
    response.payload = job->exp->invoke(job->request.payload, ctx);
    handler_time = Clock::now() - started - ctx.decode_time;
    log_late_outcome(*job, nullptr);
    response.codec = ctx.codec_out().value_or(job->exp->spec.codec_out);
  } catch (const core::Error& e) {
    // Before the deadline's own message replaces it; an internal error is logged below.
    if (e.code() != StatusCode::InternalError) log_late_outcome(*job, e.what());
    response.status = e.code();
    response.error = e.what();
    // An internal failure's text names hosts, files and library messages (a database that
    // cannot be reached, a corrupt file): for the operator's log, not for the caller.
    if (e.code() == StatusCode::InternalError) response.error = logged_failure(*job, e.what());
    // The handler saw the request's own deadline pass a moment before expire() did: the
    // same answer either way.
    if (e.code() == StatusCode::Timeout && job->deadline.expired())
      response.error = deadline_message(*job, /*was_queued=*/false);
    // Likewise a handler that stopped for a __cancel__ before cancel() could answer.
    if (e.code() == StatusCode::Cancelled && job->cancel.reason() == core::CancelReason::Cancelled)
      response.error = "cancelled while running";
  } catch (const std::bad_alloc&) {
    response.status = StatusCode::InternalError;
    response.error = "out of memory in export '" + job->exp->spec.name + "'";
  } catch (const std::exception& e) {
    // The exception text may carry internals: it goes to the log, not to the caller.
    response.status = StatusCode::InternalError;
    response.error = logged_failure(*job, e.what());
  } catch (...) {
    response.status = StatusCode::InternalError;
    response.error = logged_failure(*job, "it threw something that is not a std::exception");
  }
  job->held.release();  // the handler and what it decoded are done with the payload
  if (response.status != StatusCode::Ok) response.payload.clear();
  for (auto& m : ctx.metrics()) response.metrics.push_back(std::move(m));
  add_timing_metrics(*job, response, ctx.decode_time, handler_time);
  finish(*job, std::move(response));
}

void Dispatcher::expire(const std::shared_ptr<Job>& job) {
  if (job->answered.load(std::memory_order_acquire)) return;
  job->cancel.cancel(core::CancelReason::Timeout);
  const bool removed = pool_.remove_queued(job->task_id);
  if (removed) job->held.release();
  const bool was_queued = removed || !job->was_started();
  finish(*job, error_response(job->request.request_id, StatusCode::Timeout,
                              deadline_message(*job, was_queued)));
}

void Dispatcher::finish(Job& job, ipc::Response response) {
  if (job.answered.exchange(true, std::memory_order_acq_rel)) return;
  timers_.cancel(job.timer_id);
  if (response.metrics.empty()) add_timing_metrics(job, response, {}, {});
  {
    // Leave the table before the answer is out: the caller may reuse the id at once.
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(job.request.request_id);
    if (it != jobs_.end() && it->second.get() == &job) jobs_.erase(it);
    if (jobs_.empty()) drained_.notify_all();
  }
  // A large answer becomes its own frame and is handed to the sink whole: never copied. The
  // others are framed in a buffer this thread keeps.
  thread_local std::string small;
  std::string large;
  const bool owned = response.payload.size() >= ipc::kOwnFrameBytes;
  std::string& frame = owned ? large : small;
  if (owned) {
    large = ipc::take_response_frame(response, job.wire);
  } else {
    small.clear();
    ipc::append_response_frame(small, response, job.wire);
  }
  if (const std::size_t body = frame.size() - ipc::kFrameHeader; body > options_.max_frame) {
    frame.clear();
    ipc::append_response_frame(frame,
                               error_response(job.request.request_id, StatusCode::InternalError,
                                              "the answer of " + std::to_string(body) +
                                                  " bytes exceeds the frame limit of " +
                                                  std::to_string(options_.max_frame) + " bytes"),
                               job.wire);
  }
  if (owned) {
    sink_.send(std::move(large));
  } else {
    sink_.send(small);
    if (small.capacity() > (1u << 20)) std::string().swap(small);
  }
  if (log_) log_request(job, response);
}

void Dispatcher::add_timing_metrics(Job& job, ipc::Response& r, nanoseconds decode,
                                    nanoseconds handler) const {
  const auto now = Clock::now();
  const bool started = job.was_started();
  const auto start = started ? job.started_at() : now;
  const auto queue = duration_cast<microseconds>(start - job.arrival).count();
  const auto exec = started ? duration_cast<microseconds>(now - start).count() : 0;
  r.metrics.emplace_back("queue_us", static_cast<std::int64_t>(queue));
  r.metrics.emplace_back("exec_us", static_cast<std::int64_t>(exec));
  r.metrics.emplace_back("handler_us",
                         static_cast<std::int64_t>(duration_cast<microseconds>(handler).count()));
  r.metrics.emplace_back("decode_us",
                         static_cast<std::int64_t>(duration_cast<microseconds>(decode).count()));
  r.metrics.emplace_back("queue_ms", static_cast<double>(queue) / 1000.0);
  r.metrics.emplace_back("exec_ms", static_cast<double>(exec) / 1000.0);
  r.metrics.emplace_back("queue_depth", static_cast<std::int64_t>(job.queue_depth));
}

void Dispatcher::log_request(const Job& job, const ipc::Response& r) const {
  std::string line = "{\"event\":\"request\",\"request_id\":";
  codec::append_integer(line, job.request.request_id);
  line += ",\"entry\":";
  codec::write_json_string(line, job.request.entry);
  line += ",\"status\":";
  codec::write_json_string(line, core::to_string(r.status));
  line += ",\"wire\":";
  codec::write_json_string(line, ipc::to_string(job.wire));
  for (const auto& [key, value] : r.metrics) {
    if (key != "queue_us" && key != "exec_us") continue;
    line += ",\"";
    line += key;
    line += "\":";
    codec::append_integer(line, std::get<std::int64_t>(value));
  }
  if (!r.error.empty()) {
    line += ",\"error\":";
    codec::write_json_string(line, r.error);
  }
  line += "}\n";
  log_->write(std::move(line));
}

bool Dispatcher::shutdown(std::chrono::milliseconds grace) {
  const auto until = Clock::now() + grace;
  std::vector<std::shared_ptr<Job>> pending;
  {
    std::lock_guard lock(mutex_);
    if (closing_ && jobs_.empty()) {
      pool_.close();
      timers_.stop();
      return true;
    }
    closing_ = true;
    for (const auto& [id, job] : jobs_) pending.push_back(job);
  }
  for (const auto& job : pending) {
    job->cancel.cancel(core::CancelReason::Shutdown);
    if (pool_.remove_queued(job->task_id)) {
      job->held.release();
      finish(*job, error_response(job->request.request_id, StatusCode::Cancelled,
                                  "worker is shutting down"));
    }
  }
  bool drained;
  {
    std::unique_lock lock(mutex_);
    drained = drained_.wait_until(lock, until, [this] { return jobs_.empty(); });
    if (!drained) {
      pending.clear();
      for (const auto& [id, job] : jobs_) pending.push_back(job);
    }
  }
  if (!drained) {
    // Handlers that ignore cancellation still get an answer; their threads are abandoned.
    for (const auto& job : pending)
      finish(*job, error_response(job->request.request_id, StatusCode::Cancelled,
                                  "worker is shutting down"));
    return false;
  }
  // Every request is answered, but a handler answered for (cancelled, timed out) may still
  // run and ignore its token: joining its thread would outlast the grace, maybe forever.
  if (!pool_.wait_idle(until)) return false;
  pool_.close();
  timers_.stop();
  return true;
}

}  // namespace molt::worker
