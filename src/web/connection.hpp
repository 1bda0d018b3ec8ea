// One HTTP/1.1 connection: a coroutine that reads a request, answers it, and goes on while
// the peer keeps the connection alive. A watchdog timer enforces the header, idle and request
// timeouts without being re-armed on every request (it only ever moves its deadline later,
// lazily, when it fires).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "body_stream.hpp"
#include "molt/core/cancel.hpp"
#include "molt/web/app.hpp"
#include "molt/web/limits.hpp"
#include "request_cancel.hpp"
#include "request_reader.hpp"
#include "task_group.hpp"
#include "websocket_session.hpp"

namespace molt::web::detail {

class Connection;
class StreamFraming;

// The connections of one server thread; used on that thread only (size() excepted).
class ConnectionSet {
 public:
  void add(Connection* connection);
  void remove(Connection* connection);
  std::size_t size() const { return count_.load(std::memory_order_relaxed); }
  bool draining() const { return draining_; }
  // Graceful shutdown: idle connections end now (or after the request that already came),
  // busy ones after their current answer.
  void drain();
  // The grace period is over: cancel what still runs; a handler has a last second to answer,
  // everything else ends now.
  void close_all();
  // Called once the set is empty (after drain()).
  void on_empty(std::function<void()> callback);

 private:
  std::unordered_set<Connection*> connections_;
  std::atomic<std::size_t> count_{0};
  bool draining_ = false;
  std::function<void()> on_empty_;
};

class Connection final : public std::enable_shared_from_this<Connection>, public RequestClock {
 public:
  static void start(boost::asio::ip::tcp::socket socket, const App& app, const Limits& limits,
                    ConnectionSet& set, TaskGroup& tasks);
  Connection(boost::asio::ip::tcp::socket socket, const App& app, const Limits& limits,
             ConnectionSet& set, TaskGroup& tasks);
  ~Connection();

  void drain();
  void force_close();
  // A route's own RouteOptions::request_timeout, from its dispatch on.
  void set_request_timeout(std::chrono::milliseconds timeout) override;

 private:
  // Lingering: answered and closing, reading what the peer still sends (linger). Upgraded: a
  // WebSocket session has the socket.
  enum class Phase { Idle, Reading, Handling, Writing, Lingering, Upgraded };
  using Clock = std::chrono::steady_clock;

  // A streamed request body, read from the socket as the handler asks for it.
  class SocketBody final : public BodyStream {
   public:
    explicit SocketBody(Connection& connection)
        : BodyStream(connection.reader_), connection_(connection) {}
    // A new streamed request on the connection.
    void open();
    // Whether a read for the body is waiting on the client.
    bool awaiting() const { return awaiting_; }
    // The watchdog ended that wait: the body did not come in time.
    void time_out() { late_ = true; }

   private:
    boost::asio::awaitable<void> send_continue() override;
    boost::asio::awaitable<bool> receive() override;
    void on_end() override;
    // How much longer the current wait may take before the body is slower on average than
    // Limits::min_body_rate allows.
    Clock::duration rate_allowance() const;
    Connection& connection_;
    // The time spent waiting for the body and the bytes it brought: its rate.
    Clock::duration waited_{};
    std::uint64_t received_ = 0;
    bool awaiting_ = false;
    bool late_ = false;
  };

  boost::asio::awaitable<void> run();
  // The request's 101 upgraded the connection: the WebSocket session takes the socket.
  boost::asio::awaitable<void> serve_websocket(Ctx& ctx, Response handshake);
  void on_websocket_timer();
  bool send_now();
  boost::asio::awaitable<bool> write_out();
  void watch_for_disconnect();
  void stop_watching_for_disconnect();
  // The request's streamed body has not been read to its end.
  bool body_coming() { return reader_.request().body_streamed() && !body_.ended(); }
  boost::asio::awaitable<bool> write_stream(const Response& response);
  // A streamed answer's keep-alive pieces (Response::set_stream_keepalive), sent while its
  // producer works on the next piece.
  struct KeepaliveState {
    explicit KeepaliveState(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    std::uint64_t generation = 0;  // of the current wait: an older one's completion is ignored
    std::string unsent;            // a framed piece the socket took part of
    const Response* response = nullptr;
    StreamFraming* framing = nullptr;
  };
  void start_keepalive(const Response& response, StreamFraming& framing);
  void send_keepalive(std::uint64_t generation);
  // Stops the pieces; what of one is still unsent goes before the next bytes in out_.
  void stop_keepalive();
  // Closes after an answer: stops sending (a FIN after the answer), then reads and drops
  // what the peer still sends for a while. Closing with unread input would send a reset,
  // which can destroy the answer's last bytes before the client reads them.
  boost::asio::awaitable<void> linger();
  // How long a connection closed with a body still coming reads and drops it first, so that
  // the client gets the answer rather than a reset (a close with unread input sends RST).
  static constexpr auto kLingerTime = std::chrono::seconds(2);
  void arm(Clock::duration timeout);
  // The request's time: its route's own, else the server's.
  std::chrono::milliseconds request_timeout() const {
    return route_timeout_.value_or(limits_.request_timeout);
  }
  void on_timer(std::uint64_t generation);
  void close_socket();
  // Closes with a reset: the answer was cut short, and a plain close would look like its end.
  void reset_socket();
  void cut();
  // Bytes the peer sent that nothing has read yet.
  bool input_waiting() const;

  boost::asio::ip::tcp::socket socket_;
  const App& app_;
  const Limits& limits_;
  ConnectionSet& set_;
  TaskGroup& tasks_;
  RequestReader reader_;
  SocketBody body_{*this};
  std::string out_;
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_{};
  Clock::time_point timer_expiry_{};
  std::uint64_t timer_generation_ = 0;
  bool timer_waiting_ = false;
  bool cancelled_for_timeout_ = false;
  Phase phase_ = Phase::Idle;
  bool closing_ = false;
  bool forced_ = false;             // the shutdown's grace is over
  bool answer_sent_ = false;        // in Writing: all of it is out (the rest of a body may follow)
  bool watching_ = false;           // a readability wait for a disconnect is outstanding
  std::uint64_t watch_number_ = 0;  // of the newest wait: an older one's completion is ignored
  std::uint64_t request_number_ = 0;
  const Ctx* handling_ = nullptr;  // the request whose handler runs, while it runs
  // Points handling_ at a request's Ctx for as long as the guard lives (whatever ends it).
  struct HandlingGuard {
    HandlingGuard(const Ctx*& slot, const Ctx& ctx) : slot_(slot) { slot_ = &ctx; }
    ~HandlingGuard() { slot_ = nullptr; }
    HandlingGuard(const HandlingGuard&) = delete;
    HandlingGuard& operator=(const HandlingGuard&) = delete;
    const Ctx*& slot_;
  };
  bool read_timed_out_ = false;  // a request that did not arrive in time: 408, then linger
  std::optional<std::chrono::milliseconds> route_timeout_;  // the request's route's, if it has one
  RequestCancel request_cancel_;
  WebSocketSession* websocket_ = nullptr;      // while a session has the socket
  std::unique_ptr<KeepaliveState> keepalive_;  // made for the first stream that asks
  // Cancels whatever the connection's coroutine awaits (a handler's timer or query
  // included) at a request timeout or a forced shutdown.
  boost::asio::cancellation_signal cancel_signal_;
};

// Answers 503 to a connection over the limit, without reading from it, and closes it.
void refuse_connection(boost::asio::ip::tcp::socket socket);

}  // namespace molt::web::detail
