#include "task_group.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>

#include "molt/core/status.hpp"

namespace molt::web::detail {

namespace asio = boost::asio;

struct TaskGroup::Running {
  Running(const asio::any_io_executor& executor, core::CancelSource cancel)
      : source(std::move(cancel)), deadline(executor) {}
  core::CancelSource source;
  // The task must outlive its coroutine: a capturing lambda's frame refers to its captures.
  BackgroundTask task;
  asio::cancellation_signal signal;  // aborts whatever the task awaits
  asio::steady_timer deadline;
  core::CancelRegistration on_cancel;
};

TaskGroup::~TaskGroup() = default;

bool TaskGroup::spawn(BackgroundTask task, const core::CancelToken& request_token,
                      const SpawnOptions& options) {
  if (cancelled_ || running_.size() >= max_tasks_) return false;
  auto running = std::make_shared<Running>(executor_, options.inherit_cancellation
                                                          ? core::CancelSource(request_token)
                                                          : core::CancelSource());
  running->task = std::move(task);
  running_.insert(running);
  // However the token is cancelled (the request's client left, its deadline, shutdown, the
  // task's own timeout), the task's awaits are aborted too, on this thread.
  std::weak_ptr<Running> weak = running;
  running->on_cancel = running->source.token().on_cancel([weak, executor = executor_] {
    asio::post(executor, [weak] {
      if (auto alive = weak.lock()) alive->signal.emit(asio::cancellation_type::terminal);
    });
  });
  running->deadline.expires_after(options.timeout);
  running->deadline.async_wait([weak](boost::system::error_code ec) {
    if (auto alive = weak.lock(); alive && !ec) alive->source.cancel(core::CancelReason::Timeout);
  });
  asio::co_spawn(executor_, running->task(running->source.token()),
                 asio::bind_cancellation_slot(
                     running->signal.slot(), [this, running](std::exception_ptr error) {
                       if (error && !running->source.cancelled()) {
                         try {
                           std::rethrow_exception(error);
                         } catch (const std::exception& e) {
                           std::fprintf(stderr, "molt::web: a spawned task failed: %s\n",
                                        core::one_line(e.what()).c_str());
                         } catch (...) {
                           std::fprintf(stderr, "molt::web: a spawned task failed\n");
                         }
                       }
                       finished(running);
                     }));
  return true;
}

void TaskGroup::finished(const std::shared_ptr<Running>& running) {
  running->deadline.cancel();
  running->on_cancel.reset();
  running_.erase(running);
  if (running_.empty() && draining_ && on_empty_) std::exchange(on_empty_, nullptr)();
}

void TaskGroup::cancel_all() {
  cancelled_ = true;
  for (const auto& running : running_) running->source.cancel(core::CancelReason::Shutdown);
}

void TaskGroup::on_empty(std::function<void()> callback) {
  if (running_.empty()) {
    callback();
  } else {
    on_empty_ = std::move(callback);
  }
}

}  // namespace molt::web::detail
