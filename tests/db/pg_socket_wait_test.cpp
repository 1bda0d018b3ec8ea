// The PostgreSQL backend's one blocking point, on a socket pair instead of a server: ready,
// timed out, woken from another thread, deaf to wake-ups when told, and watching the right
// socket when a closed one's number comes back.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "db/postgres/socket_wait.hpp"

namespace {

using molt::core::Clock;
using molt::db::pg::SocketWaiter;
using molt::db::pg::WaitResult;
using namespace std::chrono_literals;

struct SocketPair {
  int ours = -1, theirs = -1;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
      ours = fds[0];
      theirs = fds[1];
    }
  }
  ~SocketPair() {
    if (ours >= 0) ::close(ours);
    if (theirs >= 0) ::close(theirs);
  }
  void send_byte() const { ASSERT_EQ(::write(theirs, "x", 1), 1); }
};

TEST(SocketWaiter, ReadyWhenThePeerWrites) {
  SocketPair pair;
  ASSERT_GE(pair.ours, 0);
  SocketWaiter waiter;
  pair.send_byte();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 5s), WaitResult::kReady);
  // Still readable (nothing was read): a second wait answers at once again.
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 5s), WaitResult::kReady);
  waiter.forget();
}

TEST(SocketWaiter, WritableSocketIsReadyForEitherEvent) {
  SocketPair pair;
  SocketWaiter waiter;
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead | SocketWaiter::kWrite, Clock::now() + 5s),
            WaitResult::kReady);
  waiter.forget();
}

TEST(SocketWaiter, TimesOutOnASilentSocket) {
  SocketPair pair;
  SocketWaiter waiter;
  const auto start = Clock::now();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, start + 50ms), WaitResult::kTimedOut);
  EXPECT_GE(Clock::now() - start, 50ms);
  // A data arriving later is seen by the next wait: the timed-out one left nothing behind.
  pair.send_byte();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 5s), WaitResult::kReady);
  waiter.forget();
}

TEST(SocketWaiter, WakeFromAnotherThreadEndsTheWait) {
  SocketPair pair;
  SocketWaiter waiter;
  std::thread waker([&] {
    std::this_thread::sleep_for(30ms);
    waiter.wake();
  });
  const auto start = Clock::now();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, start + 10s), WaitResult::kWoken);
  EXPECT_LT(Clock::now() - start, 5s);
  waker.join();
  // The wake-up stays until cleared, like the cancel token behind it.
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 10s), WaitResult::kWoken);
  waiter.clear_wake();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 30ms),
            WaitResult::kTimedOut);
  waiter.forget();
}

TEST(SocketWaiter, WakeBeforeTheWaitIsNotLost) {
  SocketPair pair;
  SocketWaiter waiter;
  waiter.wake();
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 10s), WaitResult::kWoken);
  waiter.forget();
}

TEST(SocketWaiter, UninterruptibleWaitIgnoresWakeUps) {
  SocketPair pair;
  SocketWaiter waiter;
  waiter.wake();
  std::thread writer([&] {
    std::this_thread::sleep_for(30ms);
    waiter.wake();  // a second one, while waiting
    std::this_thread::sleep_for(30ms);
    pair.send_byte();
  });
  EXPECT_EQ(waiter.wait(pair.ours, SocketWaiter::kRead, Clock::now() + 10s, false),
            WaitResult::kReady);
  writer.join();
  waiter.forget();
}

TEST(SocketWaiter, ASocketWhoseNumberCameBackIsWatchedAfresh) {
  SocketWaiter waiter;
  int number = -1;
  {
    SocketPair first;
    number = first.ours;
    EXPECT_EQ(waiter.wait(first.ours, SocketWaiter::kRead, Clock::now() + 20ms),
              WaitResult::kTimedOut);
  }  // closed under the waiter, as libpq does between two addresses
  SocketPair second;
  if (second.ours != number) GTEST_SKIP() << "the socket number was not reused";
  second.send_byte();
  EXPECT_EQ(waiter.wait(second.ours, SocketWaiter::kRead, Clock::now() + 5s, true, true),
            WaitResult::kReady);
  waiter.forget();
}

TEST(SocketWaiter, NoSocketLetsTheCallerFindTheError) {
  SocketWaiter waiter;
  EXPECT_EQ(waiter.wait(-1, SocketWaiter::kRead, Clock::now() + 5s), WaitResult::kReady);
}

}  // namespace
