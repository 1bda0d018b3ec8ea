#include "connection.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "exchange.hpp"
#include "response_writer.hpp"

namespace molt::web::detail {

namespace {
// After the shutdown's grace, how long a handler cancelled then has to answer its 503.
constexpr auto kLastWordTime = std::chrono::seconds(1);
}  // namespace

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---- ConnectionSet ----------------------------------------------------------------------

void ConnectionSet::add(Connection* connection) {
  connections_.insert(connection);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void ConnectionSet::remove(Connection* connection) {
  connections_.erase(connection);
  count_.fetch_sub(1, std::memory_order_relaxed);
  if (connections_.empty() && draining_ && on_empty_) std::exchange(on_empty_, nullptr)();
}

void ConnectionSet::drain() {
  draining_ = true;
  // A connection's drain() may end it, which removes it from the set: iterate over a copy.
  const std::vector<Connection*> snapshot(connections_.begin(), connections_.end());
  for (Connection* connection : snapshot) connection->drain();
}

void ConnectionSet::close_all() {
  const std::vector<Connection*> snapshot(connections_.begin(), connections_.end());
  for (Connection* connection : snapshot) connection->force_close();
}

void ConnectionSet::on_empty(std::function<void()> callback) {
  if (connections_.empty()) {
    callback();
  } else {
    on_empty_ = std::move(callback);
  }
}

// ---- Connection -------------------------------------------------------------------------

// Above this many open connections, a thread counts as busy (see run()).
constexpr std::size_t kBusyThreadConnections = 64;

void Connection::start(tcp::socket socket, const App& app, const Limits& limits, ConnectionSet& set,
                       TaskGroup& tasks) {
  auto connection = std::make_shared<Connection>(std::move(socket), app, limits, set, tasks);
  const auto executor = connection->socket_.get_executor();
  asio::co_spawn(
      executor, [connection]() { return connection->run(); },
      asio::bind_cancellation_slot(connection->cancel_signal_.slot(), asio::detached));
}

Connection::Connection(tcp::socket socket, const App& app, const Limits& limits, ConnectionSet& set,
                       TaskGroup& tasks)
    : socket_(std::move(socket)),
      app_(app),
      limits_(limits),
      set_(set),
      tasks_(tasks),
      reader_(limits, &app),
      timer_(socket_.get_executor()) {
  // For send_now(): a send that would block must say so, not wait.
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  const auto peer = socket_.remote_endpoint(ignored);
  if (!ignored) reader_.request().set_peer_address(peer.address().to_string());
  set_.add(this);
  closing_ = set_.draining();
}

Connection::~Connection() {
  set_.remove(this);
}

// Shutdown: an idle connection ends now, unless a request already arrived (a close would
// reset the connection under it): that one is answered, with `Connection: close`. The read
// it waits in is cancelled rather than the socket closed: what that read may already have
// taken in (Asio reads at once when it can) still reaches it. A lingering connection keeps
// its moment (a close could reset the answer it was just sent).
void Connection::drain() {
  closing_ = true;
  if (phase_ == Phase::Upgraded) {
    if (websocket_ != nullptr) websocket_->going_away();
    return;
  }
  if (phase_ == Phase::Idle && !reader_.has_buffered_input() && !input_waiting()) {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }
  // A stream with keep-alive pieces waiting for its producer: it ends now (write_stream).
  if (phase_ == Phase::Writing && keepalive_ && keepalive_->response) {
    request_cancel_.cancel(core::CancelReason::Shutdown);
    cancel_signal_.emit(asio::cancellation_type::terminal);
  }
}

// The grace is over. A handler still running is cancelled and gets a moment to answer its
// 503; everything else is cut at once.
void Connection::force_close() {
  request_cancel_.cancel(core::CancelReason::Shutdown);
  cancel_signal_.emit(asio::cancellation_type::terminal);
  if (phase_ == Phase::Upgraded) {
    forced_ = true;
    if (websocket_ != nullptr) websocket_->cut();
    return;
  }
  if (phase_ == Phase::Handling && request_cancel_.active()) {
    arm(kLastWordTime);
    forced_ = true;  // from now on no phase moves the deadline past that moment (arm)
    return;
  }
  forced_ = true;
  cut();
}

// Ends the connection. An answer being written is reset rather than closed: an HTTP/1.0
// body ends with the close, so a plain close would tell the client that it got all of it.
void Connection::cut() {
  if (phase_ == Phase::Writing && !answer_sent_)
    reset_socket();
  else
    close_socket();
}

bool Connection::input_waiting() const {
  boost::system::error_code ec;
  return socket_.available(ec) > 0 && !ec;
}

void Connection::close_socket() {
  boost::system::error_code ignored;
  socket_.close(ignored);  // pending reads and writes complete with operation_aborted
}

void Connection::reset_socket() {
  boost::system::error_code ignored;
  socket_.set_option(tcp::socket::linger(true, 0), ignored);
  socket_.close(ignored);
}

// The watchdog: one deadline, moved by each phase. The timer is re-armed only when the new
// deadline is earlier than the one it waits for; otherwise it wakes at the old one and
// waits again for the rest.
void Connection::arm(Clock::duration timeout) {
  // After the shutdown's grace, the last word's moment is the end whatever phase comes: the
  // 503's write, a stream, the linger after it.
  deadline_ = forced_ ? std::min(deadline_, Clock::now() + timeout) : Clock::now() + timeout;
  if (timer_waiting_ && timer_expiry_ <= deadline_) return;
  timer_expiry_ = deadline_;
  timer_waiting_ = true;
  timer_.expires_at(deadline_);
  const std::uint64_t generation = ++timer_generation_;
  timer_.async_wait([self = shared_from_this(), generation](boost::system::error_code ec) {
    if (!ec) self->on_timer(generation);
  });
}

void Connection::set_request_timeout(std::chrono::milliseconds timeout) {
  route_timeout_ = timeout;
  if (!cancelled_for_timeout_) arm(timeout);
}

void Connection::on_timer(std::uint64_t generation) {
  if (generation != timer_generation_) return;  // superseded by an earlier deadline
  timer_waiting_ = false;
  if (phase_ == Phase::Upgraded) return on_websocket_timer();
  if (!socket_.is_open()) return;
  if (Clock::now() < deadline_) {
    arm(deadline_ - Clock::now());
    return;
  }
  if (forced_) return cut();  // the moment after the grace is over too
  if (phase_ == Phase::Handling && request_cancel_.active() && !cancelled_for_timeout_) {
    // The handler's time is up: tell it, and give it a moment to answer before closing.
    cancelled_for_timeout_ = true;
    if (body_.awaiting()) body_.time_out();  // waiting on the client: 408 from its next()
    request_cancel_.cancel(core::CancelReason::Timeout);
    cancel_signal_.emit(asio::cancellation_type::terminal);
    arm(std::chrono::seconds(5));
    return;
  }
  if ((phase_ == Phase::Reading || (phase_ == Phase::Idle && reader_.has_buffered_input())) &&
      !read_timed_out_) {
    // The request did not arrive in time (a header or a body trickling in): run() says so
    // (RFC 9110 §15.5.9) and lingers, as after any refused request, so that what the client
    // still sends does not reset the connection under its 408. The read it waits in ends now.
    read_timed_out_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    arm(kLingerTime);  // for the 408's write; linger() takes the same time again
    return;
  }
  // A streamed answer's producer may be waiting on something other than this socket (an
  // upstream, a database): stop that too, not only the socket.
  request_cancel_.cancel(core::CancelReason::Timeout);
  cancel_signal_.emit(asio::cancellation_type::terminal);
  cut();
}

// While a handler runs nothing reads the socket, so a client that goes away would only be
// noticed at the write. Waiting for readability meanwhile catches it: a peer that closed (or
// reset) makes the socket readable with nothing to read, and the handler is cancelled at once.
// Bytes of a pipelined next request are kept for later in the buffer's free end (never grown
// or moved: the request in hand points into it) and the watch goes on; once that end is
// full, the watch ends and the socket's own buffers hold the rest.
void Connection::watch_for_disconnect() {
  // A body still to come makes the socket readable: its own reads notice a peer that leaves
  // (and the watch begins once the handler has read it all: SocketBody::on_end). Once the
  // handler has answered, a little rest may still come, for drain(): the watch then only
  // peeks.
  if (body_coming() && !body_.settled()) return;
  watching_ = true;
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), mine = ++watch_number_](
                                                 boost::system::error_code ec) {
    // A wait cancelled by stop_watching may complete after a newer one was armed: only the
    // newest watch may act (two would read into the buffer at once).
    if (mine != self->watch_number_) return;
    self->watching_ = false;
    if (ec || !self->request_cancel_.active()) return;
    // A streamed body begun meanwhile (a pipelined request's) is read by its own reads.
    if (self->body_coming() && !self->body_.settled()) return;
    const std::span<char> spare =
        self->body_coming() ? std::span<char>{} : self->reader_.spare_space();
    char byte;
    boost::system::error_code read_error;
    const std::size_t n =
        spare.empty()
            ? self->socket_.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, read_error)
            : self->socket_.receive(asio::buffer(spare.data(), spare.size()), 0, read_error);
    if (read_error == asio::error::would_block) return self->watch_for_disconnect();
    if (read_error || n == 0) {
      // A route that runs on when the client leaves is left to end; its answer goes nowhere.
      if (self->handling_ && self->handling_->finishes_after_disconnect()) return;
      self->request_cancel_.cancel(core::CancelReason::Disconnected);
      self->cancel_signal_.emit(asio::cancellation_type::terminal);
      return;
    }
    if (spare.empty()) return;  // no room for more: the peer is there, and can wait
    self->reader_.commit(n);
    self->watch_for_disconnect();
  });
}

