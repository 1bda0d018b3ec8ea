// molt::jobs::JobStore on both backends: a real SQLite file in a temporary folder, and a real
// throwaway PostgreSQL server (tests/support/postgres_server.hpp), one table per test.

#include "molt/jobs/job_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"
#include "support/postgres_server.hpp"
#include "support/status_of.hpp"

namespace molt::jobs {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;
using molt::testing::status_of;

// A clock the test moves by hand.
struct ManualClock {
  std::atomic<std::int64_t> ms{1'700'000'000'000};
  void advance(std::chrono::milliseconds d) { ms += d.count(); }
  Clock::time_point now() const { return Clock::time_point(std::chrono::milliseconds(ms.load())); }
};

class JobStoreTest : public ::testing::TestWithParam<db::Backend> {
 protected:
  JobStoreTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // One table per test (its name without the parameter's suffix), on either backend.
    std::string name = info->name();
    name = name.substr(0, name.find('/'));
    table_ = "jobs_" + name.substr(0, 40);
    if (GetParam() == db::Backend::Sqlite) {
      dir_ = std::filesystem::path(::testing::TempDir()) /
             ("molt_jobs_" + std::to_string(::getpid()) + "_" + name);
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      db::SqliteOptions o;
      o.path = (dir_ / "jobs.db").string();
      o.read_write = true;
      o.create = true;
      db_ = db::open_sqlite(o);
    } else {
      db::PostgresOptions o;
      o.dsn = molt::testing::PostgresServer::shared().dsn() + " application_name=molt-jobs-test";
      o.pool_size = 8;
      db_ = db::open_postgres(o);
      db_->execute("DROP TABLE IF EXISTS " + table_);
    }
  }
  ~JobStoreTest() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  JobStoreOptions options() {
    JobStoreOptions o;
    o.table = table_;
    o.clock = [this] { return clock_.now(); };
    o.retry.jitter = 0;  // exact delays, to check them
    o.retry.base_delay = 1s;
    o.retry.max_attempts = 3;
    return o;
  }
  JobStore& store(JobStoreOptions o) {
    stores_.push_back(std::make_unique<JobStore>(db_, std::move(o)));
    stores_.back()->install();
    return *stores_.back();
  }
  JobStore& store() { return store(options()); }

  std::filesystem::path dir_;
  std::string table_;
  std::shared_ptr<db::Database> db_;
  ManualClock clock_;
  std::vector<std::unique_ptr<JobStore>> stores_;
};

NewJob job(std::string kind, std::string payload = "{}") {
  NewJob j;
  j.kind = std::move(kind);
  j.payload = std::move(payload);
  return j;
}

TEST_P(JobStoreTest, RunsAJobFromEnqueueToSuccess) {
  JobStore& s = store();
  s.install();  // again: nothing changes
  const Enqueued made = s.enqueue(job("send_mail", R"({"to":7})"));
  EXPECT_TRUE(made.created);

  auto claimed = s.claim("default", 30s);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, made.id);
  EXPECT_EQ(claimed->kind, "send_mail");
  EXPECT_EQ(claimed->payload, R"({"to":7})");
  EXPECT_EQ(claimed->attempt, 1);
  EXPECT_EQ(claimed->max_attempts, 3);
  EXPECT_FALSE(s.claim("default", 30s)) << "a running job is not claimed twice";
  EXPECT_EQ(s.find(made.id)->state, JobState::Running);

  EXPECT_EQ(status_of([&] { s.complete(*claimed, "\xff"); }), StatusCode::InvalidInput);
  EXPECT_TRUE(s.complete(*claimed, R"({"sent":true})"));
  const auto info = s.find(made.id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, JobState::Succeeded);
  EXPECT_EQ(info->result, R"({"sent":true})");
  EXPECT_FALSE(info->last_error);
  EXPECT_EQ(info->attempts, 1);
  EXPECT_EQ(info->finished_at, clock_.now());
  EXPECT_EQ(info->created_at, clock_.now());
  EXPECT_EQ(info->started_at, clock_.now());
  clock_.advance(1s);
  EXPECT_FALSE(s.find(s.enqueue(job("later")).id)->started_at) << "not started yet";
  EXPECT_FALSE(s.complete(*claimed)) << "a finished job is not finished twice";
  EXPECT_FALSE(s.find(made.id + 1000));
}

