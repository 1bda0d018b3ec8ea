// The connection's side of a streamed request body: reading it as the handler asks, the
// interim `100 Continue`, and the lingering close after an answer that left it unread. Apart
// from connection.cpp so that these coroutines do not change how the compiler treats run(),
// which every request goes through.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <string>

#include "connection.hpp"
#include "exchange.hpp"
#include "molt/web/app.hpp"

namespace molt::web::detail {

namespace asio = boost::asio;

asio::awaitable<void> Connection::SocketBody::send_continue() {
  Connection& c = connection_;
  c.out_.assign(kContinue);
  bool sent = c.send_now();
  if (!sent) sent = co_await c.write_out();
  c.out_.clear();
  if (!sent) throw boost::system::system_error(asio::error::broken_pipe);
}

void Connection::SocketBody::open() {
  begin();
  waited_ = {};
  received_ = 0;
  awaiting_ = false;
  late_ = false;
}

Connection::Clock::duration Connection::SocketBody::rate_allowance() const {
  using Seconds = std::chrono::duration<double>;
  const Limits& limits = connection_.limits_;
  const double earned = static_cast<double>(received_) / limits.min_body_rate;
  const double allowed =
      std::max(Seconds(limits.min_body_rate_grace).count(), earned) - Seconds(waited_).count();
  // At most a day for one wait (a nanosecond count of more could overflow).
  return std::chrono::duration_cast<Clock::duration>(Seconds(std::min(allowed, 86'400.0)));
}

asio::awaitable<bool> Connection::SocketBody::receive() {
  Connection& c = connection_;
  const auto space = c.reader_.body_read_space();
  const auto began = Clock::now();
  // A body that trickles in ends when it falls below the minimum rate, which may come
  // before request_timeout does.
  const auto request_deadline = c.deadline_;
  // Whether this wait ends at the minimum rate rather than at request_timeout.
  bool rate_bound = false;
  if (c.limits_.min_body_rate != 0 && !c.cancelled_for_timeout_) {
    const auto allowance = rate_allowance();
    rate_bound = began + allowance < c.deadline_;
    if (rate_bound) c.arm(allowance);
  }
  awaiting_ = true;
  boost::system::error_code ec;
  const std::size_t n = co_await c.socket_.async_read_some(
      asio::buffer(space.data(), space.size()), asio::redirect_error(asio::use_awaitable, ec));
  awaiting_ = false;
  const auto now = Clock::now();
  waited_ += now - began;
  received_ += n;
  if (rate_bound && !late_) c.arm(request_deadline - now);  // the request's own again
  if (ec == asio::error::eof) {
    c.request_cancel_.cancel(core::CancelReason::Disconnected);
    co_return false;
  }
  if (late_) {
    // The client's delay, not the handler's: a 408 (RFC 9110 §15.5.9), as for a body read
    // before the handler starts. Also when the read brought a piece in the very turn the
    // watchdog fired: the request is cancelled by then, and the piece is not wanted.
    throw HttpError(408, "request_timeout",
                    rate_bound ? "the request body came too slowly (under " +
                                     std::to_string(c.limits_.min_body_rate) + " bytes a second)"
                               : std::string("the request body did not arrive in time"));
  }
  if (ec) {
    // Aborted: the request was cancelled (its token says why). Anything else: the peer left.
    if (ec != asio::error::operation_aborted)
      c.request_cancel_.cancel(core::CancelReason::Disconnected);
    throw boost::system::system_error(ec);
  }
  c.reader_.commit(n);
  // Each piece that arrives gives the request its time afresh, as each piece written of a
  // streamed answer does: an upload of any size goes on while it keeps coming, and one that
  // stalls still ends at the timeout. Not once the timeout has cancelled the request: its
  // handler then has the short grace to answer, not a new full time.
  if (!c.cancelled_for_timeout_) c.arm(c.request_timeout());
  co_return true;
}

// The body is read: from now on the socket only tells of a client that leaves, so a handler
// still at work after it gets the same watch as one whose body came whole.
void Connection::SocketBody::on_end() {
  Connection& c = connection_;
  if (c.phase_ == Phase::Handling && !c.watching_) c.watch_for_disconnect();
}

// Stops sending, then reads and drops whatever the peer still sends, until it closes or
// kLingerTime is over.
asio::awaitable<void> Connection::linger() {
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  phase_ = Phase::Lingering;  // a shutdown need not wait for it
  arm(kLingerTime);           // the watchdog closes the socket then, which ends the read
  for (;;) {
    const auto space = reader_.scratch();
    boost::system::error_code ec;
    co_await socket_.async_read_some(asio::buffer(space.data(), space.size()),
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace molt::web::detail
