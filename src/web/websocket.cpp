#include "molt/web/websocket.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <deque>
#include <exception>

#include "exchange.hpp"
#include "molt/codec/decode_error.hpp"
#include "molt/codec/utf8.hpp"
#include "response_writer.hpp"
#include "websocket_session.hpp"

// Beast's closing of a WebSocket's TCP connection, for the sockets of molt::web: after its
// close frame the server stops sending and reads what the client still sends up to the
// client's end, then closes. Beast's own stops after one read (boost 1.81), so a client
// still sending a message too big got a reset that destroyed the 1009 before it was read.
// Found by Beast's stream through argument-dependent lookup (its customization point; only
// this file makes Beast streams of this socket type), and bounded in time: a client that
// never ends its side is closed after kTeardownTime.
namespace boost::asio {
template <typename TeardownHandler>
void async_teardown(beast::role_type role,
                    basic_stream_socket<generic::stream_protocol, any_io_executor>& socket,
                    TeardownHandler&& handler) {
  static constexpr auto kTeardownTime = std::chrono::seconds(5);  // as the default close_timeout
  struct State {
    explicit State(const any_io_executor& executor) : deadline(executor) {}
    steady_timer deadline;
    std::array<char, 4096> scratch;
    bool done = false;
  };
  auto state = std::make_shared<State>(socket.get_executor());
  state->deadline.expires_after(kTeardownTime);
  state->deadline.async_wait([state, &socket](boost::system::error_code ec) {
    boost::system::error_code ignored;
    if (!ec && !state->done) socket.close(ignored);  // the read below ends with an error
  });
  async_compose<TeardownHandler, void(boost::system::error_code)>(
      [&socket, role, state, started = false](auto& self, boost::system::error_code ec = {},
                                              std::size_t = 0) mutable {
        if (!started) {
          started = true;
          if (role == beast::role_type::server) socket.shutdown(socket_base::shutdown_send, ec);
        }
        if (!ec) return socket.async_read_some(buffer(state->scratch), std::move(self));
        state->done = true;
        state->deadline.cancel();
        boost::system::error_code ignored;
        if (role == beast::role_type::client) socket.shutdown(socket_base::shutdown_send, ignored);
        socket.close(ignored);
        self.complete(ec == error::eof ? boost::system::error_code() : ec);
      },
      handler, socket);
}
}  // namespace boost::asio

namespace molt::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ws = boost::beast::websocket;

WebSocketClosed::WebSocketClosed(std::uint16_t code, std::string reason)
    : std::runtime_error("the WebSocket closed with " + std::to_string(code) +
                         (reason.empty() ? std::string() : ": " + reason)),
      code_(code),
      reason_(std::move(reason)) {}

