// molt::jobs::JobRunner against a real SQLite file: jobs run on the runner's threads, and
// each ending (success, retry, failure, cancel, timeout, stop, lost lease) is what the store
// keeps.

#include "molt/jobs/job_runner.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"
#include "support/eventually.hpp"
#include "support/postgres_server.hpp"

namespace molt::jobs {
namespace {

using namespace std::chrono_literals;

using molt::testing::eventually;

class JobRunnerTest : public ::testing::Test {
 protected:
  JobRunnerTest() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("molt_runner_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db::SqliteOptions o;
    o.path = (dir_ / "jobs.db").string();
    o.read_write = true;
    o.create = true;
    db_ = db::open_sqlite(o);
    JobStoreOptions so;
    so.retry.base_delay = 10ms;
    so.retry.max_delay = 20ms;
    so.retry.max_attempts = 3;
    so.expiry_scan = 0ms;
    so.clock = [this] {
      ++clock_reads_;
      return Clock::now() + skew_ms_.load() * 1ms;
    };
    store_ = std::make_unique<JobStore>(db_, so);
    store_->install();
  }
  ~JobRunnerTest() override {
    runner_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  JobRunnerOptions options() {
    JobRunnerOptions o;
    o.threads = 2;
    o.lease = 300ms;
    o.poll_interval = 10s;  // a test that passes sooner was woken, not polled
    o.log = [this](std::string_view line) {
      const std::lock_guard lock(log_mutex_);
      log_.emplace_back(line);
    };
    return o;
  }
  JobRunner& runner(JobRunnerOptions o) {
    runner_ = std::make_unique<JobRunner>(*store_, std::move(o));
    return *runner_;
  }
  JobRunner& runner() { return runner(options()); }

  std::int64_t enqueue(std::string kind, std::string payload = "{}") {
    NewJob j;
    j.kind = std::move(kind);
    j.payload = std::move(payload);
    return store_->enqueue(j).id;
  }
  JobState state_of(std::int64_t id) { return store_->find(id)->state; }
  // Whether a line of the log holds `text` (and `more`).
  bool logged(std::string_view text, std::string_view more = {}) {
    const std::lock_guard lock(log_mutex_);
    for (const auto& line : log_)
      if (line.find(text) != std::string::npos && line.find(more) != std::string::npos) return true;
    return false;
  }

  std::filesystem::path dir_;
  std::shared_ptr<db::Database> db_;
  std::atomic<std::int64_t> skew_ms_{0};
  std::atomic<std::int64_t> clock_reads_{0};  // a measure of how many statements ran
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobRunner> runner_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

TEST_F(JobRunnerTest, RunsEnqueuedJobsAndKeepsTheirResults) {
  JobRunner& r = runner();
  r.handle("double", [](JobContext& job) {
    job.result = std::to_string(2 * std::stoi(std::string(job.payload())));
  });
  r.start();
  const auto a = enqueue("double", "21");
  const auto b = enqueue("double", "50");
  ASSERT_TRUE(eventually([&] { return r.counts().succeeded == 2; }));
  EXPECT_EQ(store_->find(a)->result, "42");
  EXPECT_EQ(store_->find(b)->result, "100");
  EXPECT_EQ(state_of(a), JobState::Succeeded);
  EXPECT_TRUE(eventually([&] {
    return logged("job id=" + std::to_string(a) +
                  " kind=double queue=default attempt=1/3 outcome=succeeded");
  }));
}

TEST_F(JobRunnerTest, SeesJobsOtherProcessesEnqueueWithinThePollInterval) {
  auto o = options();
  o.poll_interval = 50ms;
  JobRunner& r = runner(o);
  r.handle("x", [](JobContext&) {});
  r.start();
  // Another store on the same file, as another process would have: no wake-up reaches here.
  JobStoreOptions so;
  JobStore elsewhere(db_, so);
  NewJob j;
  j.kind = "x";
  const auto id = elsewhere.enqueue(j).id;
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Succeeded; }));
}

TEST_F(JobRunnerTest, AThrowingHandlerIsRetriedUntilItsAttemptsRunOut) {
  JobRunner& r = runner();
  std::atomic<int> calls{0};
  r.handle("flaky", [&](JobContext& job) {
    ++calls;
    if (job.job.attempt < 2) throw std::runtime_error("not yet");
  });
  r.handle("broken", [](JobContext&) { throw std::runtime_error("bad payload"); });
  r.handle("invalid", [](JobContext&) { throw core::InvalidInput("not a payload"); });
  r.start();
  const auto flaky = enqueue("flaky");
  const auto broken = enqueue("broken");
  const auto invalid = enqueue("invalid");
  ASSERT_TRUE(eventually([&] { return state_of(flaky) == JobState::Succeeded; }));
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(store_->find(flaky)->last_error, "not yet");
  ASSERT_TRUE(eventually([&] { return state_of(broken) == JobState::Failed; }));
  EXPECT_EQ(store_->find(broken)->attempts, 3);
  EXPECT_EQ(store_->find(broken)->last_error, "bad payload");
  // Bad input does not get better: not retried.
  ASSERT_TRUE(eventually([&] { return state_of(invalid) == JobState::Failed; }));
  EXPECT_EQ(store_->find(invalid)->attempts, 1);
  EXPECT_EQ(store_->find(invalid)->last_error, "not a payload");
  // The line follows the store's change.
  EXPECT_TRUE(eventually([&] { return logged("outcome=retrying", "error=\"not yet\""); }));
  EXPECT_TRUE(
      eventually([&] { return logged("attempt=3/3 outcome=failed", "error=\"bad payload\""); }));
}

TEST_F(JobRunnerTest, AJobOfAnUnknownKindFailsWithAMessage) {
  JobRunner& r = runner();
  r.start();
  const auto id = enqueue("nobody_knows");
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Failed; }));
  EXPECT_EQ(store_->find(id)->last_error,
            "no handler for the kind \"nobody_knows\" in this runner");
}

