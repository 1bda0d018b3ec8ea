#include "molt/jobs/job_runner.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "molt/core/status.hpp"

namespace molt::jobs {
namespace {
// The longest any wait here lasts at once: longer is "until it happens".
constexpr std::chrono::milliseconds kLongestWait = std::chrono::hours(24 * 366);
}  // namespace

// A run going now: what the heartbeat needs to keep its lease and to stop it.
struct JobRunner::Run {
  explicit Run(ClaimedJob j) : job(std::move(j)) {}
  const ClaimedJob job;
  core::CancelSource source;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Why the run was told to stop; set once, before source is cancelled, under mutex_.
  enum class Stop { None, CancelRequested, LeaseLost, TooLong, Shutdown } stop = Stop::None;
};

JobRunner::JobRunner(JobStore& store, JobRunnerOptions options)
    : store_(store), options_(std::move(options)) {
  if (options_.queues.empty()) throw std::invalid_argument("JobRunnerOptions::queues is empty");
  if (options_.threads == 0) throw std::invalid_argument("JobRunnerOptions::threads must be > 0");
  if (options_.lease < std::chrono::milliseconds(3))
    throw std::invalid_argument("JobRunnerOptions::lease must be at least 3 ms");
  // Bounded, so that the waits' time arithmetic never overflows.
  constexpr auto kDay = std::chrono::hours(24);
  if (options_.lease > kDay) throw std::invalid_argument("JobRunnerOptions::lease is over a day");
  if (options_.poll_interval.count() <= 0 || options_.poll_interval > kDay)
    throw std::invalid_argument("JobRunnerOptions::poll_interval must be 1 ms to a day");
  if (options_.max_run_time.count() < 0 || options_.max_run_time > 366 * kDay)
    throw std::invalid_argument("JobRunnerOptions::max_run_time must be 0 to 366 days");
  for (const std::string& queue : options_.queues)
    if (!is_job_name(queue))
      throw std::invalid_argument("JobRunnerOptions::queues: \"" + queue +
                                  "\" is not 1 to 200 letters, digits and _ . : -");
}

JobRunner::~JobRunner() {
  stop(std::chrono::milliseconds(0));
}

void JobRunner::handle(std::string kind, JobHandler handler) {
  const std::lock_guard lock(mutex_);
  if (started_) throw std::logic_error("JobRunner::handle after start()");
  if (!handler) throw std::invalid_argument("JobRunner::handle: an empty handler for " + kind);
  handlers_[std::move(kind)] = std::move(handler);
}

void JobRunner::start() {
  {
    const std::lock_guard lock(mutex_);
    if (started_) throw std::logic_error("JobRunner::start called twice");
    if (stopping_) throw std::logic_error("JobRunner::start after stop()");
    started_ = true;
  }
  subscription_ = store_.subscribe([this](std::string_view queue) {
    if (std::find(options_.queues.begin(), options_.queues.end(), queue) != options_.queues.end())
      wake_workers();
  });
  for (std::size_t i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { work(); });
  heartbeat_ = std::thread([this] { keep_leases(); });
  // PostgreSQL tells of the jobs other processes enqueue (NOTIFY): no poll to wait for.
  if (store_.database().backend() == db::Backend::Postgres)
    listener_ = std::thread([this] { listen_for_jobs(); });
}

void JobRunner::stop(std::chrono::milliseconds drain) {
  // One stop at a time: a second caller (a signal's thread and the destructor) waits for the
  // first to end, and finds nothing left to do.
  const std::lock_guard stopping(stop_mutex_);
  {
    const std::lock_guard lock(mutex_);
    const bool running = started_ && !stopping_;
    stopping_ = true;
    if (!running) return;
  }
  subscription_.reset();
  stop_listening_.cancel(core::CancelReason::Shutdown);
  wake_.notify_all();
  if (listener_.joinable()) listener_.join();
  {
    std::unique_lock lock(mutex_);
    // A drain of years is a wait without end (and no overflow of the clock).
    const auto until = std::chrono::steady_clock::now() + std::min(drain, kLongestWait);
    runs_ended_.wait_until(lock, until, [this] { return runs_.empty(); });
    for (const auto& r : runs_) {
      if (r->stop == Run::Stop::None) r->stop = Run::Stop::Shutdown;
      r->source.cancel(core::CancelReason::Shutdown);
    }
  }
  for (auto& t : workers_) t.join();
  {
    const std::lock_guard lock(mutex_);
    workers_joined_ = true;  // the leases of runs still going were kept until here
  }
  beat_.notify_all();
  heartbeat_.join();
}

RunnerCounts JobRunner::counts() const {
  const std::lock_guard lock(mutex_);
  return counts_;
}

void JobRunner::log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  }
}