namespace detail {

struct UpgradeAccess {
  static void set(Ctx& ctx, WebSocketUpgrade upgrade) {
    ctx.upgrade_ = std::make_unique<WebSocketUpgrade>(std::move(upgrade));
  }
};

namespace {

// A close reason fits in a control frame: 125 bytes with the code's two (RFC 6455 §5.5).
constexpr std::size_t kMaxCloseReason = 123;

// `reason` made UTF-8 (a message may quote the client's bytes) and cut to at most
// kMaxCloseReason bytes, not inside a character.
std::string close_reason_text(std::string_view reason) {
  std::string text = codec::replace_invalid_utf8(reason);
  text.resize(codec::utf8_cut(text, kMaxCloseReason));
  return text;
}

// The codes an endpoint may send (RFC 6455 §7.4.1-2): 1004-1006 and 1015 are reserved, 1012-1014
// are for the registry's servers, and 2000-2999 for extensions.
bool sendable_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

// Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 §4.1), so 22 characters and "==".
bool valid_key(std::string_view key) {
  key = trim_ows(key);
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (const char c : key.substr(0, 22)) {
    const bool base64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!base64) return false;
  }
  // The last character before the padding carries 2 bits: its low 4 are zero.
  return std::string_view("AQgw").find(key[21]) != std::string_view::npos;
}

// The session's innermost part: the route's handler (Session::serve).
asio::awaitable<void> serve(WebSocket& socket, const WebSocketHandler& handler);

Response upgrade_required(std::string_view message) {
  Response answer = Response::error(426, "upgrade_required", message);
  answer.set_header("Upgrade", "websocket");
  return answer;
}

// The route's answer to its request: 101 with the upgrade set, or why not.
Response handshake_answer(const Request& request, Ctx& ctx,
                          const std::shared_ptr<const WebSocketHandler>& handler,
                          const WebSocketOptions& options) {
  std::string storage;
  const auto upgrade = request.header_list("Upgrade", storage);
  const bool upgrading = upgrade && list_contains(*upgrade, "websocket");
  if (request.method() != "GET" || !upgrading)
    return upgrade_required(
        "this is a WebSocket endpoint: connect with a WebSocket client (a GET with "
        "Upgrade: websocket)");
  const auto connection = request.header_list("Connection", storage);
  if (request.version() < 11 || !connection || !list_contains(*connection, "upgrade"))
    return Response::error(400, "invalid_handshake",
                           "a WebSocket handshake is an HTTP/1.1 GET with Connection: Upgrade");
  if (request.header("Sec-WebSocket-Version").value_or("") != "13") {
    Response answer = upgrade_required("this server speaks WebSocket version 13");
    answer.set_header("Sec-WebSocket-Version", "13");
    return answer;
  }
  const auto lines = [&request](std::string_view name) {
    return std::count_if(request.headers().begin(), request.headers().end(),
                         [name](const Header& header) { return iequals(header.name, name); });
  };
  // Each at most once (RFC 6455 §11.3.1, §11.3.5): two keys are no key.
  const auto key = request.header("Sec-WebSocket-Key");
  if (!key || !valid_key(*key) || lines("Sec-WebSocket-Key") > 1 ||
      lines("Sec-WebSocket-Version") > 1)
    return Response::error(400, "invalid_handshake",
                           "a handshake has one Sec-WebSocket-Key, 16 bytes in base64, and one "
                           "Sec-WebSocket-Version (RFC 6455 section 4.1)");
  if (!request.body().empty() || request.body_streamed())
    return Response::error(400, "invalid_handshake", "a WebSocket handshake has no body");
  detail::UpgradeAccess::set(
      ctx, {[handler](WebSocket& socket) { return serve(socket, *handler); }, options});
  return Response(101);
}

// What a failed read of the stream means for the socket: the code it closed with.
std::uint16_t code_of_read_failure(const boost::system::error_code& ec) {
  if (ec == ws::error::message_too_big) return close_code::too_big;
  if (ec == ws::error::bad_frame_payload) return close_code::invalid_payload;
  if (ec == ws::condition::protocol_violation) return close_code::protocol_error;
  return close_code::abnormal;
}

std::string reason_of_read_failure(const boost::system::error_code& ec) {
  if (ec == ws::error::message_too_big) return "the message is larger than this endpoint takes";
  if (ec == ws::error::bad_frame_payload) return "a text message that is not UTF-8";
  if (ec == beast::error::timeout) return "the client stopped answering";
  if (ec == ws::condition::protocol_violation) return "protocol error: " + ec.message();
  return "the connection was lost";
}

class Session final : public WebSocketSession, public std::enable_shared_from_this<Session> {
 public:
  Session(WebSocketTransport socket, const Request& request, Response handshake, Ctx& ctx,
          Cancel cancel)
      : stream_(std::move(socket)),
        request_(request),
        handshake_(std::move(handshake)),
        ctx_(ctx),
        upgrade_(*ctx.websocket_upgrade()),
        cancel_(std::move(cancel)),
        inbox_changed_(stream_.get_executor(), Timer::time_point::max()),
        inbox_room_(stream_.get_executor(), Timer::time_point::max()),
        writer_free_(stream_.get_executor(), Timer::time_point::max()),
        reader_ended_(stream_.get_executor(), Timer::time_point::max()),
        close_deadline_(stream_.get_executor()) {}

  asio::awaitable<void> run() override;
  void going_away() override;
  void cut() override;
  void refuse_first(Response answer) override { refuse_first_ = std::move(answer); }
  bool handshake_done() const override { return state_ != State::Handshake; }
  // The route's handler, then the refusal or the close its end calls for: the innermost part
  // of the session, which middleware may wrap (WebSocketUpgrade::session).
  asio::awaitable<void> serve(const WebSocketHandler& handler);
  static Session& of(WebSocket& socket) {
    return static_cast<Session&>(WebSocketSession::of(socket));
  }

