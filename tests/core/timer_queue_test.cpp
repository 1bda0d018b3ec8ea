#include "molt/core/timer_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "support/eventually.hpp"

namespace molt::core {
namespace {

using namespace std::chrono_literals;

using molt::testing::eventually;

// Holds the timer thread inside a callback until released, so that tests can arrange what is
// pending without racing it. The callback owns what it touches, so it may outlive the Blocker.
class Blocker {
 public:
  explicit Blocker(TimerQueue& timers) : shared_(std::make_shared<Shared>()) {
    auto entered = shared_->entered.get_future();
    id_ = timers.schedule(Clock::now(), [shared = shared_] {
      shared->entered.set_value();
      shared->released.wait();
    });
    entered.wait();
  }
  ~Blocker() { release(); }
  Blocker(const Blocker&) = delete;
  Blocker& operator=(const Blocker&) = delete;
  void release() {
    if (!shared_->release_called.exchange(true)) shared_->release.set_value();
  }
  TimerQueue::TimerId id() const { return id_; }

 private:
  struct Shared {
    std::promise<void> entered;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> release_called{false};
  };
  std::shared_ptr<Shared> shared_;
  TimerQueue::TimerId id_ = 0;
};

// Collects the order in which callbacks ran.
class Recorder {
 public:
  TimerQueue::Callback record(int n) {
    return [this, n] {
      std::lock_guard lock(mutex_);
      seen_.push_back(n);
    };
  }
  std::vector<int> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::size_t count() const { return seen().size(); }

