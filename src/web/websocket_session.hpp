// A connection upgraded by its request's 101: the WebSocket session behind a route's handler,
// shared by the socket server and the TestClient (websocket.cpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <functional>
#include <memory>

#include "molt/core/cancel.hpp"
#include "molt/web/app.hpp"
#include "molt/web/websocket.hpp"

namespace molt::web::detail {

// Any stream socket: TCP from the server, a socket pair from the TestClient.
using WebSocketTransport = boost::asio::generic::stream_protocol::socket;

class WebSocketSession {
 public:
  // `request` and `ctx` outlive the session; `handshake` is the chain's 101, whose headers go
  // into the handshake's answer. `cancel` cancels the request's token (ctx.token()); with
  // `interrupt`, also what the handler awaits, as a connection does when an HTTP client
  // leaves: the socket has closed under a running handler.
  using Cancel = std::function<void(core::CancelReason reason, bool interrupt)>;
  static std::shared_ptr<WebSocketSession> start(WebSocketTransport socket, const Request& request,
                                                 Response handshake, Ctx& ctx, Cancel cancel);
  virtual ~WebSocketSession() = default;
  // Runs the route's session; returns once it has ended and the socket is closed.
  virtual boost::asio::awaitable<void> run() = 0;
  // Graceful shutdown: the handler's token is cancelled and the client told 1001.
  virtual void going_away() = 0;
  // The shutdown's grace is over (or the handshake's time): the socket closes now.
  virtual void cut() = 0;
  // The handler has accepted the socket or refused it.
  virtual bool handshake_done() const = 0;
  // Before run(): the request cannot upgrade after all; run() answers this instead of running
  // the handler (the access log still sees the session, with this status).
  virtual void refuse_first(Response answer) = 0;

 protected:
  static WebSocketSession& of(WebSocket& socket) { return *socket.session_; }
};

}  // namespace molt::web::detail
