#include "molt/web/topic.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <mutex>
#include <vector>

namespace molt::web {

namespace asio = boost::asio;

namespace detail {

struct Subscriber {
  Subscriber(asio::any_io_executor on, std::size_t limit)
      : executor(std::move(on)),
        limit(limit),
        arrived(executor, asio::steady_timer::time_point::max()) {}

  asio::any_io_executor executor;
  const std::size_t limit;
  std::mutex mutex;  // queue and dropped: publishers on any thread
  std::deque<std::string> queue;
  std::uint64_t dropped = 0;
  bool gone = false;  // its Subscription ended: publishers no longer post to its thread
  // A signal on the subscriber's thread: it never expires; a publish cancels its wait.
  asio::steady_timer arrived;
};

struct TopicState {
  explicit TopicState(std::size_t queue) : queue(std::max<std::size_t>(queue, 1)) {}
  const std::size_t queue;
  mutable std::mutex mutex;
  std::vector<std::shared_ptr<Subscriber>> subscribers;
};

}  // namespace detail

Topic::Topic(std::size_t queue) : state_(std::make_shared<detail::TopicState>(queue)) {}
Topic::~Topic() = default;
Topic::Topic(Topic&&) noexcept = default;
Topic& Topic::operator=(Topic&&) noexcept = default;

Topic::Subscription Topic::subscribe(asio::any_io_executor executor) {
  auto subscriber = std::make_shared<detail::Subscriber>(std::move(executor), state_->queue);
  std::lock_guard lock(state_->mutex);
  state_->subscribers.push_back(subscriber);
  return Subscription(state_, std::move(subscriber));
}

asio::awaitable<Topic::Subscription> Topic::subscribe() {
  co_return subscribe(co_await asio::this_coro::executor);
}

std::size_t Topic::publish(std::string message) {
  std::vector<std::shared_ptr<detail::Subscriber>> subscribers;
  {
    std::lock_guard lock(state_->mutex);
    subscribers = state_->subscribers;
  }
  std::size_t delivered = 0;
  for (const auto& subscriber : subscribers) {
    std::lock_guard lock(subscriber->mutex);
    if (subscriber->gone) continue;  // its thread may be ending: post nothing there
    if (subscriber->queue.size() >= subscriber->limit) {
      ++subscriber->dropped;
      continue;
    }
    subscriber->queue.push_back(message);
    ++delivered;
    // The wake runs on the subscriber's thread, where its next() checks the queue and waits
    // without a turn of that thread in between: it cannot be missed.
    asio::post(subscriber->executor, [subscriber] { subscriber->arrived.cancel(); });
  }
  return delivered;
}

std::size_t Topic::subscribers() const {
  std::lock_guard lock(state_->mutex);
  return state_->subscribers.size();
}

Topic::Subscription::Subscription(std::shared_ptr<detail::TopicState> topic,
                                  std::shared_ptr<detail::Subscriber> subscriber)
    : topic_(std::move(topic)), subscriber_(std::move(subscriber)) {}

Topic::Subscription::Subscription(Subscription&&) noexcept = default;

Topic::Subscription& Topic::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Subscription gone(std::move(*this));
    topic_ = std::move(other.topic_);
    subscriber_ = std::move(other.subscriber_);
  }
  return *this;
}

Topic::Subscription::~Subscription() {
  if (!topic_) return;
  {
    std::lock_guard lock(subscriber_->mutex);
    subscriber_->gone = true;
  }
  std::lock_guard lock(topic_->mutex);
  std::erase(topic_->subscribers, subscriber_);
}

asio::awaitable<std::string> Topic::Subscription::next() {
  if (!subscriber_) throw std::logic_error("Topic::Subscription::next: moved from");
  const auto subscriber = subscriber_;
  for (;;) {
    {
      std::lock_guard lock(subscriber->mutex);
      if (!subscriber->queue.empty()) {
        std::string message = std::move(subscriber->queue.front());
        subscriber->queue.pop_front();
        co_return message;
      }
    }
    // A publish's wake and a cancellation of this coroutine both end the wait: only the
    // second is the caller's.
    co_await subscriber->arrived.async_wait(asio::as_tuple(asio::use_awaitable));
    const auto state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none)
      throw boost::system::system_error(asio::error::operation_aborted,
                                        "Topic::Subscription::next");
  }
}

std::uint64_t Topic::Subscription::dropped() const {
  if (!subscriber_) return 0;
  std::lock_guard lock(subscriber_->mutex);
  return subscriber_->dropped;
}

}  // namespace molt::web