TEST_P(JobStoreTest, ClaimsDueJobsOldestFirstAndPerQueue) {
  JobStore& s = store();
  NewJob later = job("later");
  later.delay = 10s;
  const auto late = s.enqueue(later).id;
  const auto first = s.enqueue(job("first")).id;
  clock_.advance(1ms);
  const auto second = s.enqueue(job("second")).id;
  NewJob other = job("elsewhere");
  other.queue = "mail";
  const auto elsewhere = s.enqueue(other).id;

  EXPECT_EQ(s.claim("default", 30s)->id, first);
  EXPECT_EQ(s.claim("default", 30s)->id, second);
  EXPECT_FALSE(s.claim("default", 30s)) << "the delayed job is not due";
  EXPECT_EQ(s.next_due("default"), clock_.now() - 1ms + 10s);
  EXPECT_FALSE(s.next_due("nothing_here"));
  // A running job's lease running out is a time to look too.
  NewJob mail = job("mail");
  mail.queue = "mail_only";
  s.enqueue(mail);
  ASSERT_TRUE(s.claim("mail_only", 7s));
  EXPECT_EQ(s.next_due("mail_only"), clock_.now() + 7s);
  clock_.advance(10s);
  EXPECT_EQ(s.claim("default", 30s)->id, late);
  EXPECT_EQ(s.claim("mail", 30s)->id, elsewhere);
  EXPECT_FALSE(s.claim("nothing_here", 30s));
}

TEST_P(JobStoreTest, AnIdempotencyKeyGivesBackTheFirstJob) {
  JobStore& s = store();
  NewJob j = job("charge", R"({"cents":500})");
  j.idempotency_key = "order-17";
  const auto first = s.enqueue(j);
  EXPECT_TRUE(first.created);
  j.payload = R"({"cents":999})";  // the repeat's own payload does not replace the first's
  const auto again = s.enqueue(j);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(s.find(first.id)->payload, R"({"cents":500})");
  EXPECT_EQ(s.find(first.id)->idempotency_key, "order-17");

  // Also once it ran.
  auto claimed = s.claim("default", 30s);
  ASSERT_TRUE(s.complete(*claimed));
  EXPECT_EQ(s.enqueue(j).id, first.id);

  // The key is the queue's own; jobs without a key never collide.
  j.queue = "billing";
  EXPECT_TRUE(s.enqueue(j).created);
  EXPECT_NE(s.enqueue(job("plain")).id, s.enqueue(job("plain")).id);
}

TEST_P(JobStoreTest, AFullQueueAnswersBusyAndLosesNothing) {
  auto o = options();
  o.max_pending = 2;
  JobStore& s = store(o);
  NewJob keyed = job("a");
  keyed.idempotency_key = "k";
  const auto a = s.enqueue(keyed).id;
  s.enqueue(job("b"));
  std::string message;
  EXPECT_EQ(status_of([&] { s.enqueue(job("c")); }, &message), StatusCode::Busy);
  EXPECT_NE(message.find("\"default\" is full"), std::string::npos) << message;
  EXPECT_EQ(s.enqueue(keyed).id, a) << "a repeat is answered when the queue is full";
  NewJob other = job("c");
  other.queue = "other";
  EXPECT_TRUE(s.enqueue(other).created) << "another queue has its own room";

  auto claimed = s.claim("default", 30s);
  EXPECT_EQ(status_of([&] { s.enqueue(job("c")); }), StatusCode::Busy)
      << "a running job still takes room";
  ASSERT_TRUE(s.complete(*claimed));
  EXPECT_TRUE(s.enqueue(job("c")).created);
  EXPECT_EQ(s.counts("default").queued, 2);
  EXPECT_EQ(s.counts("default").succeeded, 1);
}

