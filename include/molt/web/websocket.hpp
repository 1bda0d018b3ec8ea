// WebSockets (RFC 6455): an endpoint the client upgrades to, then messages both ways until
// either side closes. As FastAPI's:
//
//   app.websocket("/ws/echo", [](WebSocket& ws, Ctx& ctx) -> awaitable<void> {
//     co_await ws.accept();
//     for (;;) {
//       std::string text = co_await ws.receive_text();   // WebSocketClosed when the client goes
//       co_await ws.send_text("echo: " + text);
//     }
//   });
//
// The upgrade request goes through the middleware chain as any request does: a middleware
// may refuse it (its answer goes out instead of the 101) or add headers to the 101. The
// handler runs after the chain, once per socket, on the connection's I/O thread; the
// WebSocket is used from that thread only. Messages are read ahead into a small queue
// (WebSocketOptions::receive_queue), so pings are answered and a client that leaves is noticed
// (ctx.cancelled(), reason Disconnected) even while the handler only sends.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "molt/codec/json.hpp"
#include "molt/web/app.hpp"

namespace molt::web {

namespace detail {
class WebSocketSession;
}

// One message as it came: text (checked to be UTF-8) or binary.
struct WebSocketMessage {
  std::string data;
  bool binary = false;
};

// Close codes of RFC 6455 §7.4.1 that the server sends or reports.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;  // the server shuts down
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;  // text where bytes were expected, ...
inline constexpr std::uint16_t no_status = 1005;         // a close frame without a code
inline constexpr std::uint16_t abnormal = 1006;          // the connection was lost, no close
inline constexpr std::uint16_t invalid_payload = 1007;   // text not UTF-8, JSON that does not fit
inline constexpr std::uint16_t policy_violation = 1008;  // an HttpError (4xx) after accept
inline constexpr std::uint16_t too_big = 1009;           // past WebSocketOptions::max_message_bytes
inline constexpr std::uint16_t internal_error = 1011;    // the handler failed
}  // namespace close_code

// The socket is closed: by the client (its code and reason), by the server (its close(), a
// limit, shutdown with 1001), or lost without a close (1006). Thrown by receive and send, as
// Starlette's WebSocketDisconnect; a handler that lets it go ends quietly.
class WebSocketClosed : public std::runtime_error {
 public:
  WebSocketClosed(std::uint16_t code, std::string reason);
  std::uint16_t code() const { return code_; }
  const std::string& reason() const { return reason_; }

 private:
  std::uint16_t code_;
  std::string reason_;
};

class WebSocket {
 public:
  explicit WebSocket(detail::WebSocketSession& session) : session_(&session) {}

  // The upgrade request (its path parameters are in the Ctx, as for any route).
  const Request& request() const;
  // The subprotocols the client offers (Sec-WebSocket-Protocol), in its order of preference.
  std::vector<std::string_view> subprotocols() const;

  // Completes the handshake: the 101 goes out with the middleware's headers and, if given, the
  // chosen subprotocol (one the client offered; another is std::invalid_argument). A handler
  // that ends without accepting refuses the socket: 403, or its HttpError's status and
  // message. Once the server shuts down, the refusal is a 503.
  boost::asio::awaitable<void> accept(std::string_view subprotocol = {});
  bool accepted() const;

  // The next message. One receive at a time (a second one waiting at once is
  // std::logic_error); WebSocketClosed once the socket is closed and the messages that came
  // before the close are all taken.
  boost::asio::awaitable<WebSocketMessage> receive();
  // A text message; a binary one closes the socket with 1003 and throws WebSocketClosed.
  boost::asio::awaitable<std::string> receive_text();
  // A binary message; a text one closes the socket with 1003 and throws WebSocketClosed.
  boost::asio::awaitable<std::string> receive_bytes();
  // A message (text or binary) read as JSON into T. When it does not fit, codec::DecodeError
  // naming the field ("message.name"): the socket stays open, so the handler may answer and go
  // on; uncaught, it closes the socket with 1007 and its message.
  template <typename T = boost::json::value>
  boost::asio::awaitable<T> receive_json() {
    const WebSocketMessage message = co_await receive();
    co_return codec::decode_json<T>(message.data, "message");
  }

  // Sends are queued in order: tasks of one handler may send at once. Text must be UTF-8
  // (std::invalid_argument otherwise: no client could read it).
  boost::asio::awaitable<void> send_text(std::string_view text);
  boost::asio::awaitable<void> send_bytes(std::string_view bytes);
  // `value` as JSON text (codec::to_json: a described struct, a map, boost::json::value),
  // written before this returns: not a coroutine, so a temporary `send_json(Move{...})` is
  // never held across a suspension (GCC 12 destroys such a temporary twice).
  template <typename T>
  boost::asio::awaitable<void> send_json(const T& value) {
    return send_owned(codec::to_json(value), false);
  }

  // Starts the closing handshake with `code` (1000, 1001, 1003, 1007-1011, or 3000-4999 for the
  // application's own; another is std::invalid_argument) and `reason` (at most 123 bytes of
  // UTF-8, cut at a character). Messages still queued can be received; then WebSocketClosed.
  // Before accept(), refuses the socket with 403. A second close does nothing.
  boost::asio::awaitable<void> close(std::uint16_t code = close_code::normal,
                                     std::string_view reason = {});
  // How the socket closed, once it has (a close the server sent counts from its sending).
  std::optional<WebSocketClosed> close_status() const;
  // The status of the HTTP answer that refused the socket, once one has.
  std::optional<int> refusal_status() const;

 private:
  friend class detail::WebSocketSession;
  boost::asio::awaitable<void> send_owned(std::string data, bool binary);
  boost::asio::awaitable<std::string> receive_kind(bool binary);
  detail::WebSocketSession* session_;
};

}  // namespace molt::web
