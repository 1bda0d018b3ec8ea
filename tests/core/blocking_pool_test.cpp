#include "molt/core/blocking_pool.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "support/eventually.hpp"

namespace molt::core {
namespace {

using namespace std::chrono_literals;

using molt::testing::eventually;

// Tasks that block until the test opens the gate.
class Gate {
 public:
  BlockingPool::Task task() {
    return [future = opened_] { future.wait(); };
  }
  void open() { promise_.set_value(); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
};

// usable_cores follows the affinity mask (as under `taskset -c 0`), not the machine's count.
TEST(UsableCoresTest, FollowsTheAffinityMask) {
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
  EXPECT_EQ(usable_cores(), static_cast<unsigned>(CPU_COUNT(&original)));
  int first = 0;
  while (!CPU_ISSET(first, &original)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  EXPECT_EQ(usable_cores(), 1u);
  ASSERT_EQ(sched_setaffinity(0, sizeof(original), &original), 0);
}

TEST(BlockingPoolTest, ReportsItsConfiguration) {
  BlockingPool pool(3, 7);
  EXPECT_EQ(pool.thread_count(), 3u);
  EXPECT_EQ(pool.max_queued(), 7u);
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(pool.running(), 0u);
}

TEST(BlockingPoolTest, ZeroThreadsMeansOne) {
  std::promise<void> ran;
  BlockingPool pool(0, 1);
  EXPECT_EQ(pool.thread_count(), 1u);
  ASSERT_TRUE(pool.try_post([&] { ran.set_value(); }));
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
}

TEST(BlockingPoolTest, RunsPostedTasksAndGivesDistinctIds) {
  std::atomic<int> done{0};
  BlockingPool pool(2, 100);
  std::set<BlockingPool::TaskId> ids;
  for (int i = 0; i < 50; ++i) {
    auto id = pool.try_post([&] { ++done; });
    ASSERT_TRUE(id.has_value());
    EXPECT_TRUE(ids.insert(*id).second) << "id reused: " << *id;
  }
  ASSERT_TRUE(eventually([&] { return done == 50; }));
  EXPECT_TRUE(eventually([&] { return pool.running() == 0 && pool.queued() == 0; }));
}

TEST(BlockingPoolTest, OneThreadRunsTasksInOrder) {
  std::mutex mutex;
  std::vector<int> order;
  BlockingPool pool(1, 100);
  Gate gate;
  ASSERT_TRUE(pool.try_post(gate.task()));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool.try_post([&, i] {
      std::lock_guard lock(mutex);
      order.push_back(i);
    }));
  }
  gate.open();
  pool.close();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(BlockingPoolTest, ThreadsRunTasksConcurrently) {
  std::latch both(2);
  std::atomic<int> done{0};
  BlockingPool pool(2, 0);
  // Each task waits for the other: only two threads at once can finish them.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.try_post([&] {
      both.arrive_and_wait();
      ++done;
    }));
  }
  EXPECT_TRUE(eventually([&] { return done == 2; }));
}