  const Request& request() const { return request_; }
  bool accepted() const { return state_ == State::Open; }
  const std::optional<WebSocketClosed>& close_status() const { return closed_; }
  std::optional<int> refusal_status() const { return refusal_status_; }
  asio::awaitable<void> accept(std::string_view subprotocol);
  asio::awaitable<WebSocketMessage> receive();
  asio::awaitable<void> send(std::string_view data, bool binary);
  asio::awaitable<void> close(std::uint16_t code, std::string_view reason);

 private:
  using Timer = asio::steady_timer;
  // Handshake: the handler has not accepted yet. Accepting: the 101 is being written.
  // Refused: it will not (an HTTP answer went out). Open: messages flow, though a close may be
  // under way (closed_ then says how).
  enum class State { Handshake, Accepting, Refused, Open };

  // The timers below are signals: they never expire; cancel() wakes whoever waits on one.
  static asio::awaitable<void> wait(Timer& signal) {
    co_await signal.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  static void wake(Timer& signal) { signal.cancel(); }

  asio::awaitable<void> read_messages();
  asio::awaitable<void> read_until_closed();
  // The 1001 of a shutdown, once the socket is open.
  void going_away_now();
  void note_closed(std::uint16_t code, std::string reason) {
    if (!closed_) closed_.emplace(code, std::move(reason));
  }
  WebSocketClosed closed_error() const {
    return closed_ ? *closed_ : WebSocketClosed(close_code::abnormal, "the connection was lost");
  }
  // A wait of the handler's was cancelled: the socket's end or the server's says how; any
  // other cancellation (the other side of the caller's own `||`) goes on as it came.
  [[noreturn]] void rethrow_interrupted() const {
    if (closed_) throw *closed_;
    if (going_away_) throw WebSocketClosed(close_code::going_away, "the server is shutting down");
    throw;
  }
  // The socket has ended under a running handler: its token is cancelled, and what it awaits
  // (a Topic's next message, a timer, the other side of an `||`) stops, as an HTTP handler's
  // does when its client goes. Not while messages still wait for it: the receive that finds
  // them all taken does it.
  void interrupt_handler() {
    interrupt_pending_ = false;
    cancel_(close_sent_ ? core::CancelReason::Cancelled : core::CancelReason::Disconnected,
            handler_running_);
  }
  // The handler's end, as the close it sends: none (already closed), or a code and reason.
  std::optional<std::pair<std::uint16_t, std::string>> closing_for(std::exception_ptr failure);
  asio::awaitable<void> refuse(Response answer);
  void close_socket() {
    boost::system::error_code ignored;
    stream_.next_layer().close(ignored);
  }

  ws::stream<WebSocketTransport> stream_;
  const Request& request_;
  Response handshake_;
  Ctx& ctx_;
  WebSocketUpgrade& upgrade_;
  Cancel cancel_;
  State state_ = State::Handshake;
  std::optional<WebSocketClosed> closed_;
  std::optional<int> refusal_status_;
  std::optional<Response> refuse_first_;
  std::deque<WebSocketMessage> inbox_;
  bool receiving_ = false;
  bool writing_ = false;
  bool close_sent_ = false;
  bool reader_done_ = true;  // until accept() starts the reader
  bool discarding_ = false;  // the handler has ended: what still comes is dropped
  bool going_away_ = false;  // the server shuts down
  bool handler_running_ = false;
  bool interrupt_pending_ = false;  // the socket ended with messages still queued
  Timer inbox_changed_;
  Timer inbox_room_;
  Timer writer_free_;
  Timer reader_ended_;
  Timer close_deadline_;
};

asio::awaitable<void> Session::accept(std::string_view subprotocol) {
  if (state_ != State::Handshake)
    throw std::logic_error(state_ == State::Refused ? "WebSocket::accept: the socket was refused"
                                                    : "WebSocket::accept: accepted already");
  if (going_away_) {
    co_await refuse(Response::error(503, "shutting_down", "the server is shutting down"));
    throw WebSocketClosed(close_code::going_away, "the server is shutting down");
  }
  std::string chosen(subprotocol);
  if (!chosen.empty()) {
    const auto offered = WebSocket(*this).subprotocols();
    if (std::find(offered.begin(), offered.end(), subprotocol) == offered.end())
      throw std::invalid_argument("WebSocket::accept: the client did not offer the subprotocol '" +
                                  chosen + "'");
  }
  const WebSocketOptions& options = upgrade_.options;
  ws::stream_base::timeout timeout{};
  timeout.handshake_timeout = options.close_timeout;
  timeout.idle_timeout =
      options.idle_timeout.count() > 0
          ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.idle_timeout)
          : ws::stream_base::none();
  timeout.keep_alive_pings = options.idle_timeout.count() > 0;
  stream_.set_option(timeout);
  stream_.read_message_max(options.max_message_bytes);
  if (options.compress) {
    ws::permessage_deflate deflate;
    deflate.server_enable = true;
    stream_.set_option(deflate);
  }
  stream_.set_option(ws::stream_base::decorator([this, chosen](ws::response_type& answer) {
    // Beast names itself and its version unless a Server field is set: the product alone,
    // no version banner (the HTTP answers have no Server field at all).
    answer.set(http::field::server, "molt");
    for (const auto& [name, value] : handshake_.headers()) answer.insert(name, value);
    if (!chosen.empty()) answer.set(http::field::sec_websocket_protocol, chosen);
  }));
  http::request<http::empty_body> upgrade_request;
  upgrade_request.method_string(request_.method());
  upgrade_request.target(request_.target());
  upgrade_request.version(request_.version());
  // Several lines of one field are one list (RFC 9110 §5.3), as the chain read them; Beast
  // reads a field's first line only.
  for (const Header& header : request_.headers()) {
    if (const auto line = upgrade_request.find(header.name); line != upgrade_request.end())
      upgrade_request.set(header.name,
                          std::string(line->value()) + ", " + std::string(header.value));
    else
      upgrade_request.insert(header.name, header.value);
  }
  state_ = State::Accepting;
  auto [ec] = co_await stream_.async_accept(upgrade_request, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    state_ = State::Refused;
    if (ec == ws::condition::handshake_failed) refusal_status_ = 400;  // Beast's own answer
    note_closed(close_code::abnormal, "the handshake failed: " + ec.message());
    cancel_(core::CancelReason::Disconnected, false);
    throw closed_error();
  }
  state_ = State::Open;
  reader_done_ = false;
  asio::co_spawn(
      stream_.get_executor(), [self = shared_from_this()] { return self->read_messages(); },
      asio::detached);
  if (going_away_) going_away_now();  // the shutdown began while the 101 was written
}

// Reads ahead of the handler, so that pings are answered and a close or a lost client is seen
// while the handler only sends. At most receive_queue messages wait; then the socket is not
// read until the handler takes one (the client's TCP window fills: backpressure).
asio::awaitable<void> Session::read_messages() {
  try {
    co_await read_until_closed();
  } catch (const std::exception& e) {  // out of memory for a message: the socket ends
    note_closed(close_code::internal_error, "the server failed");
    log_request_failure(request_, " (WebSocket) read failed", e.what());
    close_socket();
  }
  reader_done_ = true;
  close_deadline_.cancel();
  // The token says so (Disconnected: the client closed or vanished; Cancelled: the server's
  // close), and the handler's waits end, once it has taken what came before the end.
  if (inbox_.empty() || discarding_)
    interrupt_handler();
  else
    interrupt_pending_ = true;
  wake(inbox_changed_);
  wake(reader_ended_);
}

asio::awaitable<void> Session::read_until_closed() {
  for (;;) {
    beast::flat_buffer buffer;
    auto [ec, size] = co_await stream_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    (void)size;
    if (ec) {
      if (ec == ws::error::closed) {
        const ws::close_reason& reason = stream_.reason();
        const std::uint16_t code =
            reason.code == ws::close_code::none ? close_code::no_status : reason.code;
        note_closed(code, std::string(reason.reason.data(), reason.reason.size()));
      } else {
        note_closed(code_of_read_failure(ec), reason_of_read_failure(ec));
      }
      co_return;
    }
    if (discarding_) continue;
    std::string data = beast::buffers_to_string(buffer.data());
    const bool text = stream_.got_text();
    // Beast lets a text message whose last frame is empty through unchecked.
    if (text && !codec::is_valid_utf8(data)) {
      discarding_ = true;
      asio::co_spawn(
          stream_.get_executor(),
          [self = shared_from_this()] {
            return self->close(close_code::invalid_payload, "a text message that is not UTF-8");
          },
          asio::detached);
      continue;  // the reads go on, to the client's answer to the close
    }
    inbox_.push_back({std::move(data), !text});
    wake(inbox_changed_);
    // A full queue stops the reads, and with them the pongs and the close that would come
    // behind the messages: a handler that leaves them untaken for the idle timeout loses the
    // socket (as uvicorn's does), or the client could never leave.
    while (inbox_.size() >= std::max<std::size_t>(upgrade_.options.receive_queue, 1) &&
           !discarding_)
      co_await wait(inbox_room_);
  }
}

asio::awaitable<WebSocketMessage> Session::receive() {
  if (state_ != State::Open) throw std::logic_error("WebSocket::receive: accept() first");
  if (receiving_)
    throw std::logic_error("WebSocket::receive: another receive is waiting on this socket");
  receiving_ = true;
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{receiving_};
  try {
    while (inbox_.empty() && !reader_done_) co_await wait(inbox_changed_);
  } catch (const boost::system::system_error&) {
    rethrow_interrupted();
  }
  if (inbox_.empty()) {
    // The last message before the end is taken: now the handler's other waits end too, once
    // this receive's exception has reached it.
    if (interrupt_pending_)
      asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->interrupt_pending_) self->interrupt_handler();
      });
    throw closed_error();
  }
  WebSocketMessage message = std::move(inbox_.front());
  inbox_.pop_front();
  wake(inbox_room_);
  co_return message;
}