void Connection::stop_watching_for_disconnect() {
  if (!watching_) return;
  watching_ = false;
  ++watch_number_;  // the cancelled wait's completion is not this watch's any more
  boost::system::error_code ignored;
  socket_.cancel(ignored);  // only the wait is outstanding: the coroutine reads nothing now
}

// Most answers fit in the socket's send buffer: one non-blocking send puts them out without an
// asynchronous operation and its trip through the scheduler. False when bytes are left (they
// stay in out_) or the send failed; write_out() then finishes the job or meets the error.
bool Connection::send_now() {
  boost::system::error_code ec;
  const std::size_t sent = socket_.write_some(asio::buffer(out_), ec);
  if (ec) return false;
  if (sent == out_.size()) return true;
  out_.erase(0, sent);
  return false;
}

asio::awaitable<bool> Connection::write_out() {
  auto [ec, written] =
      co_await asio::async_write(socket_, asio::buffer(out_), asio::as_tuple(asio::use_awaitable));
  (void)written;
  co_return !ec;
}

namespace {
// What the exception being handled says.
std::string failure_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

// Pulls a streamed body piece by piece; each piece is written before the next is asked for,
// and each write gets a fresh deadline (a slow client holds the producer, not the server).
asio::awaitable<bool> Connection::write_stream(const Response& response) {
  const Request& request = reader_.request();
  StreamFraming framing(request, response);
  const bool keepalive = response.stream_keepalive() && !response.stream_length();
  // What waits beside the producer ends with its await, however that ends.
  struct ProducerWait {
    Connection& connection;
    bool keepalive;
    ~ProducerWait() {
      if (keepalive) connection.stop_keepalive();
      connection.stop_watching_for_disconnect();
    }
  };
  for (;;) {
    std::optional<std::string> piece;
    // A stream with keep-alive pieces (an event stream) may never end by itself: at shutdown
    // it ends cleanly when it next waits for its producer, or at once if it waits already
    // (drain); its client reconnects elsewhere.
    bool ended_by_shutdown = keepalive && closing_;
    if (!ended_by_shutdown) {
      // The producer may wait a long while for its next piece (an upstream, a query): a client
      // that leaves meanwhile cancels it, as it would a handler.
      watch_for_disconnect();
      if (keepalive) start_keepalive(response, framing);
      const ProducerWait waiting{*this, keepalive};
      try {
        piece = co_await response.chunks()();
      } catch (...) {  // whatever it throws, as a handler's exception (not only std's)
        const core::CancelReason reason = request_cancel_.reason();
        if (!keepalive || reason != core::CancelReason::Shutdown || forced_) {
          // A producer stopped because the request was (client gone, timeout, shutdown) says
          // nothing new; one that failed by itself is logged.
          if (reason == core::CancelReason::None) log_stream_failure(request, failure_text());
          co_return false;  // the head is out: all that is left is to cut the body short
        }
        ended_by_shutdown = true;
      }
    }
    if (ended_by_shutdown) piece.reset();
    out_.clear();
    if (keepalive && keepalive_) out_.swap(keepalive_->unsent);  // the rest of one goes first
    if (!(piece ? framing.piece(out_, *piece) : framing.end(out_))) co_return false;
    // Nothing to write: an empty piece, or the end of a body not sent in chunks.
    if (out_.empty()) {
      if (!piece) co_return true;
      continue;
    }
    arm(request_timeout());
    if (!send_now() && !co_await write_out()) {
      request_cancel_.cancel(core::CancelReason::Disconnected);
      co_return false;
    }
    if (!piece) co_return true;
  }
}

void Connection::start_keepalive(const Response& response, StreamFraming& framing) {
  if (!keepalive_) keepalive_ = std::make_unique<KeepaliveState>(socket_.get_executor());
  keepalive_->response = &response;
  keepalive_->framing = &framing;
  keepalive_->timer.expires_after(response.stream_keepalive()->interval);
  keepalive_->timer.async_wait([self = shared_from_this(), generation = ++keepalive_->generation](
                                   boost::system::error_code ec) {
    if (!ec) self->send_keepalive(generation);
  });
}

void Connection::send_keepalive(std::uint64_t generation) {
  KeepaliveState& keepalive = *keepalive_;
  if (generation != keepalive.generation || !keepalive.response || !socket_.is_open()) return;
  // Written only as far as the socket takes it now (the rest waits for the next tick, or
  // goes before the stream's next piece); the deadline is renewed once a whole piece is out.
  if (keepalive.unsent.empty() &&
      !keepalive.framing->piece(keepalive.unsent, keepalive.response->stream_keepalive()->piece))
    return;
  boost::system::error_code ec;
  const std::size_t sent = socket_.write_some(asio::buffer(keepalive.unsent), ec);
  if (!ec) keepalive.unsent.erase(0, sent);
  if (!ec && keepalive.unsent.empty()) arm(request_timeout());  // a piece went out: time afresh
  start_keepalive(*keepalive.response, *keepalive.framing);
}

void Connection::stop_keepalive() {
  if (!keepalive_) return;
  ++keepalive_->generation;
  keepalive_->response = nullptr;
  keepalive_->framing = nullptr;
  keepalive_->timer.cancel();
}

asio::awaitable<void> Connection::run() {
  using State = RequestReader::State;
  for (;;) {
    phase_ = Phase::Idle;
    // A new connection waits for its first request as long as a started header may take: a
    // client that connects and sends nothing holds a connection no longer than a slow one.
    const bool header_due = request_number_ == 0 || reader_.has_buffered_input();
    arm(header_due ? limits_.header_timeout : limits_.idle_timeout);
    State state = reader_.parse();
    bool yielded = false;
    // The watchdog ends a request that does not arrive in time by cancelling the read; one it
    // found between two reads (a read done in the same turn, the yield below) ends here.
    while ((state == State::NeedMore || state == State::HeaderReady) && !read_timed_out_) {
      if (state == State::HeaderReady) {
        phase_ = Phase::Reading;
        arm(limits_.request_timeout);
        if (reader_.expects_continue()) {
          out_.assign(kContinue);
          if (!send_now() && !co_await write_out()) break;
        }
        state = reader_.parse();
        continue;
      }
      if (phase_ == Phase::Idle && request_number_ != 0 && !yielded &&
          set_.size() > kBusyThreadConnections) {
        // A busy thread: between requests, let the other ready connections go first. By the
        // time this one reads again its client has usually sent the next request, so Asio's
        // speculative read finds it instead of failing with EAGAIN and waiting for epoll
        // (at 256 connections, about 10% less CPU a request). With few connections the read
        // would fail all the same, and the detour costs 1.6k instructions: not taken.
        yielded = true;
        co_await asio::post(socket_.get_executor(), asio::use_awaitable);
        if (read_timed_out_) break;
      }
      if (closing_ && phase_ == Phase::Idle && !reader_.has_buffered_input() && !input_waiting())
        break;
      const auto space = reader_.read_space();
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(space.data(), space.size()),
                                                      asio::as_tuple(asio::use_awaitable));
      if (ec) {
        state = ec == asio::error::eof ? reader_.input_closed() : State::NeedMore;
        if (state == State::NeedMore) break;  // closed, reset or timed out
        continue;
      }
      if (phase_ == Phase::Idle) {
        phase_ = Phase::Reading;
        arm(limits_.header_timeout);
      }
      reader_.commit(n);
      state = reader_.parse();
    }
    const bool arrived = state != State::NeedMore && state != State::HeaderReady;
    if (read_timed_out_ && arrived) read_timed_out_ = false;  // just in time: it is served
    if (read_timed_out_) [[unlikely]] {
      out_.clear();
      write_read_error(out_, {408, "request_timeout", "the request did not arrive in time"});
      if (send_now() || co_await write_out()) co_await linger();
      break;
    }
    if (state == State::NeedMore || state == State::HeaderReady) break;
    if (state == State::Failed) {
      out_.clear();
      write_read_error(out_, reader_.error());
      bool written = send_now();
      if (!written) written = co_await write_out();
      if (written) co_await linger();  // the client may still send the rest of a refused body
      break;
    }

    phase_ = Phase::Handling;
    route_timeout_.reset();  // until a route with its own is chosen
    arm(limits_.request_timeout);
    cancelled_for_timeout_ = false;
    request_cancel_.begin();
    out_.clear();
    // Handlers that answer without waiting never need the watch: arm it only if this one is
    // still running once the I/O thread gets to the posted check.
    asio::post(socket_.get_executor(), [self = shared_from_this(), request = ++request_number_] {
      if (self->phase_ == Phase::Handling && self->request_number_ == request)
        self->watch_for_disconnect();
    });
    const bool streamed = reader_.request().body_streamed();
    if (streamed) [[unlikely]]
      body_.open();
    // The Ctx lives in this frame: no coroutine of its own between the connection and the app.
    Ctx ctx(app_, request_cancel_, &tasks_, streamed ? &body_ : nullptr);
    ctx.clock_ = this;
    std::optional<HandlingGuard> handling(std::in_place, handling_, ctx);
    const Response response = co_await app_.handle(reader_.request(), ctx);
    handling.reset();  // not past the handler: a streamed answer still stops
    stop_watching_for_disconnect();
    if (request_cancel_.reason() == core::CancelReason::Disconnected) {
      // The client closed, reset or half-closed: its answer (a 499 for the access log) and
      // any request it pipelined are not served.
      request_cancel_.end();
      break;
    }
    // A timeout cancelled the handler's operations; the answer must still go out.
    co_await asio::this_coro::reset_cancellation_state();
    if (response.status() == 101 && ctx.websocket_upgrade() != nullptr) [[unlikely]] {
      co_await serve_websocket(ctx, response);
      break;
    }
    // A body the handler left unread: dropped after the answer if little is left, else the
    // connection closes after the answer.
    using Rest = BodyStream::Rest;
    Rest rest = Rest::None;
    if (streamed) [[unlikely]] {
      // Cancelled: nothing more is read for this request.
      rest = request_cancel_.reason() != core::CancelReason::None ? Rest::Abandoned
                                                                  : body_.settle(kMaxDrainBytes);
    }
    const bool keep_alive =
        write_answer(out_, reader_.request(), response, closing_ || rest == Rest::Abandoned);
    phase_ = Phase::Writing;
    answer_sent_ = false;
    arm(request_timeout());  // the answer's write has the whole time, afresh
    bool written = send_now();
    if (!written) written = co_await write_out();
    bool cut_short = false;
    if (written && sends_stream(reader_.request(), response)) {
      written = co_await write_stream(response);
      cut_short = !written;
    }
    // The request is over once its answer is out: what its rest does next (a client that
    // closes instead of sending it) does not cancel its background tasks.
    answer_sent_ = written;
    request_cancel_.end();
    if (written && keep_alive && rest == Rest::Little) {
      arm(request_timeout());                        // the rest of the body has this long to come
      if (!co_await body_.drain()) written = false;  // it did not: the connection closes
    }
    if (cut_short) {
      // The head is out and the body ends early: an HTTP/1.0 body ends with the close, so
      // only a reset tells the client that it did not get all of it.
      reset_socket();
      break;
    }
    if (!written) break;
    if (!keep_alive) {
      co_await linger();  // a pipelined request, or the rest of an unread body, may follow
      break;
    }
    reader_.start_next();
    if (!reader_.has_buffered_input()) {
      reader_.shrink_if_idle();
      if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    }
  }
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  close_socket();
  timer_.cancel();
}

