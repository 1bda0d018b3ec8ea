// One request/answer exchange, shared by the socket connection and the TestClient.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "body_stream.hpp"
#include "molt/core/cancel.hpp"
#include "molt/web/app.hpp"
#include "request_reader.hpp"
#include "task_group.hpp"

namespace molt::web::detail {

// Runs the app on one request. With `body` (a streamed request body), what the handler left
// of it is then skipped if little (BodyStream::finish); `unread_body` says it was not, and
// the connection must close after the answer.
struct Answer {
  Response response;
  bool unread_body = false;
};
boost::asio::awaitable<Answer> run_app(const App& app, const Request& request,
                                       core::CancelToken token, TaskGroup* tasks, BodyStream* body);

// Appends the serialized answer to `out`; returns whether the connection may carry another
// request (decided now, after the handler: a shutdown may have begun meanwhile).
bool write_answer(std::string& out, const Request& request, const Response& response, bool closing);

// Whether the answer has a streamed body to send after its head.
bool sends_stream(const Request& request, const Response& response);
// Appends one piece of a streamed body, or its end, framed for the request's HTTP version.
void frame_piece(std::string& out, const Request& request, std::string_view piece);
void frame_end(std::string& out, const Request& request);

// Appends the answer to a request that could not be read; the connection then closes.
void write_read_error(std::string& out, const ReadError& error);

// The interim answer to `Expect: 100-continue`.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace molt::web::detail