asio::awaitable<void> Session::send(std::string_view data, bool binary) {
  if (state_ != State::Open) throw std::logic_error("WebSocket::send: accept() first");
  if (!binary && !codec::is_valid_utf8(data))
    throw std::invalid_argument(
        "WebSocket::send_text: the text is not UTF-8 (send_bytes sends binary data)");
  try {
    while (writing_ && !closed_) co_await wait(writer_free_);
  } catch (const boost::system::system_error&) {
    rethrow_interrupted();
  }
  if (closed_) throw closed_error();
  writing_ = true;
  struct Done {
    Session& session;
    ~Done() {
      session.writing_ = false;
      wake(session.writer_free_);
    }
  } done{*this};
  stream_.text(!binary);
  boost::system::error_code ec;
  try {
    auto [written, size] =
        co_await stream_.async_write(asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    ec = written;
    (void)size;
  } catch (const boost::system::system_error&) {
    rethrow_interrupted();
  }
  if (ec) {
    note_closed(close_code::abnormal, "the connection was lost");
    throw closed_error();
  }
}

asio::awaitable<void> Session::close(std::uint16_t code, std::string_view reason) {
  if (!sendable_close_code(code))
    throw std::invalid_argument("WebSocket::close: " + std::to_string(code) +
                                " is not a close code to send (1000-1003, 1007-1011, 3000-4999)");
  if (state_ == State::Handshake) {
    co_await refuse(Response::error(403, "websocket_refused", "the server refused the WebSocket"));
    co_return;
  }
  if (state_ == State::Accepting)
    throw std::logic_error("WebSocket::close: accept() has not finished (await it first)");
  if (state_ != State::Open || close_sent_ || reader_done_) co_return;
  close_sent_ = true;
  std::string text = close_reason_text(reason);
  note_closed(code, text);
  wake(writer_free_);  // queued sends fail now
  // The client's answer ends the reader; one that never answers is cut off.
  close_deadline_.expires_after(upgrade_.options.close_timeout);
  close_deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->reader_done_) self->close_socket();
  });
  ws::close_reason frame(code);
  frame.reason = text;
  auto [ec] = co_await stream_.async_close(frame, asio::as_tuple(asio::use_awaitable));
  (void)ec;  // a socket already lost is closed too
}

