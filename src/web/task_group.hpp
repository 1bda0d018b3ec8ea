// The background tasks of one server thread (ctx.spawn): bounded in number and in time, each
// with a CancelSource that follows its request's unless told otherwise, drained at shutdown.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_set>

#include "molt/core/cancel.hpp"
#include "molt/web/app.hpp"

namespace molt::web::detail {

class TaskGroup {
 public:
  TaskGroup(boost::asio::any_io_executor executor, std::size_t max_tasks)
      : executor_(std::move(executor)), max_tasks_(max_tasks) {}
  ~TaskGroup();

  // False (and nothing runs) when the group is full, or its shutdown grace is over.
  bool spawn(BackgroundTask task, const core::CancelToken& request_token,
             const SpawnOptions& options);
  std::size_t size() const { return running_.size(); }
  // Shutdown: let the running tasks finish. The requests still being answered may still
  // spawn (a 202 for accepted work must not lose it); theirs run within the grace too.
  void drain() { draining_ = true; }
  // The grace is over: cancel every running task (reason Shutdown).
  void cancel_all();
  // Called once the group is empty after drain().
  void on_empty(std::function<void()> callback);

 private:
  struct Running;
  void finished(const std::shared_ptr<Running>& running);

  boost::asio::any_io_executor executor_;
  std::size_t max_tasks_;
  bool draining_ = false;
  bool cancelled_ = false;  // cancel_all ran: the grace is over
  std::unordered_set<std::shared_ptr<Running>> running_;
  std::function<void()> on_empty_;
};

}  // namespace molt::web::detail
