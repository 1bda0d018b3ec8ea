#pragma once
// Runs durable jobs: threads that claim jobs from a JobStore's queues, call the handler of
// each job's kind, and record the outcome; a heartbeat that keeps the leases of the runs
// going and stops a run whose job was cancelled, whose lease was lost or that ran too long.
//
//   molt::jobs::JobRunner runner(store, {.queues = {"default", "mail"}, .threads = 2});
//   runner.handle("send_mail", [](molt::jobs::JobContext& job) {
//     const auto mail = molt::codec::from_json<Mail>(job.payload());
//     send(mail, job.cancel);     // stops when job.cancel is cancelled
//     job.result = R"({"sent":true})";
//   });
//   runner.start();
//   ...
//   runner.stop(10s);             // drains the runs, then stops what is left
//
// A handler that returns has done its job (succeeded). One that throws has failed, and the
// job is retried by the store's RetryPolicy (not for a core::InvalidInput: bad input does not
// get better, and the job fails at once); one that throws after its token was cancelled is
// stopped: cancelled when cancel() asked, queued again (not counted as an attempt) when the
// runner is stopping, failed-for-retry when it ran past max_run_time. Handlers run on the
// runner's own threads, so they may block (molt::db calls, files).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/jobs/job_store.hpp"

namespace molt::jobs {

// What a handler gets: its job, a token that tells it to stop, a place for its result.
struct JobContext {
  const ClaimedJob& job;
  core::CancelToken cancel;
  JobStore& store;     // to enqueue follow-up jobs
  std::string result;  // kept with the job when the run succeeds (text, JSON by convention)

  std::string_view payload() const noexcept { return job.payload; }
};

using JobHandler = std::function<void(JobContext&)>;

struct JobRunnerOptions {
  std::vector<std::string> queues{"default"};  // claimed from in this order
  std::size_t threads = 2;                     // runs at once
  std::chrono::milliseconds lease{30'000};     // renewed every third of it
  // How long an idle thread waits before it looks again: enqueues through this process's
  // store wake it at once, and on PostgreSQL those of every process (LISTEN/NOTIFY); on
  // SQLite, those of other processes are seen within this.
  std::chrono::milliseconds poll_interval{1000};
  // A run still going after this is stopped (its token cancelled with Timeout) and fails
  // for a retry. 0: no limit.
  std::chrono::milliseconds max_run_time{0};
  // One line per ended run (and per database failure of the runner's own); stderr when
  // unset.
  std::function<void(std::string_view line)> log;
};

// Counts of ended runs since start().
struct RunnerCounts {
  std::uint64_t succeeded = 0;
  std::uint64_t retrying = 0;   // failed, queued again
  std::uint64_t failed = 0;     // failed with no attempts left
  std::uint64_t cancelled = 0;  // stopped by cancel()
  std::uint64_t released = 0;   // stopped by stop(), queued again
  std::uint64_t lost = 0;       // the lease went to another runner; the outcome was not kept
};

class JobRunner {
 public:
  // Throws std::invalid_argument for options out of range.
  explicit JobRunner(JobStore& store, JobRunnerOptions options = {});
  ~JobRunner();  // stop(0)
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // The handler of a kind; before start(). A job of a kind with no handler fails (and is
  // retried: a newer build may know it).
  void handle(std::string kind, JobHandler handler);
  void start();
  // Claims nothing more, waits up to `drain` for the runs going to end, then cancels the rest
  // (CancelReason::Shutdown) and waits for them: each is queued again once its handler
  // returns (a handler that never looks at its token is waited for). Safe to call twice, and
  // from two threads at once; a runner stopped cannot start again.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

  RunnerCounts counts() const;

 private:
  struct Run;
  void work();
  void wake_workers();
  // PostgreSQL: hears the NOTIFY of each job enqueued (by any process) and wakes the workers.
  void listen_for_jobs();
  void keep_leases();
  void run(ClaimedJob job);
  void record(const ClaimedJob& job, std::string_view outcome, std::chrono::nanoseconds took,
              std::string_view detail = {});
  void log(std::string_view line) const;

  JobStore& store_;
  JobRunnerOptions options_;
  std::map<std::string, JobHandler, std::less<>> handlers_;

  std::mutex stop_mutex_;  // one stop() at a time
  mutable std::mutex mutex_;
  std::condition_variable wake_;        // workers: a new job, or stop
  std::condition_variable runs_ended_;  // stop(): a run ended
  std::condition_variable beat_;        // the heartbeat: stop
  std::uint64_t wake_count_ = 0;        // enqueues heard since start
  bool started_ = false;
  bool stopping_ = false;
  bool workers_joined_ = false;             // stop(): no run is going, the heartbeat may end
  bool runs_added_ = false;                 // a run started since the heartbeat last looked
  std::vector<std::shared_ptr<Run>> runs_;  // going now
  RunnerCounts counts_;
  JobStore::Subscription subscription_;
  std::vector<std::thread> workers_;
  std::thread heartbeat_;
  core::CancelSource stop_listening_;
  std::thread listener_;
};

}  // namespace molt::jobs