// A handler that runs until its token is cancelled, and says why it stopped.
JobHandler until_cancelled(std::atomic<int>& started, std::atomic<int>& reason) {
  return [&](JobContext& job) {
    ++started;
    while (!job.cancel.cancelled()) std::this_thread::sleep_for(2ms);
    reason = static_cast<int>(job.cancel.reason());
    job.cancel.throw_if_cancelled();
  };
}

TEST_F(JobRunnerTest, CancelStopsARunningJob) {
  JobRunner& r = runner();
  std::atomic<int> started{0}, reason{0};
  r.handle("long", until_cancelled(started, reason));
  r.start();
  const auto id = enqueue("long");
  ASSERT_TRUE(eventually([&] { return started == 1; }));
  EXPECT_TRUE(store_->cancel(id));
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Cancelled; }));
  EXPECT_EQ(reason.load(), static_cast<int>(core::CancelReason::Cancelled));
  EXPECT_EQ(r.counts().cancelled, 1u);
}

TEST_F(JobRunnerTest, ARunPastMaxRunTimeIsStoppedAndRetried) {
  auto o = options();
  o.max_run_time = 50ms;
  JobRunner& r = runner(o);
  std::atomic<int> started{0}, reason{0};
  r.handle("long", until_cancelled(started, reason));
  r.start();
  const auto id = enqueue("long");
  ASSERT_TRUE(eventually([&] { return r.counts().retrying >= 1; }));
  EXPECT_EQ(reason.load(), static_cast<int>(core::CancelReason::Timeout));
  EXPECT_NE(store_->find(id)->last_error->find("max_run_time (50 ms)"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Failed; }));
}

TEST_F(JobRunnerTest, StopDrainsRunsThatEndInTime) {
  JobRunner& r = runner();
  std::atomic<bool> in_handler{false};
  r.handle("short", [&](JobContext&) {
    in_handler = true;
    std::this_thread::sleep_for(200ms);
  });
  r.start();
  const auto id = enqueue("short");
  ASSERT_TRUE(eventually([&] { return in_handler.load(); }));
  r.stop(5s);
  EXPECT_EQ(state_of(id), JobState::Succeeded);
  // Stopped: new jobs wait for the next runner.
  const auto later = enqueue("short");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(state_of(later), JobState::Queued);
  r.stop();  // again: nothing
}