// Until its handler accepts or refuses, a WebSocket's request keeps its time (the route's
// request_timeout): a handler that does neither in time is cut. Then the session keeps its own
// (idle pings, the closing handshake).
void Connection::on_websocket_timer() {
  if (websocket_ == nullptr || websocket_->handshake_done()) return;
  if (Clock::now() < deadline_) return arm(deadline_ - Clock::now());
  request_cancel_.cancel(core::CancelReason::Timeout);
  cancel_signal_.emit(asio::cancellation_type::terminal);
  websocket_->cut();
}

asio::awaitable<void> Connection::serve_websocket(Ctx& ctx, Response handshake) {
  phase_ = Phase::Upgraded;
  if (forced_) {  // the shutdown's grace ended while the chain ran
    request_cancel_.end();
    co_return;
  }
  const bool early_data = reader_.has_buffered_input();
  const auto session = WebSocketSession::start(
      WebSocketTransport(std::move(socket_)), reader_.request(), std::move(handshake), ctx,
      [this](core::CancelReason reason, bool interrupt) {
        request_cancel_.cancel(reason);
        if (interrupt) cancel_signal_.emit(asio::cancellation_type::terminal);
      });
  websocket_ = session.get();
  // A client waits for the 101 before it sends frames (RFC 6455 §4.1).
  if (early_data)
    session->refuse_first(Response::error(
        400, "invalid_handshake", "data came after the WebSocket handshake before its answer"));
  if (closing_) session->going_away();  // the shutdown began while the chain ran
  try {
    co_await session->run();
  } catch (const std::exception&) {
    // Cancelled while refusing (the shutdown's grace is over): the socket is closed.
  }
  websocket_ = nullptr;
  request_cancel_.end();
}

void refuse_connection(tcp::socket socket) {
  std::string answer;  // built each time: its Date is now
  write_response(answer, Response::error(503, "overloaded", "the server has too many connections"),
                 {11, false, false});
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(answer), ec);  // best effort: never wait for this peer
  socket.shutdown(tcp::socket::shutdown_send, ec);
  // A request already received but unread would make the close send a reset, which can
  // destroy the 503 before the client reads it: drop what has arrived (without waiting).
  std::array<char, 4096> scratch;
  for (int reads = 0; reads < 16; ++reads) {
    if (socket.read_some(asio::buffer(scratch), ec) == 0 || ec) break;
  }
  socket.close(ec);
}

}  // namespace molt::web::detail