// The handler will not accept: its answer goes out as an HTTP answer, and the connection ends.
asio::awaitable<void> Session::refuse(Response answer) {
  state_ = State::Refused;
  refusal_status_ = answer.status();
  std::string out;
  write_response(out, answer, {11, false, false});
  auto& socket = stream_.next_layer();
  co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  boost::system::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_send, ignored);
  close_socket();
}

std::optional<std::pair<std::uint16_t, std::string>> Session::closing_for(
    std::exception_ptr failure) {
  if (!failure) return std::pair{close_code::normal, std::string()};
  try {
    std::rethrow_exception(failure);
  } catch (const WebSocketClosed& e) {
    // The socket's own end, let through; one the handler made up closes with its code.
    if (sendable_close_code(e.code())) return std::pair{e.code(), e.reason()};
    return std::nullopt;
  } catch (const codec::DecodeError& e) {
    return std::pair{close_code::invalid_payload, e.message()};
  } catch (const HttpError& e) {
    if (e.status() >= 400 && e.status() <= 499)
      return std::pair{close_code::policy_violation, e.message()};
    log_request_failure(request_, " (WebSocket) failed", e.what());
  } catch (const std::exception& e) {
    if (!ctx_.cancelled()) log_request_failure(request_, " (WebSocket) failed", e.what());
  } catch (...) {
    log_request_failure(request_, " (WebSocket) failed", "unknown exception");
  }
  if (going_away_)
    return std::pair{close_code::going_away, std::string("the server is shutting down")};
  return std::pair{close_code::internal_error, std::string("the server failed")};
}

