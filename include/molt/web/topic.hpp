// Topic: messages published from any thread to every subscriber, each subscriber on its own
// I/O thread. What a chat room or a live feed needs beside WebSockets, whose sockets live on
// the threads that accepted them (websocket.hpp):
//
//   app.emplace_state<molt::web::Topic>();
//   app.websocket("/ws/feed", [](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
//     auto& feed = ctx.state<molt::web::Topic>();
//     co_await socket.accept();
//     auto inbox = co_await feed.subscribe();          // what is published from now on
//     for (;;) co_await socket.send_text(co_await inbox.next());
//   });
//   ...
//   feed.publish(R"({"price": 101.5})");              // from any thread, a handler, a task
//
// Each subscriber has a queue of its own: a slow one does not hold up the others nor the
// publisher. When its queue is full, messages for it are dropped and counted (dropped()), so
// its handler can tell its client, or close it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace molt::web {

namespace detail {
struct TopicState;
struct Subscriber;
}  // namespace detail

class Topic {
 public:
  // `queue`: the messages a subscriber may have waiting before the next are dropped for it.
  explicit Topic(std::size_t queue = 256);
  ~Topic();
  Topic(Topic&&) noexcept;
  Topic& operator=(Topic&&) noexcept;

  class Subscription {
   public:
    Subscription(Subscription&&) noexcept;
    Subscription& operator=(Subscription&&) noexcept;
    ~Subscription();  // leaves the topic

    // The next message, waiting until one is published. Cancellable as any Asio operation
    // (the request's end); a message is never lost to it. Race whole loops with `||`, not
    // single calls: the loser of `next() || receive()` may have taken a message already.
    boost::asio::awaitable<std::string> next();
    // Messages this subscriber missed because its queue was full.
    std::uint64_t dropped() const;

   private:
    friend class Topic;
    Subscription(std::shared_ptr<detail::TopicState> topic,
                 std::shared_ptr<detail::Subscriber> subscriber);
    std::shared_ptr<detail::TopicState> topic_;
    std::shared_ptr<detail::Subscriber> subscriber_;
  };

  // A subscription that next() reads on the calling coroutine's I/O thread.
  boost::asio::awaitable<Subscription> subscribe();
  // The same on `executor`: next() must be awaited by a coroutine running there, on a
  // single-threaded io_context (as every server thread's is).
  Subscription subscribe(boost::asio::any_io_executor executor);

  // Hands `message` to every subscriber; returns how many took it (the others' queues were
  // full). Thread-safe, and it never waits for a subscriber.
  std::size_t publish(std::string message);
  std::size_t subscribers() const;

 private:
  std::shared_ptr<detail::TopicState> state_;
};

}  // namespace molt::web
