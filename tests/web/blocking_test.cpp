#include "molt/web/blocking.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "molt/core/status.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "molt/web/websocket.hpp"
#include "socket_client.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Request;
using molt::web::Response;
using molt::web::TestClient;

TEST(BlockingTest, WorkRunsOnThePoolAndErrorsComeBack) {
  // One place to wait: the pool thread hands /tid's result back before it counts itself idle,
  // so with no waiting room /fail could arrive in that moment and get a 503 (the full-pool
  // answer AFullPoolAnswers503 tests).
  molt::core::BlockingPool pool(1, 1);
  App app;
  app.get("/tid", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    const auto worker = co_await molt::web::run_blocking(pool, [] {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(50));  // the io_context must wait for it
      return std::this_thread::get_id();
    });
    co_return Response::text(worker != caller && std::this_thread::get_id() == caller ? "pool"
                                                                                      : "same");
  });
  app.get("/fail", [&](const Request&, Ctx&) -> awaitable<Response> {
    co_await molt::web::run_blocking(pool,
                                     []() -> int { throw std::runtime_error("disk on fire"); });
    co_return Response::text("unreachable");
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/tid").body, "pool");
  EXPECT_EQ(client.get("/fail").status, 500);
}

// A DELETE's work returns nothing: run_blocking and run_short take it as it is.
TEST(BlockingTest, WorkThatReturnsNothing) {
  molt::core::BlockingPool pool(1, 1);
  molt::web::InlineBudget budget;
  std::atomic<int> done{0};
  App app;
  app.del("/thing", [&](const Request&, Ctx&) -> awaitable<Response> {
    co_await molt::web::run_blocking(pool, [&] { ++done; });
    co_await molt::web::run_short(pool, budget,
                                  molt::core::Deadline::after(std::chrono::seconds(1)),
                                  [&](molt::core::Deadline) { ++done; });
    co_return Response(204);
  });
  app.del("/broken", [&](const Request&, Ctx&) -> awaitable<Response> {
    co_await molt::web::run_blocking(pool, [] { throw std::runtime_error("disk on fire"); });
    co_return Response(204);
  });
  TestClient client(app);
  EXPECT_EQ(client.request("DELETE", "/thing").status, 204);
  EXPECT_EQ(done, 2);
  EXPECT_EQ(client.request("DELETE", "/broken").status, 500);
  pool.close();
}

TEST(BlockingTest, AFullPoolAnswers503) {
  molt::core::BlockingPool pool(1, 0);  // one thread, no waiting room
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(pool.try_post([released] { released.wait(); }).has_value());  // occupies the thread
  App app;
  app.get("/work", [&](const Request&, Ctx&) -> awaitable<Response> {
    co_return Response::text(
        std::to_string(co_await molt::web::run_blocking(pool, [] { return 1; })));
  });
  TestClient client(app);
  const auto busy = client.get("/work");
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.body,
            R"({"error":{"code":"busy","message":"the server is busy; retry shortly"}})");
  release.set_value();
  pool.close();
}

// ctx.token() may be asked for inside the pool's function (docs/web.md does) while the I/O
// thread cancels the request because its client left. The token taken there sees the cancel
// whichever comes first, and the two threads never touch the request's cancel state at once
// (found by a review reading the source; a data race the tsan preset reports without the lock).
// A client that left before the hand-off stops the handler there: its function never runs.
TEST(BlockingTest, ATokenTakenOnThePoolSeesTheClientLeave) {
  molt::core::BlockingPool pool(2, 64);
  std::atomic<int> started{0};
  std::atomic<int> ran{0};
  std::atomic<int> saw_cancel{0};
  App app;
  app.get("/wait/{n:int}", [&](const Request&, Ctx& ctx) -> awaitable<Response> {
    const auto pause = std::chrono::microseconds(100 * (ctx.int_param("n") % 20));
    ++started;
    co_await molt::web::run_blocking(pool, [&] {
      ++ran;
      std::this_thread::sleep_for(pause);  // the client leaves before, during or after this
      const molt::core::CancelToken token = ctx.token();
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!token.cancelled() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (token.reason() == molt::core::CancelReason::Disconnected) ++saw_cancel;
      return 0;
    });
    co_return Response::text("answered");
  });
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  molt::web::Server server(app, options);
  server.start();
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    molt::web::testing::Client client(server.port());
    client.send("GET /wait/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (started < i + 1 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }  // each client closes here, as its handler starts
  EXPECT_EQ(started, kRequests);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last hand-off is made
  EXPECT_TRUE(pool.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  EXPECT_GT(ran, 0);
  EXPECT_EQ(saw_cancel, ran);
  server.stop();
  pool.close();
}

// Found by a review: two pool threads of one handler (two run_blocking awaited at once) asked
// for ctx.token() together, and both wrote the Ctx's copy of it.
TEST(BlockingTest, TwoPoolThreadsOfOneHandlerAskForItsTokenAtOnce) {
  molt::core::BlockingPool pool(2, 4);
  App app;
  app.get("/two", [&](const Request&, Ctx& ctx) -> awaitable<Response> {
    using namespace boost::asio::experimental::awaitable_operators;
    std::atomic<int> arrived{0};
    const auto take = [&] {
      ++arrived;
      while (arrived < 2) std::this_thread::yield();  // both threads at once
      return ctx.token().can_be_cancelled();
    };
    const auto [first, second] =
        co_await (molt::web::run_blocking(pool, take) && molt::web::run_blocking(pool, take));
    co_return Response::text(first && second && !ctx.cancelled() ? "one token" : "none");
  });
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  molt::web::Server server(app, options);
  server.start();
  for (int i = 0; i < 20; ++i) {
    molt::web::testing::Client client(server.port());
    client.send("GET /two HTTP/1.1\r\nHost: h\r\n\r\n");
    const auto answers = TestClient::parse_responses(client.receive(1));
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].body, "one token");
  }
  server.stop();
  pool.close();
}

