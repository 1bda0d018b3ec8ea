#pragma once
// Durable jobs in the application's own database (DESIGN.md §10), SQLite or PostgreSQL: one
// table, written through molt::db. Delivery is at least once: a job whose runner died comes
// back when its lease runs out, so a handler must be safe to run twice.
//
//   auto store = molt::jobs::JobStore(db);
//   store.install();                                    // CREATE TABLE IF NOT EXISTS ...
//   auto job = store.enqueue({.kind = "send_mail", .payload = R"({"to":7})"});
//   ...
//   if (auto claimed = store.claim("default", 30s)) {  // a JobRunner does this for you
//     do_the_work(claimed->payload);
//     store.complete(*claimed);
//   }
//
// Every call is a short statement or transaction through molt::db, and so blocks: call it on
// a blocking pool (molt::web's run_blocking, a worker's handler thread). Errors are
// core::Error: Busy when a queue is full (or the database is), InvalidInput for a job the
// store will not take, what molt::db throws otherwise.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/core/status.hpp"
#include "molt/db/database.hpp"
#include "molt/jobs/job.hpp"
#include "molt/jobs/retry_policy.hpp"

namespace molt::jobs {

struct JobStoreOptions {
  std::string table = "molt_jobs";  // letters, digits and _, 1-50, not a digit first
  // Jobs a queue may hold that have not finished (queued or running); one more is Busy.
  std::size_t max_pending = 10'000;
  std::size_t max_payload_bytes = 1u << 20;  // a larger payload is InvalidInput
  RetryPolicy retry;
  // How often claim() also looks for jobs whose lease ran out (at most).
  std::chrono::milliseconds expiry_scan{1000};
  // Now, for the times the store writes; tests move it.
  std::function<Clock::time_point()> clock;
  // Each statement's limit.
  std::chrono::milliseconds statement_timeout{5000};
};

// What fail() did with the job.
enum class FailOutcome {
  Retrying,   // queued again, for after the policy's delay
  Failed,     // no attempts left: it stays failed
  Cancelled,  // cancel() had asked the run to stop: it is cancelled, not retried
  LeaseLost   // the lease was not this caller's any more: nothing changed
};

// enqueue() into a queue that holds max_pending unfinished jobs: a Busy error of its own, so
// that a caller can tell a full queue (shed the work, or ask the client to come back) from a
// database that is busy.
class QueueFull : public core::Error {
 public:
  explicit QueueFull(std::string message)
      : core::Error(core::StatusCode::Busy, std::move(message)) {}
};

// What heartbeat() found.
enum class LeaseState {
  Held,             // extended
  CancelRequested,  // extended, and cancel() asks the run to stop
  Lost              // not this caller's any more (ran out and taken, or finished elsewhere)
};

class JobStore {
 public:
  // Throws std::invalid_argument for options out of range.
  explicit JobStore(std::shared_ptr<db::Database> db, JobStoreOptions options = {});
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Creates the table and its indexes when they are missing; safe to call at every start and
  // from several processes.
  void install();

  // Adds a job, or finds the one its idempotency key made (InvalidInput when that job is of
  // another kind). QueueFull when the queue holds max_pending unfinished jobs (a repeated key
  // is answered even then).
  Enqueued enqueue(const NewJob& job);
  // The same inside the caller's transaction, so that the job exists if and only if the
  // caller's own writes are committed (an order and the job that mails its receipt). No
  // listener hears of it: after the commit, notify(queue) wakes this process's runners (those
  // of others see it within their poll interval). On PostgreSQL the queue's lock is held until
  // the transaction ends.
  Enqueued enqueue(db::Transaction& transaction, const NewJob& job);
  // Tells the listeners that `queue` has a new job.
  void notify(std::string_view queue);

  // Takes the queue's next due job (oldest run_at first), or nothing. The job is this
  // caller's for `lease`; heartbeat() extends it.
  std::optional<ClaimedJob> claim(std::string_view queue, std::chrono::milliseconds lease);
  LeaseState heartbeat(const ClaimedJob& job, std::chrono::milliseconds lease);
  // Ends a run, keeping `result` (text, at most max_payload_bytes) for find(). False (and
  // nothing changed) when the lease was lost.
  bool complete(const ClaimedJob& job, std::string_view result = {});
  // Ends a run that failed: queued again after the policy's delay while attempts are left and
  // `retry` is true, failed for good otherwise.
  FailOutcome fail(const ClaimedJob& job, std::string_view error, bool retry = true);
  // The run ended because cancel() asked: the job is cancelled.
  bool finish_cancelled(const ClaimedJob& job);
  // The run was stopped from outside (the runner shutting down): the job is queued again at
  // once, and the run does not count as an attempt.
  bool release(const ClaimedJob& job);

  // A queued job is cancelled at once (true); a running one is asked to stop (true), which
  // its runner sees at its next heartbeat; a finished or unknown one: false.
  bool cancel(std::int64_t id);
  std::optional<JobInfo> find(std::int64_t id);
  // When the queue may next have a job to claim (perhaps already): its earliest queued job's
  // start, or a running job's lease running out (its runner may have died); nothing when the
  // queue has neither.
  std::optional<Clock::time_point> next_due(std::string_view queue);
  QueueCounts counts(std::string_view queue);
  // Removes jobs that finished before `before`; how many.
  std::int64_t purge_finished(Clock::time_point before);

  // Called after each enqueue that made a job, with the job's queue: an in-process runner's
  // wake-up. The callback must not block, nor enqueue (it runs under the listeners' lock);
  // what it throws is ignored.
  using Listener = std::function<void(std::string_view queue)>;
  class Subscription;
  [[nodiscard]] Subscription subscribe(Listener listener);

  const JobStoreOptions& options() const noexcept { return options_; }
  Clock::time_point now() const;  // the options' clock
  db::Database& database() const noexcept { return *db_; }

 private:
  struct Listeners;
  db::QueryOptions within() const;
  // Queues again the jobs whose lease ran out (failed when they have no attempts left).
  void expire_leases(std::int64_t now_ms);
  JobInfo read_info(const db::Rows& rows) const;
  Enqueued insert(db::Transaction& transaction, const NewJob& job);
  std::string sql(std::string_view text) const;  // text with {t} as the table's name

  std::shared_ptr<db::Database> db_;
  JobStoreOptions options_;
  std::shared_ptr<Listeners> listeners_;
  std::atomic<std::int64_t> last_expiry_scan_ms_{0};
};

// Keeps a listener subscribed while it lives.
class JobStore::Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();
  void reset();

 private:
  friend class JobStore;
  Subscription(std::weak_ptr<Listeners> listeners, std::uint64_t id)
      : listeners_(std::move(listeners)), id_(id) {}
  std::weak_ptr<Listeners> listeners_;
  std::uint64_t id_ = 0;
};

}  // namespace molt::jobs