asio::awaitable<void> Session::serve(const WebSocketHandler& handler) {
  std::exception_ptr failure;
  if (refuse_first_) {
    co_await refuse(std::move(*refuse_first_));
    co_return;
  }
  WebSocket socket(*this);
  handler_running_ = true;
  try {
    co_await handler(socket, ctx_);
  } catch (...) {
    failure = std::current_exception();
  }
  handler_running_ = false;
  // The handler may have been cancelled mid-operation; what follows must still run.
  co_await asio::this_coro::reset_cancellation_state();
  if (state_ == State::Handshake) {
    // Built before the co_await: GCC 12 miscompiles a conditional inside a co_await's operand.
    Response refusal =
        failure ? error_answer(failure, request_, ctx_)
                : Response::error(403, "websocket_refused", "the server refused the WebSocket");
    co_await refuse(std::move(refusal));
    co_return;
  }
  if (state_ == State::Refused) co_return;
  if (const auto closing = closing_for(failure)) {
    try {
      co_await close(closing->first, closing->second);
    } catch (const boost::system::system_error&) {
      close_socket();  // cancelled: the shutdown's grace is over
    }
  }
}

asio::awaitable<void> Session::run() {
  const auto keep = shared_from_this();
  WebSocket socket(*this);
  try {
    co_await upgrade_.session(socket);
  } catch (const std::exception& e) {
    // serve() answers for the handler: this came from a middleware's wrapper.
    log_request_failure(request_, " (WebSocket) failed", e.what());
  } catch (...) {
    log_request_failure(request_, " (WebSocket) failed", "unknown exception");
  }
  co_await asio::this_coro::reset_cancellation_state();
  if (state_ == State::Handshake) {  // a wrapper that never called the session
    co_await refuse(Response::error(403, "websocket_refused", "the server refused the WebSocket"));
    co_return;
  }
  if (state_ == State::Refused) co_return;
  if (!close_sent_ && !reader_done_) {
    try {
      co_await close(close_code::internal_error, "the server failed");
    } catch (const boost::system::system_error&) {
      close_socket();
    }
  }
  discarding_ = true;
  inbox_.clear();
  wake(inbox_room_);
  // The reader holds the session and calls back into the connection: it ends first, whatever
  // cancels this coroutine meanwhile.
  while (!reader_done_) {
    bool interrupted = false;
    try {
      co_await wait(reader_ended_);
    } catch (const boost::system::system_error&) {
      interrupted = true;
    }
    if (interrupted) {
      close_socket();
      co_await asio::this_coro::reset_cancellation_state();
    }
  }
  // A receive posted the interrupt that was due once its messages were taken: it is given
  // now, while the connection that `cancel_` calls into is alive. Left posted, it would run
  // after this session's owner has gone.
  if (interrupt_pending_) interrupt_handler();
  close_socket();
}

