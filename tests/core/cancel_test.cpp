#include "molt/core/cancel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <optional>
#include <thread>
#include <vector>

namespace molt::core {
namespace {

TEST(CancelReasonTest, NamesAndStatuses) {
  EXPECT_EQ(to_string(CancelReason::None), "none");
  EXPECT_EQ(to_string(CancelReason::Cancelled), "cancelled");
  EXPECT_EQ(to_string(CancelReason::Timeout), "timeout");
  EXPECT_EQ(to_string(CancelReason::Shutdown), "shutdown");
  EXPECT_EQ(to_string(CancelReason::Disconnected), "disconnected");
  EXPECT_EQ(status_for(CancelReason::Timeout), StatusCode::Timeout);
  EXPECT_EQ(status_for(CancelReason::Cancelled), StatusCode::Cancelled);
  EXPECT_EQ(status_for(CancelReason::Shutdown), StatusCode::Cancelled);
  EXPECT_EQ(status_for(CancelReason::Disconnected), StatusCode::Cancelled);
}

TEST(CancelTokenTest, DefaultTokenIsNeverCancelled) {
  const CancelToken token;
  EXPECT_FALSE(token.can_be_cancelled());
  EXPECT_FALSE(token.cancelled());
  EXPECT_EQ(token.reason(), CancelReason::None);
  EXPECT_NO_THROW(token.throw_if_cancelled());
  int calls = 0;
  auto registration = token.on_cancel([&] { ++calls; });
  registration.reset();
  EXPECT_EQ(calls, 0);
}

TEST(CancelSourceTest, FreshSourceIsNotCancelled) {
  CancelSource source;
  const CancelToken token = source.token();
  EXPECT_TRUE(token.can_be_cancelled());
  EXPECT_FALSE(source.cancelled());
  EXPECT_FALSE(token.cancelled());
  EXPECT_EQ(source.reason(), CancelReason::None);
  EXPECT_NO_THROW(token.throw_if_cancelled());
}

TEST(CancelSourceTest, FirstCancelWinsAndKeepsItsReason) {
  CancelSource source;
  const CancelToken token = source.token();
  EXPECT_TRUE(source.cancel(CancelReason::Timeout));
  EXPECT_FALSE(source.cancel(CancelReason::Shutdown));
  EXPECT_FALSE(source.cancel());
  EXPECT_TRUE(source.cancelled());
  EXPECT_TRUE(token.cancelled());
  EXPECT_EQ(source.reason(), CancelReason::Timeout);
  EXPECT_EQ(token.reason(), CancelReason::Timeout);
}

TEST(CancelSourceTest, CancelWithReasonNoneMeansCancelled) {
  CancelSource source;
  EXPECT_TRUE(source.cancel(CancelReason::None));
  EXPECT_TRUE(source.cancelled());
  EXPECT_EQ(source.reason(), CancelReason::Cancelled);
}

TEST(CancelTokenTest, ThrowIfCancelledMapsReasonToStatus) {
  CancelSource timed_out;
  timed_out.cancel(CancelReason::Timeout);
  try {
    timed_out.token().throw_if_cancelled();
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::Timeout);
  }
  CancelSource shut_down;
  shut_down.cancel(CancelReason::Shutdown);
  try {
    shut_down.token().throw_if_cancelled();
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::Cancelled);
  }
}

TEST(CancelTokenTest, CallbackRunsOnceOnCancel) {
  CancelSource source;
  int calls = 0;
  auto registration = source.token().on_cancel([&] { ++calls; });
  EXPECT_EQ(calls, 0);
  source.cancel();
  EXPECT_EQ(calls, 1);
  source.cancel(CancelReason::Timeout);
  EXPECT_EQ(calls, 1);
}

TEST(CancelTokenTest, EveryRegisteredCallbackRuns) {
  CancelSource source;
  int a = 0, b = 0, c = 0;
  auto ra = source.token().on_cancel([&] { ++a; });
  auto rb = source.token().on_cancel([&] { ++b; });
  auto rc = source.token().on_cancel([&] { ++c; });
  source.cancel();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(c, 1);
}

TEST(CancelTokenTest, CallbackSeesTheReason) {
  CancelSource source;
  const CancelToken token = source.token();
  CancelReason seen = CancelReason::None;
  auto registration = token.on_cancel([&] { seen = token.reason(); });
  source.cancel(CancelReason::Disconnected);
  EXPECT_EQ(seen, CancelReason::Disconnected);
}