TEST_F(JobRunnerTest, StopCancelsRunsPastTheDrainAndQueuesThemAgain) {
  JobRunner& r = runner();
  std::atomic<int> started{0}, reason{0};
  r.handle("long", until_cancelled(started, reason));
  r.start();
  const auto id = enqueue("long");
  ASSERT_TRUE(eventually([&] { return started == 1; }));
  r.stop(50ms);
  EXPECT_EQ(reason.load(), static_cast<int>(core::CancelReason::Shutdown));
  const auto info = store_->find(id);
  EXPECT_EQ(info->state, JobState::Queued);
  EXPECT_EQ(info->attempts, 0) << "a run stopped from outside is not an attempt";
  EXPECT_EQ(r.counts().released, 1u);
}

TEST_F(JobRunnerTest, ARunThatLostItsLeaseIsStoppedAndItsOutcomeNotKept) {
  JobRunner& r = runner();
  std::atomic<int> started{0}, reason{0};
  r.handle("long", until_cancelled(started, reason));
  r.start();
  const auto id = enqueue("long");
  ASSERT_TRUE(eventually([&] { return started == 1; }));
  // The store's clock jumps past the lease, and another runner takes the job.
  skew_ms_ = 3'600'000;
  auto taken = store_->claim("default", 1h);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->id, id);
  ASSERT_TRUE(eventually([&] { return r.counts().lost == 1; }));
  EXPECT_EQ(reason.load(), static_cast<int>(core::CancelReason::Cancelled));
  EXPECT_EQ(state_of(id), JobState::Running) << "still the other runner's";
  EXPECT_TRUE(store_->complete(*taken));
}

// From a review: a cancel that reached a run as its handler failed queued it for a retry.
TEST_F(JobRunnerTest, ACancelledRunThatFailsIsNotRunAgain) {
  JobRunner& r = runner();
  std::atomic<int> calls{0};
  std::atomic<bool> go{false};
  r.handle("x", [&](JobContext&) {
    ++calls;
    while (!go) std::this_thread::sleep_for(1ms);
    throw std::runtime_error("failed on its own");
  });
  r.start();
  const auto id = enqueue("x");
  ASSERT_TRUE(eventually([&] { return calls == 1; }));
  EXPECT_TRUE(store_->cancel(id));
  go = true;
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Cancelled; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(state_of(id), JobState::Cancelled);
}

// From a review: a run past max_run_time whose handler went on made the heartbeat spin, and
// its lease ran out, so that another runner could take the job while it still ran.
TEST_F(JobRunnerTest, ARunPastMaxRunTimeKeepsItsLeaseWithoutSpinning) {
  auto o = options();
  o.max_run_time = 50ms;
  JobRunner& r = runner(o);
  std::atomic<bool> started{false}, release{false};
  r.handle("stubborn", [&](JobContext&) {
    started = true;
    while (!release) std::this_thread::sleep_for(1ms);  // does not look at its token
  });
  r.start();
  const auto id = enqueue("stubborn");
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  const std::int64_t reads_before = clock_reads_;
  std::this_thread::sleep_for(700ms);  // past max_run_time, and twice past the lease
  EXPECT_LT(clock_reads_ - reads_before, 100) << "the heartbeat spun";
  EXPECT_FALSE(store_->claim("default", 1s)) << "the lease was kept";
  release = true;  // and it returns: it did its work after all
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Succeeded; }));
  EXPECT_EQ(store_->find(id)->attempts, 1);
}

TEST_F(JobRunnerTest, MaxRunTimeIsKeptOnTimeWithALongLease) {
  auto o = options();
  o.max_run_time = 50ms;
  o.lease = 6s;  // heartbeats every 2 s
  JobRunner& r = runner(o);
  std::atomic<int> started{0}, reason{0};
  r.handle("long", until_cancelled(started, reason));
  r.start();
  std::this_thread::sleep_for(100ms);  // the heartbeat sleeps, with no run to wait for
  const auto begun = std::chrono::steady_clock::now();
  enqueue("long");
  ASSERT_TRUE(eventually([&] { return reason != 0; }));
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 1s);
  EXPECT_EQ(reason.load(), static_cast<int>(core::CancelReason::Timeout));
}

// From a review: a result complete() refused left the job running until its lease ran out.
TEST_F(JobRunnerTest, AResultTheStoreRefusesFailsTheRunSayingWhy) {
  JobRunner& r = runner();
  r.handle("bad_result", [](JobContext& job) { job.result = "\xff"; });
  r.start();
  const auto id = enqueue("bad_result");
  ASSERT_TRUE(eventually([&] { return state_of(id) == JobState::Failed; }));
  EXPECT_EQ(store_->find(id)->attempts, 1) << "the same work would give the same result";
  EXPECT_NE(store_->find(id)->last_error->find("refused the handler's result"), std::string::npos)
      << *store_->find(id)->last_error;
}