void Session::going_away() {
  if (going_away_) return;
  going_away_ = true;
  cancel_(core::CancelReason::Shutdown, false);  // the close below interrupts, once it is done
  going_away_now();
}

void Session::going_away_now() {
  if (state_ != State::Open || close_sent_ || reader_done_) return;
  asio::co_spawn(
      stream_.get_executor(),
      [self = shared_from_this()] {
        return self->close(close_code::going_away, "the server is shutting down");
      },
      asio::detached);
}

void Session::cut() {
  going_away_ = true;
  cancel_(core::CancelReason::Shutdown, false);  // the connection interrupts the handler itself
  note_closed(close_code::going_away, "the server is shutting down");
  close_socket();
}

Session& impl(WebSocketSession* session) {
  return static_cast<Session&>(*session);
}

asio::awaitable<void> serve(WebSocket& socket, const WebSocketHandler& handler) {
  return Session::of(socket).serve(handler);
}

}  // namespace

std::shared_ptr<WebSocketSession> WebSocketSession::start(WebSocketTransport socket,
                                                          const Request& request,
                                                          Response handshake, Ctx& ctx,
                                                          Cancel cancel) {
  return std::make_shared<Session>(std::move(socket), request, std::move(handshake), ctx,
                                   std::move(cancel));
}

Handler websocket_route(WebSocketHandler handler, WebSocketOptions options) {
  if (!handler) return {};  // add_route says so, naming the route
  auto shared = std::make_shared<const WebSocketHandler>(std::move(handler));
  return answering_at_once([shared, options](const Request& request, Ctx& ctx) {
    return handshake_answer(request, ctx, shared, options);
  });
}

}  // namespace detail

const Request& WebSocket::request() const {
  return detail::impl(session_).request();
}

std::vector<std::string_view> WebSocket::subprotocols() const {
  std::vector<std::string_view> out;
  for (const Header& header : request().headers()) {
    if (!iequals(header.name, "Sec-WebSocket-Protocol")) continue;
    std::string_view list = header.value;
    while (!list.empty())
      if (const std::string_view token = next_list_element(list); !token.empty())
        out.push_back(token);
  }
  return out;
}

asio::awaitable<void> WebSocket::accept(std::string_view subprotocol) {
  return detail::impl(session_).accept(subprotocol);
}

bool WebSocket::accepted() const {
  return detail::impl(session_).accepted();
}

asio::awaitable<WebSocketMessage> WebSocket::receive() {
  return detail::impl(session_).receive();
}

asio::awaitable<std::string> WebSocket::receive_kind(bool binary) {
  WebSocketMessage message = co_await receive();
  if (message.binary != binary) {
    const std::string reason = binary ? "expected a binary message" : "expected a text message";
    co_await close(close_code::unsupported_data, reason);
    throw WebSocketClosed(close_code::unsupported_data, reason);
  }
  co_return std::move(message.data);
}

asio::awaitable<std::string> WebSocket::receive_text() {
  return receive_kind(false);
}

asio::awaitable<std::string> WebSocket::receive_bytes() {
  return receive_kind(true);
}

asio::awaitable<void> WebSocket::send_text(std::string_view text) {
  return detail::impl(session_).send(text, false);
}

asio::awaitable<void> WebSocket::send_bytes(std::string_view bytes) {
  return detail::impl(session_).send(bytes, true);
}

asio::awaitable<void> WebSocket::send_owned(std::string data, bool binary) {
  co_await detail::impl(session_).send(data, binary);
}

asio::awaitable<void> WebSocket::close(std::uint16_t code, std::string_view reason) {
  return detail::impl(session_).close(code, reason);
}

std::optional<WebSocketClosed> WebSocket::close_status() const {
  return detail::impl(session_).close_status();
}

std::optional<int> WebSocket::refusal_status() const {
  return detail::impl(session_).refusal_status();
}

}  // namespace molt::web