TEST(BlockingPoolTest, RefusesWhenMaxQueuedTasksAlreadyWait) {
  BlockingPool pool(1, 2);
  Gate gate;
  ASSERT_TRUE(pool.try_post(gate.task()));
  ASSERT_TRUE(eventually([&] { return pool.running() == 1; }));
  EXPECT_TRUE(pool.try_post([] {}));
  EXPECT_TRUE(pool.try_post([] {}));
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_FALSE(pool.try_post([] {})) << "a third waiting task is over max_queued";
  EXPECT_EQ(pool.queued(), 2u);
  gate.open();
  pool.close();
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(BlockingPoolTest, IdleThreadsTakeTasksBeyondMaxQueued) {
  // No waiting allowed, but two idle threads: two tasks start, the third is refused, whether or
  // not the threads have picked the first two up yet.
  BlockingPool pool(2, 0);
  Gate gate;
  EXPECT_TRUE(pool.try_post(gate.task()));
  EXPECT_TRUE(pool.try_post(gate.task()));
  EXPECT_FALSE(pool.try_post([] {}));
  ASSERT_TRUE(eventually([&] { return pool.running() == 2; }));
  EXPECT_FALSE(pool.try_post([] {}));
  gate.open();
  ASSERT_TRUE(eventually([&] { return pool.running() == 0; }));
  EXPECT_TRUE(pool.try_post([] {})) << "finished tasks free their threads";
}

TEST(BlockingPoolTest, RemoveQueuedTakesBackAWaitingTaskAndFreesItsSlot) {
  std::atomic<bool> removed_ran{false};
  std::atomic<bool> replacement_ran{false};
  BlockingPool pool(1, 1);
  Gate gate;
  ASSERT_TRUE(pool.try_post(gate.task()));
  ASSERT_TRUE(eventually([&] { return pool.running() == 1; }));
  const auto waiting = pool.try_post([&] { removed_ran = true; });
  ASSERT_TRUE(waiting);
  EXPECT_FALSE(pool.try_post([] {}));

  EXPECT_TRUE(pool.remove_queued(*waiting));
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_FALSE(pool.remove_queued(*waiting)) << "already removed";

  EXPECT_TRUE(pool.try_post([&] { replacement_ran = true; }));
  gate.open();
  pool.close();
  EXPECT_FALSE(removed_ran);
  EXPECT_TRUE(replacement_ran);
}

TEST(BlockingPoolTest, RemoveQueuedRefusesRunningFinishedAndUnknownTasks) {
  BlockingPool pool(1, 4);
  Gate gate;
  const auto running = pool.try_post(gate.task());
  ASSERT_TRUE(running);
  ASSERT_TRUE(eventually([&] { return pool.running() == 1; }));
  EXPECT_FALSE(pool.remove_queued(*running));
  EXPECT_FALSE(pool.remove_queued(0));
  EXPECT_FALSE(pool.remove_queued(*running + 1000));
  gate.open();
  ASSERT_TRUE(eventually([&] { return pool.running() == 0; }));
  EXPECT_FALSE(pool.remove_queued(*running));
}

TEST(BlockingPoolTest, RemovesTheRightTaskFromTheMiddle) {
  std::mutex mutex;
  std::vector<int> ran;
  BlockingPool pool(1, 3);
  Gate gate;
  ASSERT_TRUE(pool.try_post(gate.task()));
  ASSERT_TRUE(eventually([&] { return pool.running() == 1; }));
  std::vector<BlockingPool::TaskId> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = pool.try_post([&, i] {
      std::lock_guard lock(mutex);
      ran.push_back(i);
    });
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  EXPECT_TRUE(pool.remove_queued(ids[1]));
  gate.open();
  pool.close();
  EXPECT_EQ(ran, (std::vector<int>{0, 2}));
}

TEST(BlockingPoolTest, CloseFinishesQueuedWorkThenRefuses) {
  std::atomic<int> done{0};
  BlockingPool pool(1, 10);
  Gate gate;
  ASSERT_TRUE(pool.try_post(gate.task()));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.try_post([&] { ++done; }));
  std::thread closer([&] { pool.close(); });
  // close() waits for queued work, which waits for the gate.
  gate.open();
  closer.join();
  EXPECT_EQ(done, 5);
  EXPECT_FALSE(pool.try_post([] {}));
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(pool.running(), 0u);
}

TEST(BlockingPoolTest, CloseIsIdempotentAndDestructorAfterCloseIsFine) {
  auto pool = std::make_unique<BlockingPool>(2, 2);
  pool->close();
  pool->close();
  EXPECT_FALSE(pool->try_post([] {}));
  pool.reset();
}

TEST(BlockingPoolTest, DestructorRunsWhatWasQueued) {
  std::atomic<int> done{0};
  {
    BlockingPool pool(1, 10);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.try_post([&] { ++done; }));
  }
  EXPECT_EQ(done, 5);
}

TEST(BlockingPoolTest, ManyProducersNeverExceedTheBound) {
  constexpr std::size_t kThreads = 2;
  constexpr std::size_t kMaxQueued = 3;
  std::atomic<int> accepted{0};
  BlockingPool pool(kThreads, kMaxQueued);
  Gate gate;
  std::vector<std::thread> producers;
  std::latch start(4);
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < 20; ++i)
        if (pool.try_post(gate.task())) ++accepted;
    });
  }
  for (auto& t : producers) t.join();
  // Nothing finishes while the gate is shut, so exactly threads + max_queued got in.
  EXPECT_EQ(accepted, static_cast<int>(kThreads + kMaxQueued));
  gate.open();
}

}  // namespace
}  // namespace molt::core