TEST_P(JobStoreTest, AFailedRunIsRetriedAfterBackoffUntilNoAttemptsAreLeft) {
  JobStore& s = store();
  const auto id = s.enqueue(job("flaky")).id;

  auto run = s.claim("default", 30s);
  EXPECT_EQ(s.fail(*run, "upstream said 503"), FailOutcome::Retrying);
  auto info = s.find(id);
  EXPECT_EQ(info->state, JobState::Queued);
  EXPECT_EQ(info->last_error, "upstream said 503");
  EXPECT_EQ(info->run_at, clock_.now() + 1s);
  EXPECT_FALSE(s.claim("default", 30s)) << "not before its backoff";
  EXPECT_EQ(s.fail(*run, "again"), FailOutcome::LeaseLost) << "that run is over";

  clock_.advance(1s);
  run = s.claim("default", 30s);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->attempt, 2);
  EXPECT_EQ(s.fail(*run, "still 503"), FailOutcome::Retrying);
  EXPECT_EQ(s.find(id)->run_at, clock_.now() + 2s) << "the delay doubles";

  clock_.advance(2s);
  run = s.claim("default", 30s);
  EXPECT_EQ(run->attempt, 3);
  EXPECT_EQ(s.fail(*run, "gave up"), FailOutcome::Failed);
  info = s.find(id);
  EXPECT_EQ(info->state, JobState::Failed);
  EXPECT_EQ(info->attempts, 3);
  EXPECT_EQ(info->last_error, "gave up");
  EXPECT_TRUE(info->finished_at);
  clock_.advance(1h);
  EXPECT_FALSE(s.claim("default", 30s));
}

TEST_P(JobStoreTest, AJobWithOneAttemptIsNotRetried) {
  JobStore& s = store();
  NewJob once = job("once");
  once.max_attempts = 1;
  s.enqueue(once);
  EXPECT_EQ(s.fail(*s.claim("default", 30s), "no"), FailOutcome::Failed);
}

TEST_P(JobStoreTest, AFailureWithoutRetryEndsTheJobAndItsOriginIsKept) {
  JobStore& s = store();
  NewJob j = job("x");
  j.origin = "myapp.tasks.send_report";
  const auto id = s.enqueue(j).id;
  EXPECT_EQ(s.fail(*s.claim("default", 30s), "bad input", false), FailOutcome::Failed);
  const auto info = s.find(id);
  EXPECT_EQ(info->state, JobState::Failed);
  EXPECT_EQ(info->attempts, 1);
  EXPECT_EQ(info->origin, "myapp.tasks.send_report");
  j.origin = std::string(1001, 'o');
  EXPECT_EQ(status_of([&] { s.enqueue(j); }), StatusCode::InvalidInput);
}

TEST_P(JobStoreTest, AFailureMessageIsKeptAsText) {
  JobStore& s = store();
  const auto id = s.enqueue(job("x")).id;
  EXPECT_EQ(s.fail(*s.claim("default", 30s), std::string("bad\0byte", 8)), FailOutcome::Retrying);
  EXPECT_EQ(s.find(id)->last_error, "badbyte");
  clock_.advance(1s);
  EXPECT_EQ(s.fail(*s.claim("default", 30s), "\xff\xfe"), FailOutcome::Retrying);
  EXPECT_EQ(s.find(id)->last_error, "(a message that was not UTF-8)");
  clock_.advance(2s);
  // 1999 ASCII bytes and a two-byte character: cut before the character, not inside it.
  EXPECT_EQ(s.fail(*s.claim("default", 30s), std::string(1999, 'a') + "\xc3\xa9tc"),
            FailOutcome::Failed);
  EXPECT_EQ(s.find(id)->last_error, std::string(1999, 'a'));
}

