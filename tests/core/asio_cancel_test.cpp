#include "molt/core/asio_cancel.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

namespace molt::core {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Generous: only reached when cancellation failed to arrive.
constexpr auto kHang = 10s;

// An io_context served by its own thread for the duration of a test.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() { stop(); }
  asio::io_context& io() { return io_; }
  // Stops and joins the thread, so that objects of the test can then go on the main thread.
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_.stop();
    thread_.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

struct Wait {
  explicit Wait(asio::io_context& io, const CancelToken& token)
      : timer(io), bridge(token, io.get_executor()) {}
  asio::steady_timer timer;
  AsioCancelBridge bridge;
};

// Starts, on the io thread, a long timer wait bound to the bridge; returns its outcome.
std::future<boost::system::error_code> start_wait(IoThread& io, std::shared_ptr<Wait> wait,
                                                  std::chrono::steady_clock::duration expiry) {
  auto result = std::make_shared<std::promise<boost::system::error_code>>();
  auto started = std::make_shared<std::promise<void>>();
  auto started_future = started->get_future();
  auto future = result->get_future();
  asio::post(io.io(), [wait, result, started, expiry] {
    wait->timer.expires_after(expiry);
    wait->timer.async_wait(asio::bind_cancellation_slot(
        wait->bridge.slot(),
        [wait, result](boost::system::error_code ec) { result->set_value(ec); }));
    started->set_value();
  });
  started_future.wait();
  return future;
}

TEST(AsioCancelBridgeTest, CancelFromAnotherThreadAbortsTheWait) {
  IoThread io;
  CancelSource source;
  auto wait = std::make_shared<Wait>(io.io(), source.token());
  auto outcome = start_wait(io, wait, kHang);

  std::thread canceller([&] { source.cancel(); });
  canceller.join();

  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready) << "the wait was not cancelled";
  EXPECT_EQ(outcome.get(), asio::error::operation_aborted);
  io.stop();
}

TEST(AsioCancelBridgeTest, AlreadyCancelledTokenAbortsAWaitStartedRightAway) {
  IoThread io;
  CancelSource source;
  source.cancel();
  std::promise<boost::system::error_code> result;
  auto outcome = result.get_future();
  // The bridge is built and the wait started in one handler on the io thread, as a coroutine
  // or handler would do; the cancellation is delivered after that handler returns.
  std::shared_ptr<Wait> keep;
  asio::post(io.io(), [&] {
    keep = std::make_shared<Wait>(io.io(), source.token());
    keep->timer.expires_after(kHang);
    keep->timer.async_wait(asio::bind_cancellation_slot(
        keep->bridge.slot(), [&](boost::system::error_code ec) { result.set_value(ec); }));
  });
  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(outcome.get(), asio::error::operation_aborted);
  io.stop();
}

TEST(AsioCancelBridgeTest, UncancelledWaitCompletesNormally) {
  IoThread io;
  CancelSource source;
  auto wait = std::make_shared<Wait>(io.io(), source.token());
  auto outcome = start_wait(io, wait, 1ms);
  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(outcome.get(), boost::system::error_code());
  source.cancel();  // after completion: harmless
  io.stop();
}

TEST(AsioCancelBridgeTest, DefaultTokenNeverCancels) {
  IoThread io;
  auto wait = std::make_shared<Wait>(io.io(), CancelToken{});
  auto outcome = start_wait(io, wait, 1ms);
  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(outcome.get(), boost::system::error_code());
  io.stop();
}

TEST(AsioCancelBridgeTest, ParentCancelReachesAWaitOnAChildToken) {
  IoThread io;
  CancelSource parent;
  CancelSource child(parent.token());
  auto wait = std::make_shared<Wait>(io.io(), child.token());
  auto outcome = start_wait(io, wait, kHang);
  parent.cancel(CancelReason::Shutdown);
  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(outcome.get(), asio::error::operation_aborted);
  io.stop();
}

TEST(AsioCancelBridgeTest, StopsAnAwaitedTimerInACoroutine) {
  IoThread io;
  CancelSource source;
  std::promise<bool> aborted;
  auto outcome = aborted.get_future();
  std::promise<void> started;
  auto started_future = started.get_future();
  asio::co_spawn(
      io.io(),
      [&]() -> asio::awaitable<void> {
        AsioCancelBridge bridge(source.token(), co_await asio::this_coro::executor);
        asio::steady_timer timer(co_await asio::this_coro::executor, kHang);
        started.set_value();
        try {
          co_await timer.async_wait(
              asio::bind_cancellation_slot(bridge.slot(), asio::use_awaitable));
          aborted.set_value(false);
        } catch (const boost::system::system_error& e) {
          aborted.set_value(e.code() == asio::error::operation_aborted);
        }
      },
      asio::detached);
  started_future.wait();
  source.cancel();
  ASSERT_EQ(outcome.wait_for(kHang), std::future_status::ready);
  EXPECT_TRUE(outcome.get());
  io.stop();
}

}  // namespace
}  // namespace molt::core