 private:
  mutable std::mutex mutex_;
  std::vector<int> seen_;
};

TEST(TimerQueueTest, RunsACallbackThatIsAlreadyDue) {
  std::promise<void> ran;
  TimerQueue timers;
  timers.schedule(Clock::now() - 1s, [&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
}

TEST(TimerQueueTest, RunsACallbackNotBeforeItsTime) {
  std::promise<Clock::time_point> ran;
  TimerQueue timers;
  const auto at = Clock::now() + 20ms;
  timers.schedule(at, [&] { ran.set_value(Clock::now()); });
  auto future = ran.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_GE(future.get(), at);
}

TEST(TimerQueueTest, IdsAreNonZeroAndDistinct) {
  TimerQueue timers;
  std::set<TimerQueue::TimerId> ids;
  for (int i = 0; i < 100; ++i) {
    const auto id = timers.schedule(Clock::now() + 1h, [] {});
    EXPECT_NE(id, 0u);
    EXPECT_TRUE(ids.insert(id).second);
  }
  EXPECT_EQ(timers.pending(), 100u);
}

TEST(TimerQueueTest, RunsInTimeOrderThenSchedulingOrder) {
  Recorder recorder;
  TimerQueue timers;
  const auto base = Clock::now() - 1s;
  {
    Blocker blocker(timers);
    timers.schedule(base + 30ms, recorder.record(3));
    timers.schedule(base + 10ms, recorder.record(1));
    timers.schedule(base + 20ms, recorder.record(2));
    timers.schedule(base + 10ms, recorder.record(11));  // same time: after the first one
    timers.schedule(base, recorder.record(0));
    EXPECT_EQ(timers.pending(), 5u);
  }
  ASSERT_TRUE(eventually([&] { return recorder.count() == 5; }));
  EXPECT_EQ(recorder.seen(), (std::vector<int>{0, 1, 11, 2, 3}));
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, CancelledCallbackNeverRuns) {
  Recorder recorder;
  TimerQueue::TimerId doomed;
  TimerQueue timers;
  {
    Blocker blocker(timers);
    doomed = timers.schedule(Clock::now() - 1s, recorder.record(1));
    timers.schedule(Clock::now() - 1s, recorder.record(2));
    EXPECT_TRUE(timers.cancel(doomed));
    EXPECT_FALSE(timers.cancel(doomed)) << "second cancel";
    EXPECT_EQ(timers.pending(), 1u);
  }
  ASSERT_TRUE(eventually([&] { return recorder.count() == 1; }));
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(recorder.seen(), (std::vector<int>{2}));
}

TEST(TimerQueueTest, CancelRefusesUnknownRunningAndFinishedTimers) {
  TimerQueue timers;
  EXPECT_FALSE(timers.cancel(0));
  EXPECT_FALSE(timers.cancel(12345));
  {
    Blocker blocker(timers);
    EXPECT_FALSE(timers.cancel(blocker.id())) << "it is running";
  }
  std::promise<void> ran;
  const auto id = timers.schedule(Clock::now(), [&] { ran.set_value(); });
  ASSERT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(timers.cancel(id)) << "it already ran";
}

TEST(TimerQueueTest, CancelFreesTheEntry) {
  TimerQueue timers;
  std::vector<TimerQueue::TimerId> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(timers.schedule(Clock::now() + 1h, [] {}));
  EXPECT_EQ(timers.pending(), 1000u);
  for (auto id : ids) EXPECT_TRUE(timers.cancel(id));
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, AnEarlierTimerWakesTheThreadWaitingForALaterOne) {
  std::promise<void> ran;
  TimerQueue timers;
  timers.schedule(Clock::now() + 1h, [] {});
  std::this_thread::sleep_for(1ms);  // let the thread go to sleep until the far timer
  timers.schedule(Clock::now() + 1ms, [&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(timers.pending(), 1u);
}

// The worker's one-call-at-a-time pattern: a deadline is scheduled, the call ends and cancels
// it, the next call schedules a slightly later one. The thread, asleep until the first
// deadline, need not be woken for any of them.
TEST(TimerQueueTest, TimersDueAfterTheOneItWaitsForLeaveTheThreadAsleep) {
  TimerQueue timers;
  auto id = timers.schedule(Clock::now() + 1h, [] {});
  std::this_thread::sleep_for(5ms);  // let the thread go to sleep until that deadline
  const auto before = timers.wakeups();
  for (int i = 1; i <= 100; ++i) {
    EXPECT_TRUE(timers.cancel(id));
    id = timers.schedule(Clock::now() + 1h + std::chrono::milliseconds(i), [] {});
  }
  std::this_thread::sleep_for(5ms);
  EXPECT_LE(timers.wakeups() - before, 2u);  // a spurious wake-up or two, not one per timer
  EXPECT_EQ(timers.pending(), 1u);
}

TEST(TimerQueueTest, TimerAtTheEndOfTimeDoesNotBlockEarlierOnes) {
  // A saturated deadline (a huge timeout_ms) lands at time_point::max().
  std::promise<void> ran;
  TimerQueue timers;
  const auto never = timers.schedule(Clock::time_point::max(), [] { FAIL() << "ran"; });
  std::this_thread::sleep_for(1ms);
  timers.schedule(Clock::now(), [&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(timers.cancel(never));
}

TEST(TimerQueueTest, CallbackCanScheduleAndCancelOtherTimers) {
  std::promise<void> chained;
  std::atomic<bool> cancelled_ran{false};
  std::atomic<bool> cancel_result{false};
  TimerQueue timers;
  const auto victim = timers.schedule(Clock::now() + 1h, [&] { cancelled_ran = true; });
  timers.schedule(Clock::now(), [&] {
    cancel_result = timers.cancel(victim);
    timers.schedule(Clock::now(), [&] { chained.set_value(); });
  });
  EXPECT_EQ(chained.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(cancel_result);
  EXPECT_FALSE(cancelled_ran);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, StopDropsPendingCallbacksAndIsIdempotent) {
  std::atomic<int> ran{0};
  TimerQueue timers;
  for (int i = 0; i < 10; ++i) timers.schedule(Clock::now() + 1h, [&] { ++ran; });
  EXPECT_EQ(timers.pending(), 10u);
  timers.stop();
  EXPECT_EQ(timers.pending(), 0u);
  timers.stop();
  EXPECT_EQ(ran, 0);
}

TEST(TimerQueueTest, StopWaitsForARunningCallback) {
  std::atomic<bool> finished{false};
  std::promise<void> entered;
  TimerQueue timers;
  timers.schedule(Clock::now(), [&] {
    entered.set_value();
    std::this_thread::sleep_for(20ms);
    finished = true;
  });
  entered.get_future().wait();
  timers.stop();
  EXPECT_TRUE(finished);
}

TEST(TimerQueueTest, StopFromInsideACallbackDoesNotDeadlock) {
  std::promise<void> stopped;
  std::atomic<bool> later_ran{false};
  auto timers = std::make_unique<TimerQueue>();
  timers->schedule(Clock::now() + 1h, [&] { later_ran = true; });
  timers->schedule(Clock::now(), [&] {
    timers->stop();
    stopped.set_value();
  });
  ASSERT_EQ(stopped.get_future().wait_for(10s), std::future_status::ready);
  timers.reset();  // joins the thread that stopped itself
  EXPECT_FALSE(later_ran);
}

TEST(TimerQueueTest, DestructorDropsPendingCallbacks) {
  std::atomic<bool> ran{false};
  {
    TimerQueue timers;
    timers.schedule(Clock::now() + 1h, [&] { ran = true; });
  }
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace molt::core