void JobRunner::wake_workers() {
  {
    const std::lock_guard lock(mutex_);
    ++wake_count_;
  }
  wake_.notify_all();
}

void JobRunner::listen_for_jobs() {
  const core::CancelToken stop = stop_listening_.token();
  std::unique_ptr<db::Listener> listener;
  while (!stop.cancelled()) {
    try {
      if (!listener) listener = store_.database().listen({store_.options().table});
      const db::Listener::Heard heard = listener->wait(core::Deadline::none(), stop);
      bool ours = heard.may_have_missed;  // a job may have come unheard: look
      for (const db::Notification& notification : heard.notifications)
        ours = ours || std::find(options_.queues.begin(), options_.queues.end(),
                                 notification.payload) != options_.queues.end();
      if (ours) wake_workers();
    } catch (const std::exception& e) {
      // The workers poll meanwhile; listening is tried again after a poll interval.
      log("job runner: listening for new jobs failed: " + core::one_line(e.what()));
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
    }
  }
}

void JobRunner::work() {
  std::size_t next_queue = 0;
  for (;;) {
    std::uint64_t heard = 0;
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) return;
      heard = wake_count_;
    }
    // One claim from each queue in turn, starting after the last one served, so that a busy
    // first queue does not starve the others.
    std::optional<ClaimedJob> claimed;
    bool database_failed = false;
    for (std::size_t i = 0; i < options_.queues.size() && !claimed; ++i) {
      const std::string& queue = options_.queues[(next_queue + i) % options_.queues.size()];
      try {
        claimed = store_.claim(queue, options_.lease);
      } catch (const std::exception& e) {
        log("job runner: claiming from queue " + queue + " failed: " + core::one_line(e.what()));
        database_failed = true;
        break;
      }
      if (claimed) next_queue = (next_queue + i + 1) % options_.queues.size();
    }
    if (claimed) {
      run(std::move(*claimed));
      continue;
    }
    // Nothing due (or the database failing): wait for an enqueue here, for the next job
    // that waits for its time (a retry, a delay), or look again after the poll interval.
    auto wait = options_.poll_interval;
    if (!database_failed) {
      try {
        for (const std::string& queue : options_.queues) {
          const auto due = store_.next_due(queue);
          if (!due) continue;
          // Due already, yet not claimed: another runner holds its row (PostgreSQL skips
          // locked rows). Not worth a turn every millisecond.
          const auto left = *due - store_.now();
          wait = std::min(wait, left <= Clock::duration(0)
                                    ? std::chrono::milliseconds(100)
                                    : std::chrono::ceil<std::chrono::milliseconds>(left) +
                                          std::chrono::milliseconds(1));
        }
      } catch (const std::exception& e) {
        log("job runner: reading when the next job is due failed: " + core::one_line(e.what()));
      }
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, wait,
                   [&] { return stopping_ || (!database_failed && wake_count_ != heard); });
  }
}

void JobRunner::run(ClaimedJob claimed) {
  auto current = std::make_shared<Run>(std::move(claimed));
  const ClaimedJob& job = current->job;
  bool claimed_while_stopping = false;
  {
    const std::lock_guard lock(mutex_);
    claimed_while_stopping = stopping_;
    if (!claimed_while_stopping) {
      runs_.push_back(current);
      runs_added_ = true;
    }
  }
  // The heartbeat's next wake-up may have to be this run's max_run_time.
  if (options_.max_run_time.count() > 0) beat_.notify_all();
  if (claimed_while_stopping) {
    try {
      record(job, store_.release(job) ? "released" : "lost", {});
    } catch (const std::exception& e) {
      log("job runner: job " + std::to_string(job.id) +
          " was not released: " + core::one_line(e.what()));
    }
    return;
  }
  const auto handler = handlers_.find(job.kind);
  JobContext context{job, current->source.token(), store_, {}};
  bool succeeded = false;
  bool retry = true;  // bad input does not get better: InvalidInput is not retried
  std::string error;
  if (handler == handlers_.end()) {
    error = "no handler for the kind \"" + job.kind + "\" in this runner";
  } else {
    try {
      handler->second(context);
      succeeded = true;
    } catch (const core::Error& e) {
      error = e.message();
      retry = e.code() != core::StatusCode::InvalidInput;
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "the handler threw something that is not a std::exception";
    }
  }
  Run::Stop stop = Run::Stop::None;
  {
    const std::lock_guard lock(mutex_);
    std::erase(runs_, current);
    stop = current->stop;
  }
  runs_ended_.notify_all();

  const auto took = std::chrono::steady_clock::now() - current->started;
  try {
    if (succeeded) {
      try {
        record(job, store_.complete(job, context.result) ? "succeeded" : "lost", took);
        return;
      } catch (const core::InvalidInput& e) {
        // A result the store will not keep (not text, too long) fails the run, saying why.
        error = "the store refused the handler's result: " + e.message();
        retry = false;  // the same work would give the same result
      }
    }
    if (stop == Run::Stop::CancelRequested) {
      record(job, store_.finish_cancelled(job) ? "cancelled" : "lost", took);
    } else if (stop == Run::Stop::Shutdown) {
      record(job, store_.release(job) ? "released" : "lost", took);
    } else if (stop == Run::Stop::LeaseLost) {
      record(job, "lost", took);
    } else {
      if (stop == Run::Stop::TooLong)
        error = "ran longer than the runner's max_run_time (" +
                std::to_string(options_.max_run_time.count()) + " ms): " + error;
      switch (store_.fail(job, error, retry)) {
        case FailOutcome::Retrying:
          record(job, "retrying", took, error);
          break;
        case FailOutcome::Failed:
          record(job, "failed", took, error);
          break;
        case FailOutcome::Cancelled:
          record(job, "cancelled", took, error);
          break;
        case FailOutcome::LeaseLost:
          record(job, "lost", took, error);
          break;
      }
    }
  } catch (const std::exception& e) {
    // The outcome could not be written; the lease runs out and the job comes back.
    log("job runner: job " + std::to_string(job.id) +
        " ended but its outcome was not saved: " + core::one_line(e.what()));
  }
}

