#include "molt/web/blocking.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "molt/web/test_client.hpp"

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

}  // namespace