TEST_F(JobRunnerTest, TwoStopsAtOnceBothReturn) {
  JobRunner& r = runner();
  r.handle("x", [](JobContext&) {});
  r.start();
  std::thread other([&] { r.stop(1s); });
  r.stop(1s);
  other.join();
  SUCCEED();
}

TEST_F(JobRunnerTest, AStoppedRunnerDoesNotStartAndAnUnboundedDrainWaits) {
  {
    JobRunner never(*store_, options());
    never.stop();
    EXPECT_THROW(never.start(), std::logic_error);
  }  // and its destructor returns
  JobRunner& r = runner();
  std::atomic<bool> in_handler{false};
  r.handle("short", [&](JobContext&) {
    in_handler = true;
    std::this_thread::sleep_for(100ms);
  });
  r.start();
  const auto id = enqueue("short");
  // In its handler, not only claimed: a job claimed as stop() begins goes back to the queue.
  ASSERT_TRUE(eventually([&] { return in_handler.load(); }));
  r.stop(std::chrono::milliseconds::max());
  EXPECT_EQ(state_of(id), JobState::Succeeded);
}

// A runner that died leaves its job running until the lease runs out: a runner waiting for
// work wakes then to take it back, not at its next poll.
TEST_F(JobRunnerTest, AJobWhoseRunnerDiedIsTakenBackWhenItsLeaseRunsOut) {
  const auto id = enqueue("x");
  ASSERT_TRUE(store_->claim("default", 300ms));  // and never a word from that runner again
  JobRunner& r = runner();                       // polls every 10 s
  std::atomic<int> ran{0};
  r.handle("x", [&](JobContext&) { ++ran; });
  r.start();
  ASSERT_TRUE(eventually([&] { return ran == 1; }, 5s));
  EXPECT_TRUE(eventually([&] { return state_of(id) == JobState::Succeeded; }));
  EXPECT_EQ(store_->find(id)->attempts, 2);
}

TEST_F(JobRunnerTest, RefusesOptionsOutOfRange) {
  auto o = options();
  o.queues.clear();
  EXPECT_THROW(JobRunner(*store_, o), std::invalid_argument);
  o = options();
  o.threads = 0;
  EXPECT_THROW(JobRunner(*store_, o), std::invalid_argument);
  o = options();
  o.queues = {"bad queue"};
  EXPECT_THROW(JobRunner(*store_, o), std::invalid_argument);
  o = options();
  o.poll_interval = std::chrono::milliseconds::max();
  EXPECT_THROW(JobRunner(*store_, o), std::invalid_argument);
  JobRunner& r = runner();
  r.start();
  EXPECT_THROW(r.handle("late", [](JobContext&) {}), std::logic_error);
}

}  // namespace
}  // namespace molt::jobs

namespace molt::jobs {
namespace {

// PostgreSQL: a job another process enqueues (here another store, whose enqueue no listener
// of this process hears) wakes the runner through LISTEN/NOTIFY, long before its poll.
TEST(JobRunnerOnPostgresTest, AJobEnqueuedElsewhereIsHeardAtOnce) {
  db::PostgresOptions o;
  o.dsn = molt::testing::PostgresServer::shared().dsn() + " application_name=molt-runner-listen";
  auto db = db::open_postgres(o);
  db->execute("DROP TABLE IF EXISTS jobs_listen");
  JobStore store(db, {.table = "jobs_listen"});
  store.install();
  JobRunner runner(store, {.threads = 1, .poll_interval = 30s, .log = [](std::string_view) {}});
  std::atomic<int> ran{0};
  runner.handle("x", [&](JobContext&) { ++ran; });
  runner.start();
  std::this_thread::sleep_for(300ms);  // the runner has polled once and waits now

  JobStore elsewhere(db::open_postgres(o), {.table = "jobs_listen"});
  NewJob job;
  job.kind = "x";
  const auto started = std::chrono::steady_clock::now();
  elsewhere.enqueue(job);
  ASSERT_TRUE(eventually([&] { return ran == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "heard, not polled";
  runner.stop();
}

}  // namespace
}  // namespace molt::jobs
