#pragma once
// What a durable job is (DESIGN.md §10): a row in the application's own database that names a
// kind of work and carries its input, claimed by one runner at a time under a lease.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace molt::jobs {

using Clock = std::chrono::system_clock;  // stored as milliseconds since the Unix epoch

// queued -> running -> succeeded | queued again (a failure with attempts left, a lease that
// ran out) | failed (no attempts left) | cancelled. A queued job may be cancelled too.
enum class JobState { Queued, Running, Succeeded, Failed, Cancelled };

std::string_view to_string(JobState state) noexcept;
std::optional<JobState> parse_job_state(std::string_view name) noexcept;
// succeeded, failed and cancelled: the job will not run again.
constexpr bool is_finished(JobState state) noexcept {
  return state == JobState::Succeeded || state == JobState::Failed || state == JobState::Cancelled;
}

// Whether `name` can be a job's kind or queue: 1 to 200 letters, digits and _ . : -, which a
// log line and a URL carry as they are.
bool is_job_name(std::string_view name) noexcept;

// A job to enqueue.
struct NewJob {
  std::string kind;               // which handler runs it; letters, digits, "_.:-", 1-200
  std::string payload;            // the handler's input, text (JSON by convention)
  std::string queue = "default";  // same rules as kind
  // Enqueueing again with the same key (in the same queue) gives back the job the first call
  // made, whatever its state, instead of a second job: safe to repeat after a timeout.
  std::optional<std::string> idempotency_key;  // 1-200 bytes of UTF-8 text
  // Runs no earlier than this long after enqueueing (at most 366 days).
  Clock::duration delay{0};
  std::optional<int> max_attempts;  // the store's RetryPolicy when absent; 1 = no retry
  // Who asked for it, as its enqueuer names it (molt_accel's task backend: the Django task's
  // import path, "myapp.tasks.send_report"), kept for whoever reads the job back; text, at
  // most 1,000 bytes.
  std::optional<std::string> origin;
};

struct Enqueued {
  std::int64_t id = 0;
  bool created = true;  // false: the idempotency key named a job enqueued before
};

// A job a runner holds. Its lease token proves the hold: a runner whose lease ran out (and
// whose job another runner took) can no longer finish the job.
struct ClaimedJob {
  std::int64_t id = 0;
  std::string queue;
  std::string kind;
  std::string payload;
  int attempt = 1;  // this run's number, from 1
  int max_attempts = 1;
  std::string lease_token;
};

// A job as stored, for whoever asks after it.
struct JobInfo {
  std::int64_t id = 0;
  std::string queue;
  std::string kind;
  std::string payload;
  JobState state = JobState::Queued;
  int attempts = 0;  // runs started so far
  int max_attempts = 1;
  std::optional<std::string> idempotency_key;
  std::optional<std::string> origin;
  std::optional<std::string> last_error;  // the latest failure's message
  std::optional<std::string> result;      // what a succeeded run left (JobContext::result)
  bool cancel_requested = false;          // cancel() was asked for it
  Clock::time_point created_at;
  Clock::time_point run_at;                     // a queued job's earliest start
  std::optional<Clock::time_point> started_at;  // the latest run's start
  std::optional<Clock::time_point> finished_at;
};

// Jobs of one queue by state.
struct QueueCounts {
  std::int64_t queued = 0;  // includes those waiting for a retry's time
  std::int64_t running = 0;
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
};

}  // namespace molt::jobs