TEST(CancelTokenTest, CallbackRunsAtOnceOnThisThreadWhenAlreadyCancelled) {
  CancelSource source;
  source.cancel();
  const auto self = std::this_thread::get_id();
  std::thread::id ran_on;
  int calls = 0;
  auto registration = source.token().on_cancel([&] {
    ++calls;
    ran_on = std::this_thread::get_id();
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ran_on, self);
  source.cancel();
  EXPECT_EQ(calls, 1);
}

TEST(CancelTokenTest, CallbackRunsOnTheCancellingThread) {
  CancelSource source;
  std::thread::id ran_on;
  auto registration = source.token().on_cancel([&] { ran_on = std::this_thread::get_id(); });
  std::thread::id canceller;
  std::thread t([&] {
    canceller = std::this_thread::get_id();
    source.cancel();
  });
  t.join();
  EXPECT_EQ(ran_on, canceller);
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(CancelRegistrationTest, DestroyedRegistrationNeverRuns) {
  CancelSource source;
  int calls = 0;
  {
    auto registration = source.token().on_cancel([&] { ++calls; });
  }
  source.cancel();
  EXPECT_EQ(calls, 0);
}

TEST(CancelRegistrationTest, ResetUnregistersAndIsIdempotent) {
  CancelSource source;
  int calls = 0;
  auto registration = source.token().on_cancel([&] { ++calls; });
  registration.reset();
  registration.reset();
  source.cancel();
  EXPECT_EQ(calls, 0);
}

TEST(CancelRegistrationTest, MovedRegistrationStaysActive) {
  CancelSource source;
  int calls = 0;
  std::optional<CancelRegistration> moved;
  {
    auto registration = source.token().on_cancel([&] { ++calls; });
    moved.emplace(std::move(registration));
  }  // the moved-from registration is destroyed here and must not unregister
  source.cancel();
  EXPECT_EQ(calls, 1);
}

TEST(CancelRegistrationTest, MoveAssignmentUnregistersTheOldCallback) {
  CancelSource source;
  int old_calls = 0, new_calls = 0;
  auto registration = source.token().on_cancel([&] { ++old_calls; });
  registration = source.token().on_cancel([&] { ++new_calls; });
  source.cancel();
  EXPECT_EQ(old_calls, 0);
  EXPECT_EQ(new_calls, 1);
}

TEST(CancelRegistrationTest, OutlivesItsSourceAndTokens) {
  int calls = 0;
  CancelRegistration registration;
  {
    CancelSource source;
    registration = source.token().on_cancel([&] { ++calls; });
  }
  registration.reset();  // must not touch freed state (ASan would tell)
  EXPECT_EQ(calls, 0);
}

TEST(CancelRegistrationTest, ResetWaitsForACallbackRunningOnAnotherThread) {
  CancelSource source;
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  auto registration = source.token().on_cancel([&] {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  });
  std::thread canceller([&] { source.cancel(); });
  while (!entered) std::this_thread::yield();
  registration.reset();
  EXPECT_TRUE(finished) << "reset() returned while the callback was still running";
  canceller.join();
}

TEST(CancelSourceTest, ConcurrentCancelsRunTheCallbackOnceAndOneWins) {
  for (int round = 0; round < 50; ++round) {
    CancelSource source;
    std::atomic<int> calls{0};
    std::atomic<int> winners{0};
    auto registration = source.token().on_cancel([&] { ++calls; });
    constexpr int kThreads = 4;
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        if (source.cancel(i % 2 ? CancelReason::Timeout : CancelReason::Shutdown)) ++winners;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(winners.load(), 1);
    EXPECT_NE(source.reason(), CancelReason::None);
  }
}

TEST(CancelChildTest, ParentCancelCancelsChildWithParentsReason) {
  CancelSource parent;
  CancelSource child(parent.token());
  int child_calls = 0;
  auto registration = child.token().on_cancel([&] { ++child_calls; });
  EXPECT_FALSE(child.cancelled());
  EXPECT_TRUE(parent.cancel(CancelReason::Shutdown));
  EXPECT_TRUE(child.cancelled());
  EXPECT_EQ(child.reason(), CancelReason::Shutdown);
  EXPECT_EQ(child_calls, 1);
  EXPECT_FALSE(child.cancel()) << "already cancelled through its parent";
}

TEST(CancelChildTest, ChildCancelLeavesParentAlone) {
  CancelSource parent;
  CancelSource child(parent.token());
  EXPECT_TRUE(child.cancel(CancelReason::Timeout));
  EXPECT_FALSE(parent.cancelled());
  EXPECT_EQ(child.reason(), CancelReason::Timeout);
  // A later parent cancel does not overwrite the child's own reason.
  parent.cancel(CancelReason::Shutdown);
  EXPECT_EQ(child.reason(), CancelReason::Timeout);
}

TEST(CancelChildTest, ChildOfCancelledParentStartsCancelled) {
  CancelSource parent;
  parent.cancel(CancelReason::Disconnected);
  CancelSource child(parent.token());
  EXPECT_TRUE(child.cancelled());
  EXPECT_EQ(child.reason(), CancelReason::Disconnected);
}

TEST(CancelChildTest, ChildOfDefaultTokenIsAnIndependentSource) {
  CancelSource child{CancelToken{}};
  EXPECT_FALSE(child.cancelled());
  EXPECT_TRUE(child.token().can_be_cancelled());
  EXPECT_TRUE(child.cancel());
  EXPECT_TRUE(child.cancelled());
}

TEST(CancelChildTest, CancellationReachesGrandchildren) {
  CancelSource root;
  CancelSource child(root.token());
  CancelSource grandchild(child.token());
  int calls = 0;
  auto registration = grandchild.token().on_cancel([&] { ++calls; });
  root.cancel(CancelReason::Timeout);
  EXPECT_TRUE(grandchild.cancelled());
  EXPECT_EQ(grandchild.reason(), CancelReason::Timeout);
  EXPECT_EQ(calls, 1);
}

TEST(CancelChildTest, DestroyedChildIsUnlinkedFromParent) {
  CancelSource parent;
  int calls = 0;
  {
    CancelSource child(parent.token());
    auto registration = child.token().on_cancel([&] { ++calls; });
  }
  EXPECT_TRUE(parent.cancel());  // must not reach the destroyed child (ASan would tell)
  EXPECT_EQ(calls, 0);
}

TEST(CancelChildTest, ChildOutlivesParentSource) {
  std::optional<CancelSource> parent(std::in_place);
  CancelSource child(parent->token());
  parent.reset();
  EXPECT_FALSE(child.cancelled());
  EXPECT_TRUE(child.cancel());
  EXPECT_TRUE(child.cancelled());
}

TEST(CancelChildTest, ManyChildrenAllCancelled) {
  CancelSource parent;
  std::vector<CancelSource> children;
  for (int i = 0; i < 100; ++i) children.emplace_back(parent.token());
  parent.cancel();
  for (const auto& c : children) EXPECT_TRUE(c.cancelled());
}

}  // namespace
}  // namespace molt::core