// Found by a review: an io_context destroyed while the pool still held its hand-off (a test's,
// run for a while and dropped) was posted into and released after it was freed. Its
// destruction now waits for the hand-off to end.
TEST(BlockingTest, AnIoContextDroppedUnderAPoolTaskWaitsForItsHandOff) {
  molt::core::BlockingPool pool(1, 4);
  std::atomic<bool> finished{false};
  for (int round = 0; round < 3; ++round) {
    finished = false;
    {
      boost::asio::io_context io;
      boost::asio::co_spawn(
          io,
          [&]() -> awaitable<void> {
            co_await molt::web::run_blocking(pool, [&] {
              std::this_thread::sleep_for(std::chrono::milliseconds(150));
              finished = true;
            });
          },
          boost::asio::detached);
      io.run_for(std::chrono::milliseconds(20));  // the task is on the pool now
    }                                             // destroyed here, the pool's thread still asleep
    EXPECT_TRUE(finished.load());
  }
  pool.close();
}

// The same through TestClient::websocket_connect: a handler still in run_blocking when the
// test gives up on it (its timeout) and drops the socket.
TEST(BlockingTest, ATestWebSocketDroppedUnderAPoolTaskWaitsForItsHandOff) {
  molt::core::BlockingPool pool(1, 4);
  std::atomic<bool> finished{false};
  App app;
  app.websocket("/ws", [&](molt::web::WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    co_await socket.send_text("hi");
    co_await molt::web::run_blocking(pool, [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      finished = true;
    });
  });
  TestClient client(app);
  {
    auto socket = client.websocket_connect("/ws");
    socket.set_timeout(std::chrono::milliseconds(50));
    EXPECT_EQ(socket.receive_text(), "hi");
  }  // its close times out (the handler is on the pool), then the io_context goes
  EXPECT_TRUE(finished.load());
  pool.close();
}

using molt::core::Deadline;
using molt::web::InlineBudget;

// Where each attempt of a run_short function ran, and with what deadline.
struct Attempts {
  std::atomic<int> count{0};
  std::atomic<int> on_caller{0};
  std::atomic<int> on_pool{0};
  void record(std::thread::id caller) {
    ++count;
    ++(std::this_thread::get_id() == caller ? on_caller : on_pool);
  }
};

// Waits out the deadline it was given, then stops as a molt::db query does when its
// deadline passes.
[[noreturn]] void stop_at(Deadline deadline) {
  std::this_thread::sleep_until(deadline.at());
  throw molt::core::Error(molt::core::StatusCode::Timeout, "query deadline exceeded");
}