TEST_P(JobStoreTest, AnExpiredLeaseBringsTheJobBackAndTheOldRunnerCannotFinishIt) {
  JobStore& s = store();
  const auto id = s.enqueue(job("slow")).id;
  auto first = s.claim("default", 5s);
  EXPECT_EQ(s.heartbeat(*first, 5s), LeaseState::Held);
  clock_.advance(4s);
  EXPECT_EQ(s.heartbeat(*first, 5s), LeaseState::Held) << "extended to 9 s";
  clock_.advance(4s);
  EXPECT_FALSE(s.claim("default", 5s)) << "the extended lease still holds";

  clock_.advance(2s);  // 10 s: the lease ran out
  auto second = s.claim("default", 5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, id);
  EXPECT_EQ(second->attempt, 2) << "the lost run counted";
  EXPECT_NE(second->lease_token, first->lease_token);
  EXPECT_NE(s.find(id)->last_error->find("lease"), std::string::npos);

  EXPECT_EQ(s.heartbeat(*first, 5s), LeaseState::Lost);
  EXPECT_FALSE(s.complete(*first));
  EXPECT_EQ(s.fail(*first, "late"), FailOutcome::LeaseLost);
  EXPECT_FALSE(s.release(*first));
  EXPECT_TRUE(s.complete(*second));
  EXPECT_EQ(s.find(id)->state, JobState::Succeeded);
}

TEST_P(JobStoreTest, AnExpiredLeaseOnTheLastAttemptFailsTheJob) {
  JobStore& s = store();
  NewJob once = job("once");
  once.max_attempts = 1;
  const auto id = s.enqueue(once).id;
  ASSERT_TRUE(s.claim("default", 1s));
  clock_.advance(2s);
  EXPECT_FALSE(s.claim("default", 1s));
  EXPECT_EQ(s.find(id)->state, JobState::Failed);
}

TEST_P(JobStoreTest, CancelStopsAQueuedJobAndAsksARunningOneToStop) {
  JobStore& s = store();
  const auto queued = s.enqueue(job("q")).id;
  EXPECT_TRUE(s.cancel(queued));
  EXPECT_EQ(s.find(queued)->state, JobState::Cancelled);
  EXPECT_FALSE(s.claim("default", 30s));
  EXPECT_FALSE(s.cancel(queued)) << "already finished";
  EXPECT_FALSE(s.cancel(queued + 1000)) << "no such job";

  const auto running = s.enqueue(job("r")).id;
  auto run = s.claim("default", 30s);
  EXPECT_EQ(s.heartbeat(*run, 30s), LeaseState::Held);
  EXPECT_TRUE(s.cancel(running));
  EXPECT_EQ(s.find(running)->state, JobState::Running);
  EXPECT_TRUE(s.find(running)->cancel_requested);
  EXPECT_EQ(s.heartbeat(*run, 30s), LeaseState::CancelRequested);
  EXPECT_TRUE(s.finish_cancelled(*run));
  EXPECT_EQ(s.find(running)->state, JobState::Cancelled);
  EXPECT_EQ(s.counts("default").cancelled, 2);

  // Released after a cancel request (the runner stopping): cancelled, not queued again.
  const auto third = s.enqueue(job("t")).id;
  run = s.claim("default", 30s);
  EXPECT_TRUE(s.cancel(third));
  EXPECT_TRUE(s.release(*run));
  EXPECT_EQ(s.find(third)->state, JobState::Cancelled);
}

TEST_P(JobStoreTest, AReleasedJobRunsAgainWithoutLosingAnAttempt) {
  JobStore& s = store();
  const auto id = s.enqueue(job("r")).id;
  auto run = s.claim("default", 30s);
  EXPECT_TRUE(s.release(*run));
  const auto info = s.find(id);
  EXPECT_EQ(info->state, JobState::Queued);
  EXPECT_EQ(info->attempts, 0);
  EXPECT_EQ(s.claim("default", 30s)->attempt, 1);
}

TEST_P(JobStoreTest, PurgeRemovesOnlyJobsFinishedBeforeTheTime) {
  JobStore& s = store();
  const auto old_done = s.enqueue(job("a")).id;
  ASSERT_TRUE(s.complete(*s.claim("default", 30s)));
  clock_.advance(1h);
  const auto new_done = s.enqueue(job("b")).id;
  ASSERT_TRUE(s.complete(*s.claim("default", 30s)));
  const auto waiting = s.enqueue(job("c")).id;
  EXPECT_EQ(s.purge_finished(clock_.now() - 30min), 1);
  EXPECT_FALSE(s.find(old_done));
  EXPECT_TRUE(s.find(new_done));
  EXPECT_TRUE(s.find(waiting));
  // A purged job's id is not given to a new one.
  EXPECT_GT(s.enqueue(job("d")).id, waiting);
}

