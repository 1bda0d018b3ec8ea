// Topic: publishers on any thread, subscribers each on their own io_context thread.
#include "molt/web/topic.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using molt::web::Topic;
using namespace std::chrono_literals;

// An io_context run by a thread of its own, as a server thread is.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    thread.join();
  }
};

TEST(TopicTest, EverySubscriberOnEveryThreadGetsEveryMessageInOrder) {
  Topic topic;
  IoThread first, second;
  std::vector<std::future<std::vector<std::string>>> received;
  for (IoThread* thread : {&first, &first, &second}) {
    auto subscription =
        std::make_shared<Topic::Subscription>(topic.subscribe(thread->io.get_executor()));
    received.push_back(asio::co_spawn(
        thread->io,
        [subscription]() -> asio::awaitable<std::vector<std::string>> {
          std::vector<std::string> messages;
          while (messages.size() < 200) messages.push_back(co_await subscription->next());
          co_return messages;
        },
        asio::use_future));
  }
  EXPECT_EQ(topic.subscribers(), 3u);
  std::thread publisher([&] {
    for (int i = 0; i < 100; ++i) EXPECT_EQ(topic.publish("a" + std::to_string(i)), 3u);
  });
  for (int i = 0; i < 100; ++i) topic.publish("b" + std::to_string(i));
  publisher.join();
  for (auto& future : received) {
    ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
    const auto messages = future.get();
    int next_a = 0, next_b = 0;
    for (const std::string& message : messages) {
      int& next = message[0] == 'a' ? next_a : next_b;
      EXPECT_EQ(message.substr(1), std::to_string(next++));  // each publisher's order kept
    }
    EXPECT_EQ(next_a, 100);
    EXPECT_EQ(next_b, 100);
  }
}

TEST(TopicTest, AFullQueueDropsForThatSubscriberOnlyAndCounts) {
  Topic topic(4);
  asio::io_context io;
  Topic::Subscription slow = topic.subscribe(io.get_executor());
  Topic::Subscription fast = topic.subscribe(io.get_executor());
  std::vector<std::string> fast_got;
  for (int i = 0; i < 10; ++i) {
    topic.publish(std::to_string(i));
    auto got = asio::co_spawn(io, fast.next(), asio::use_future);
    io.run();
    io.restart();
    fast_got.push_back(got.get());
  }
  EXPECT_EQ(fast_got.size(), 10u);
  EXPECT_EQ(fast.dropped(), 0u);
  EXPECT_EQ(slow.dropped(), 6u);
  for (int i = 0; i < 4; ++i) {
    auto got = asio::co_spawn(io, slow.next(), asio::use_future);
    io.run();
    io.restart();
    EXPECT_EQ(got.get(), std::to_string(i));  // the first four were kept
  }
}

TEST(TopicTest, ASubscriptionLeavesWhenDestroyedAndNextCanBeCancelled) {
  using namespace asio::experimental::awaitable_operators;
  Topic topic;
  asio::io_context io;
  {
    Topic::Subscription gone = topic.subscribe(io.get_executor());
    EXPECT_EQ(topic.subscribers(), 1u);
  }
  EXPECT_EQ(topic.subscribers(), 0u);
  EXPECT_EQ(topic.publish("nobody"), 0u);

  Topic::Subscription inbox = topic.subscribe(io.get_executor());
  auto raced = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<bool> {
        asio::steady_timer timer(io, 20ms);
        auto winner = co_await (inbox.next() || timer.async_wait(asio::use_awaitable));
        co_return winner.index() == 1;  // the timer: nothing was published
      },
      asio::use_future);
  io.run();
  io.restart();
  EXPECT_TRUE(raced.get());
  topic.publish("later");  // the cancelled wait did not end the subscription
  auto got = asio::co_spawn(io, inbox.next(), asio::use_future);
  io.run();
  EXPECT_EQ(got.get(), "later");
}

}  // namespace
