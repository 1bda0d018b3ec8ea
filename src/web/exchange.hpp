// Pieces of one request/answer exchange, shared by the socket connection and the TestClient.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include "body_stream.hpp"
#include "molt/core/cancel.hpp"
#include "molt/web/app.hpp"
#include "request_reader.hpp"
#include "task_group.hpp"

namespace molt::web::detail {

// Appends the serialized answer to `out`; returns whether the connection may carry another
// request (decided now, after the handler: a shutdown may have begun meanwhile).
bool write_answer(std::string& out, const Request& request, const Response& response, bool closing);

// Whether the answer has a streamed body to send after its head.
bool sends_stream(const Request& request, const Response& response);
// How the pieces of a streamed body go out: in chunks (HTTP/1.1), as they are until the
// connection closes (HTTP/1.0), or as they are within a declared length.
class StreamFraming {
 public:
  StreamFraming(const Request& request, const Response& response);
  // Appends `piece`, framed. False, with nothing appended and the failure logged, when it
  // would pass the declared length.
  bool piece(std::string& out, std::string_view piece);
  // Appends the end of the body. False, logged, when fewer bytes came than declared.
  bool end(std::string& out);

 private:
  const Request& request_;
  bool chunked_;
  std::optional<std::uint64_t> length_;
  std::uint64_t sent_ = 0;
};

// The answer for an exception that escaped a handler or a middleware (App::handle's).
Response error_answer(std::exception_ptr error, const Request& request, const Ctx& ctx);

// The HTTP handler of a WebSocket route: checks the handshake, and answers 101 with the
// upgrade set in the Ctx (websocket.cpp).
Handler websocket_route(WebSocketHandler handler, WebSocketOptions options);

// One line on stderr: "molt::web: METHOD PATH<how>: <what>", `what` made one line.
void log_request_failure(const Request& request, std::string_view how, std::string_view what);
// A streamed answer's producer threw: the head is out, so all that is left is to cut the body
// short; the reason goes to stderr, as a handler's does.
void log_stream_failure(const Request& request, std::string_view what);

// Appends the answer to a request that could not be read; the connection then closes.
void write_read_error(std::string& out, const ReadError& error);

// The interim answer to `Expect: 100-continue`.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace molt::web::detail
