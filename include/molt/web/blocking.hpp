// Blocking work (SQLite, CPU-heavy code) from a handler, without blocking the I/O thread:
// the function runs on a core::BlockingPool and the handler resumes on its own thread with
// the result. A full pool answers 503 at once rather than queueing without bound.
//
//   const auto page = co_await molt::web::run_blocking(pool, [&] { return query(db, args); });
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "molt/core/blocking_pool.hpp"
#include "molt/web/app.hpp"

namespace molt::web {

template <typename F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(core::BlockingPool& pool, F fn) {
  using Result = std::invoke_result_t<F&>;
  static_assert(!std::is_void_v<Result>, "run_blocking: the function returns its result");
  const auto executor = co_await boost::asio::this_coro::executor;
  // The coroutine stays suspended until the pool hands back, so these outlive the task.
  std::optional<Result> result;
  std::exception_ptr error;
  bool busy = false;
  co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [&](auto completion) {
        // A work-tracking executor keeps the io_context running while the pool has the task.
        auto tracked =
            boost::asio::prefer(executor, boost::asio::execution::outstanding_work.tracked);
        struct Resume {
          decltype(completion) handler;
          std::optional<decltype(tracked)> work;
        };
        auto resume = std::make_shared<Resume>(Resume{std::move(completion), std::move(tracked)});
        // The work is released only once the post has returned: until then the io_context
        // cannot run out of work, so it cannot be destroyed while this (pool) thread is still
        // inside post, signalling its scheduler (a race TSan saw with a short-lived one).
        const auto hand_back = [resume, executor] {
          boost::asio::post(executor, [resume] { std::move(resume->handler)(); });
          resume->work.reset();
        };
        const bool queued = pool.try_post([&, hand_back] {
                                  try {
                                    result.emplace(fn());
                                  } catch (...) {
                                    error = std::current_exception();
                                  }
                                  hand_back();
                                })
                                .has_value();
        if (!queued) {
          busy = true;
          hand_back();
        }
      },
      boost::asio::use_awaitable);
  if (busy) throw HttpError(503, "busy", "the server is busy; retry shortly");
  if (error) std::rethrow_exception(error);
  co_return std::move(*result);
}

}  // namespace molt::web