TEST(RunShortTest, ShortWorkRunsOnTheIoThreadWithinTheBudget) {
  molt::core::BlockingPool pool(1, 1);
  InlineBudget budget(std::chrono::milliseconds(50));
  Attempts attempts;
  App app;
  app.get("/short", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    const auto far = Deadline::after(std::chrono::seconds(30));
    const auto left = co_await molt::web::run_short(pool, budget, far, [&](Deadline d) {
      attempts.record(caller);
      return d.remaining();
    });
    co_return Response::text(left <= std::chrono::milliseconds(50) ? "budget" : "whole");
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/short").body, "budget");
  EXPECT_EQ(attempts.count, 1);
  EXPECT_EQ(attempts.on_caller, 1);
  EXPECT_EQ(budget.overruns(), 0u);
}

TEST(RunShortTest, WorkOverTheBudgetRunsAgainOnThePoolWithTheWholeDeadline) {
  molt::core::BlockingPool pool(1, 1);
  InlineBudget budget(std::chrono::milliseconds(5));
  Attempts attempts;
  App app;
  app.get("/slow", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    const auto far = Deadline::after(std::chrono::seconds(30));
    const auto left = co_await molt::web::run_short(pool, budget, far, [&](Deadline d) {
      attempts.record(caller);
      if (d.remaining() < std::chrono::seconds(1)) stop_at(d);  // the budget's deadline
      return d.remaining();
    });
    co_return Response::text(left > std::chrono::seconds(1) ? "whole" : "budget");
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/slow").body, "whole");
  EXPECT_EQ(attempts.count, 2);
  EXPECT_EQ(attempts.on_caller, 1);
  EXPECT_EQ(attempts.on_pool, 1);
  EXPECT_EQ(budget.overruns(), 1u);
  // The next call does not try the I/O thread again: it goes straight to the pool.
  EXPECT_EQ(client.get("/slow").body, "whole");
  EXPECT_EQ(attempts.count, 3);
  EXPECT_EQ(attempts.on_pool, 2);
  EXPECT_EQ(budget.overruns(), 1u);
}

TEST(RunShortTest, ALockedDatabaseInlineIsTriedAgainOnThePool) {
  molt::core::BlockingPool pool(1, 1);
  InlineBudget budget;
  Attempts attempts;
  App app;
  app.get("/busy", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    co_return Response::text(co_await molt::web::run_short(
        pool, budget, Deadline::after(std::chrono::seconds(30)), [&](Deadline) {
          attempts.record(caller);
          if (std::this_thread::get_id() == caller)
            throw molt::core::Error(molt::core::StatusCode::Busy, "database is locked");
          return std::string("served");
        }));
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/busy").body, "served");
  EXPECT_EQ(attempts.on_caller, 1);
  EXPECT_EQ(attempts.on_pool, 1);
}

TEST(RunShortTest, TheRequestsOwnDeadlineAndOtherErrorsAreNotRetried) {
  molt::core::BlockingPool pool(1, 1);
  InlineBudget budget(std::chrono::seconds(10));
  Attempts attempts;
  App app;
  app.get("/late", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    co_await molt::web::run_short(pool, budget, Deadline::after(std::chrono::milliseconds(5)),
                                  [&](Deadline d) -> int {
                                    attempts.record(caller);
                                    stop_at(d);
                                  });
    co_return Response::text("unreachable");
  });
  app.get("/bad", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    co_await molt::web::run_short(pool, budget, Deadline::after(std::chrono::seconds(30)),
                                  [&](Deadline) -> int {
                                    attempts.record(caller);
                                    throw molt::core::InvalidInput("cursor: expected digits");
                                  });
    co_return Response::text("unreachable");
  });
  // A Timeout before the budget passed is not the budget's: a token cancelled for its
  // deadline, say. It is the answer, and no overrun.
  app.get("/early", [&](const Request&, Ctx&) -> awaitable<Response> {
    const auto caller = std::this_thread::get_id();
    co_await molt::web::run_short(
        pool, budget, Deadline::after(std::chrono::seconds(30)), [&](Deadline) -> int {
          attempts.record(caller);
          throw molt::core::Error(molt::core::StatusCode::Timeout, "the request's deadline passed");
        });
    co_return Response::text("unreachable");
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/late").status, 504);
  EXPECT_EQ(attempts.count, 1);
  EXPECT_EQ(client.get("/early").status, 504);
  EXPECT_EQ(attempts.count, 2);
  const auto bad = client.get("/bad");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("cursor: expected digits"), std::string::npos);
  EXPECT_EQ(attempts.count, 3);
  EXPECT_EQ(attempts.on_pool, 0);
  EXPECT_EQ(budget.overruns(), 0u);
}

TEST(RunShortTest, AfterAnOverrunTheBudgetSendsAFixedNumberOfCallsToThePool) {
  InlineBudget budget;
  EXPECT_TRUE(budget.try_inline());
  budget.overran();
  for (std::uint32_t i = 0; i < InlineBudget::kPoolTurns; ++i) EXPECT_FALSE(budget.try_inline());
  EXPECT_TRUE(budget.try_inline());
  EXPECT_TRUE(budget.try_inline());
  EXPECT_EQ(budget.overruns(), 1u);
}

}  // namespace