TEST_P(JobStoreTest, RefusesJobsItCouldNotKeepAsGiven) {
  JobStore& s = store();
  auto refused = [&](NewJob j) {
    std::string message;
    const auto status = status_of([&] { s.enqueue(j); }, &message);
    return status == StatusCode::InvalidInput ? message : "accepted";
  };
  EXPECT_NE(refused(job("")).find("kind"), std::string::npos);
  EXPECT_NE(refused(job("has space")).find("kind"), std::string::npos);
  EXPECT_NE(refused(job("x", std::string("a\0b", 3))).find("payload"), std::string::npos);
  EXPECT_NE(refused(job("x", "\xff")).find("payload"), std::string::npos);
  NewJob j = job("x");
  j.queue = "a/b";
  EXPECT_NE(refused(j).find("queue"), std::string::npos);
  j = job("x");
  j.idempotency_key = "";
  EXPECT_NE(refused(j).find("idempotency"), std::string::npos);
  j = job("x");
  j.max_attempts = 0;
  EXPECT_NE(refused(j).find("max_attempts"), std::string::npos);
  j = job("x");
  j.delay = -1s;
  EXPECT_NE(refused(j).find("delay"), std::string::npos);
  auto o = options();
  o.max_payload_bytes = 10;
  JobStore small(db_, o);
  EXPECT_EQ(status_of([&] { small.enqueue(job("x", std::string(11, 'a'))); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(s.counts("default").queued, 0) << "nothing refused was kept";

  o = options();
  o.table = "jobs; DROP TABLE x";
  EXPECT_THROW(JobStore(db_, o), std::invalid_argument);
  o = options();
  o.retry.jitter = 2;
  EXPECT_THROW(JobStore(db_, o), std::invalid_argument);
  EXPECT_THROW(s.claim("default", 0ms), std::invalid_argument);
}

TEST_P(JobStoreTest, RunnersClaimingAtOnceEachGetOtherJobs) {
  JobStore& s = store();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) s.enqueue(job("n", std::to_string(i)));
  std::mutex mutex;
  std::multiset<std::int64_t> seen;
  std::vector<std::thread> runners;
  for (int r = 0; r < 4; ++r)
    runners.emplace_back([&] {
      while (auto claimed = s.claim("default", 30s)) {
        ASSERT_TRUE(s.complete(*claimed));
        const std::lock_guard lock(mutex);
        seen.insert(claimed->id);
      }
    });
  for (auto& t : runners) t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), seen.size())
      << "no job ran twice";
  EXPECT_EQ(s.counts("default").succeeded, kJobs);
}

TEST_P(JobStoreTest, ListenersHearOfNewJobsUntilTheyLeave) {
  JobStore& s = store();
  std::vector<std::string> heard;
  auto subscription = s.subscribe([&](std::string_view queue) { heard.emplace_back(queue); });
  NewJob j = job("x");
  j.idempotency_key = "once";
  s.enqueue(j);
  s.enqueue(j);  // not a new job
  j.queue = "mail";
  s.enqueue(j);
  EXPECT_EQ(heard, (std::vector<std::string>{"default", "mail"}));
  subscription.reset();
  s.enqueue(job("y"));
  EXPECT_EQ(heard.size(), 2u);
}

// From a review: fail() queued a job cancel() had asked to stop, and it ran again.
TEST_P(JobStoreTest, ACancelledRunThatFailsIsNotRetried) {
  JobStore& s = store();
  const auto id = s.enqueue(job("x")).id;
  auto run = s.claim("default", 30s);
  EXPECT_TRUE(s.cancel(id));
  EXPECT_EQ(s.fail(*run, "stopped"), FailOutcome::Cancelled);
  EXPECT_EQ(s.find(id)->state, JobState::Cancelled);
  clock_.advance(1h);
  EXPECT_FALSE(s.claim("default", 30s));
}

TEST_P(JobStoreTest, AKeyForAnotherKindOfJobIsRefused) {
  JobStore& s = store();
  NewJob j = job("charge");
  j.idempotency_key = "k1";
  const auto first = s.enqueue(j).id;
  j.kind = "refund";
  std::string message;
  EXPECT_EQ(status_of([&] { s.enqueue(j); }, &message), StatusCode::InvalidInput);
  EXPECT_NE(message.find("job " + std::to_string(first)), std::string::npos) << message;
  EXPECT_NE(message.find("charge"), std::string::npos) << message;
}