void JobRunner::record(const ClaimedJob& job, std::string_view outcome,
                       std::chrono::nanoseconds took, std::string_view detail) {
  {
    const std::lock_guard lock(mutex_);
    if (outcome == "succeeded") ++counts_.succeeded;
    if (outcome == "retrying") ++counts_.retrying;
    if (outcome == "failed") ++counts_.failed;
    if (outcome == "cancelled") ++counts_.cancelled;
    if (outcome == "released") ++counts_.released;
    if (outcome == "lost") ++counts_.lost;
  }
  std::string line =
      "job id=" + std::to_string(job.id) + " kind=" + job.kind + " queue=" + job.queue +
      " attempt=" + std::to_string(job.attempt) + "/" + std::to_string(job.max_attempts) +
      " outcome=" + std::string(outcome) +
      " ms=" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  if (!detail.empty()) line += " error=\"" + core::one_line(detail.substr(0, 300)) + "\"";
  log(line);
}

void JobRunner::keep_leases() {
  const auto period = options_.lease / 3;
  std::unique_lock lock(mutex_);
  for (;;) {
    // Wakes at the next renewal, or sooner for a run about to pass max_run_time (one told to
    // stop already is not waited for again); a run that starts meanwhile is waited for too.
    const auto renewal = std::chrono::steady_clock::now() + period;
    for (;;) {
      auto next = renewal;
      if (options_.max_run_time.count() > 0)
        for (const auto& r : runs_)
          if (r->stop == Run::Stop::None) next = std::min(next, r->started + options_.max_run_time);
      runs_added_ = false;
      if (!beat_.wait_until(lock, next, [this] { return workers_joined_ || runs_added_; })) break;
      if (workers_joined_) return;
    }
    const std::vector<std::shared_ptr<Run>> runs = runs_;
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    for (const auto& r : runs) {
      Run::Stop stop = Run::Stop::None;
      if (options_.max_run_time.count() > 0 && now - r->started >= options_.max_run_time)
        stop = Run::Stop::TooLong;
      // Every run going keeps its lease, also one told to stop: until its handler returns, no
      // other runner may take the job.
      try {
        switch (store_.heartbeat(r->job, options_.lease)) {
          case LeaseState::Held:
            break;
          case LeaseState::CancelRequested:
            if (stop == Run::Stop::None) stop = Run::Stop::CancelRequested;
            break;
          case LeaseState::Lost:
            stop = Run::Stop::LeaseLost;
            break;
        }
      } catch (const std::exception& e) {
        // Tried again next time; once the lease has run out the store says Lost.
        log("job runner: the heartbeat of job " + std::to_string(r->job.id) +
            " failed: " + core::one_line(e.what()));
      }
      if (stop == Run::Stop::None) continue;
      const std::lock_guard stop_lock(mutex_);
      if (r->stop != Run::Stop::None) continue;
      r->stop = stop;
      r->source.cancel(stop == Run::Stop::TooLong ? core::CancelReason::Timeout
                                                  : core::CancelReason::Cancelled);
    }
    lock.lock();
  }
}

}  // namespace molt::jobs
