// Blocking work (SQLite, CPU-heavy code) from a handler, without blocking the I/O thread:
// the function runs on a core::BlockingPool and the handler resumes on its own thread with
// the result. A full pool answers 503 at once rather than queueing without bound.
//
//   const auto page = co_await molt::web::run_blocking(pool, [&] { return query(db, args); });
//
// Short, repeatable work (a SQLite read by key) can skip the hand-off: run_short runs it on the
// I/O thread within a small budget, and only work that does not fit goes to the pool.
#pragma once

#include <atomic>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "molt/core/blocking_pool.hpp"
#include "molt/core/deadline.hpp"
#include "molt/core/status.hpp"
#include "molt/web/app.hpp"

namespace molt::web {

namespace detail {
// The hand-offs to a BlockingPool that are not done with their io_context yet: its destruction
// waits for them. A pool thread posts the result back and then releases its work; an owner
// that destroys the io_context once it has no work (a test's, run for a while) could do so
// while that thread is still inside the post or the release, on freed memory.
class PoolHandoffs final : public boost::asio::execution_context::service {
 public:
  using key_type = PoolHandoffs;
  static inline boost::asio::execution_context::id id;

  explicit PoolHandoffs(boost::asio::execution_context& context)
      : boost::asio::execution_context::service(context) {}
  void begin();
  void end();

 private:
  void shutdown() override;  // the io_context's destruction: waits until none is in flight

  std::mutex mutex_;
  std::condition_variable ended_;
  std::size_t in_flight_ = 0;
};
}  // namespace detail

template <typename F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(core::BlockingPool& pool, F fn) {
  using Result = std::invoke_result_t<F&>;
  constexpr bool kReturnsNothing = std::is_void_v<Result>;
  const auto executor = co_await boost::asio::this_coro::executor;
  auto& handoffs = boost::asio::use_service<detail::PoolHandoffs>(
      boost::asio::query(executor, boost::asio::execution::context));
  // The coroutine stays suspended until the pool hands back, so these outlive the task.
  std::optional<std::conditional_t<kReturnsNothing, std::monostate, Result>> result;
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
        // inside post, signalling its scheduler (a race TSan saw with a short-lived one). Nor
        // while it releases the work: its destruction waits for the hand-off's end. The
        // handler goes before the end too: the last to hold it must be the io_context (its
        // queue or its thread), not this closure, which the pool thread destroys later.
        handoffs.begin();
        auto hand_back = [resume, executor, &handoffs]() mutable {
          boost::asio::post(executor, [resume] { std::move(resume->handler)(); });
          resume->work.reset();
          resume.reset();
          handoffs.end();
        };
        const bool queued = pool.try_post([&, hand_back]() mutable {
                                  try {
                                    if constexpr (kReturnsNothing) {
                                      fn();
                                      result.emplace();
                                    } else {
                                      result.emplace(fn());
                                    }
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
  if constexpr (kReturnsNothing)
    co_return;
  else
    co_return std::move(*result);
}

// How long short work may hold an I/O thread, and what became of the last attempts. After
// an attempt overran, the next `kPoolTurns` calls go to the pool without trying: a route whose
// reads have grown slow pays for a failed attempt now and then, not on every request. One
// budget per kind of work (a route, a query); it is shared by all I/O threads.
class InlineBudget {
 public:
  static constexpr std::uint32_t kPoolTurns = 64;

  explicit InlineBudget(std::chrono::microseconds limit = std::chrono::microseconds(250))
      : limit_(limit) {}
  InlineBudget(const InlineBudget&) = delete;
  InlineBudget& operator=(const InlineBudget&) = delete;

  std::chrono::microseconds limit() const noexcept { return limit_; }
  // Whether this call may try the I/O thread; false while turns after an overrun remain.
  bool try_inline() noexcept {
    std::uint32_t turns = pool_turns_.load(std::memory_order_relaxed);
    while (turns > 0)
      if (pool_turns_.compare_exchange_weak(turns, turns - 1, std::memory_order_relaxed))
        return false;
    return true;
  }
  void overran() noexcept {
    overruns_.fetch_add(1, std::memory_order_relaxed);
    pool_turns_.store(kPoolTurns, std::memory_order_relaxed);
  }
  std::uint64_t overruns() const noexcept { return overruns_.load(std::memory_order_relaxed); }

 private:
  const std::chrono::microseconds limit_;
  std::atomic<std::uint32_t> pool_turns_{0};
  std::atomic<std::uint64_t> overruns_{0};
};

// `fn(deadline)` on this I/O thread with the earlier of `deadline` and the budget. When the
// budget cut it short while `deadline` still holds, it runs again on `pool` with `deadline`
// alone. Cut short means a core::Error Timeout once the budget has passed (a query stopped,
// or a wait for a connection), or Busy (a SQLite lock, whose wait the budget also cut); any
// other error, and a Timeout before the budget passed (a token cancelled for its deadline),
// is the answer. So `fn` must be repeatable (a read, no side effects) and honour the deadline
// it is given, as molt::db's SQLite queries do. It must also be in-process work: a network
// round trip (PostgreSQL) cannot be stopped at the budget, and belongs on the pool.
// On one core this saves the two thread switches of a hand-off per call.
//
//   const auto page = co_await molt::web::run_short(pool, budget, deadline,
//                                                   [&](Deadline d) { return list(db, d); });
template <typename F>
boost::asio::awaitable<std::invoke_result_t<F&, core::Deadline>> run_short(core::BlockingPool& pool,
                                                                           InlineBudget& budget,
                                                                           core::Deadline deadline,
                                                                           F fn) {
  if (budget.try_inline()) {
    const core::Deadline within_budget = deadline.min(core::Deadline::after(budget.limit()));
    try {
      co_return fn(within_budget);
    } catch (const core::Error& e) {
      const bool cut_short = (e.code() == core::StatusCode::Timeout && within_budget.expired()) ||
                             e.code() == core::StatusCode::Busy;
      if (!cut_short || deadline.expired()) throw;
    }
    budget.overran();
  }
  co_return co_await run_blocking(pool, [&] { return fn(deadline); });
}

}  // namespace molt::web