TEST_P(JobStoreTest, AJobIsEnqueuedInTheCallersTransactionOrNotAtAll) {
  JobStore& s = store();
  int heard = 0;
  auto subscription = s.subscribe([&](std::string_view) { ++heard; });
  std::int64_t kept = 0;
  {
    db::Transaction tx = db_->begin();
    kept = s.enqueue(tx, job("receipt")).id;
    EXPECT_EQ(heard, 0) << "not before the commit";
    tx.commit();
  }
  s.notify("default");
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(s.find(kept)->state, JobState::Queued);
  std::int64_t dropped = 0;
  {
    db::Transaction tx = db_->begin();
    dropped = s.enqueue(tx, job("receipt")).id;
  }  // rolled back
  EXPECT_FALSE(s.find(dropped));
  EXPECT_EQ(s.counts("default").queued, 1);
}

TEST_P(JobStoreTest, ATableNamedAfterAnSqlKeywordWorks) {
  if (GetParam() == db::Backend::Postgres) db_->execute("DROP TABLE IF EXISTS \"order\"");
  auto o = options();
  o.table = "order";
  JobStore& s = store(o);
  const auto id = s.enqueue(job("x")).id;
  EXPECT_EQ(s.claim("default", 30s)->id, id);
  o.table = std::string(51, 'a');
  EXPECT_THROW(JobStore(db_, o), std::invalid_argument);
}

TEST_P(JobStoreTest, AFullQueueIsQueueFullAndTimesAreBounded) {
  auto o = options();
  o.max_pending = 1;
  JobStore& s = store(o);
  s.enqueue(job("a"));
  EXPECT_THROW(s.enqueue(job("b")), QueueFull);
  NewJob far = job("far");
  far.queue = "other";
  far.delay = std::chrono::hours(24 * 367);
  EXPECT_EQ(status_of([&] { s.enqueue(far); }), StatusCode::InvalidInput);
}

INSTANTIATE_TEST_SUITE_P(Backends, JobStoreTest,
                         ::testing::Values(db::Backend::Sqlite, db::Backend::Postgres),
                         [](const auto& info) {
                           return info.param == db::Backend::Sqlite ? "Sqlite" : "Postgres";
                         });

TEST(RetryPolicyTest, DoublesUpToTheLimitLessTheJitter) {
  RetryPolicy p;
  p.base_delay = 100ms;
  p.max_delay = 1s;
  p.jitter = 0;
  EXPECT_EQ(p.delay_after(1, 0.9), 100ms);
  EXPECT_EQ(p.delay_after(2, 0.9), 200ms);
  EXPECT_EQ(p.delay_after(4, 0.9), 800ms);
  EXPECT_EQ(p.delay_after(5, 0.9), 1s);
  EXPECT_EQ(p.delay_after(1000, 0.9), 1s) << "no overflow";
  p.jitter = 0.5;
  EXPECT_EQ(p.delay_after(2, 0.0), 200ms);
  EXPECT_EQ(p.delay_after(2, 0.5), 150ms);
  EXPECT_EQ(p.delay_after(2, 0.999), 100ms);
  p.jitter = 1;
  EXPECT_EQ(p.delay_after(2, 0.5), 100ms);
  EXPECT_NO_THROW(p.validate());
  p.max_attempts = 0;
  EXPECT_THROW(p.validate(), std::invalid_argument);
}

// From a review: a long max_delay made the doubling overflow (and retry at once).
TEST(RetryPolicyTest, ALongMaxDelayDoesNotOverflow) {
  RetryPolicy p;
  p.jitter = 0;
  p.max_delay = std::chrono::hours(24 * 366);
  EXPECT_EQ(p.delay_after(80, 0.5), p.max_delay);
  EXPECT_NO_THROW(p.validate());
  p.max_delay = std::chrono::milliseconds::max();
  EXPECT_THROW(p.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace molt::jobs
