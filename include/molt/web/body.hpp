// The body of the request being handled, read piece by piece: ctx.body().
//
//   app.post("/upload", [](const Request&, Ctx& ctx) -> awaitable<Response> {
//     std::uint64_t total = 0;
//     while (auto piece = co_await ctx.body().next()) total += piece->size();
//     co_return Response::text(std::to_string(total));
//   }, "upload", {.max_body_bytes = 1 << 30, .stream_body = true});
//
// On a route with RouteOptions::stream_body the server reads the body from the socket only as
// the handler asks for it, so a slow handler slows the client down and the server holds at
// most one read buffer of it (Limits::stream_buffer_bytes). On other routes the body was read
// whole before the handler ran, and next() gives it as one piece.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace molt::web {

class Ctx;
class App;
namespace detail {
class BodySource;
}

class RequestBody {
 public:
  // The next piece of the body, std::nullopt at its end (and ever after). The view points
  // into the connection's read buffer: it stays valid until the next call to next() or
  // read_all(), and never beyond the handler. Copy what must live longer. The body is read
  // in the handler: once it has returned, next() throws std::logic_error.
  //
  // Errors, thrown as HttpError so that a handler that lets them go answers right:
  // 413 past the route's body limit, 400 for a malformed body or one the client cut short.
  // The connection closes after such an answer. A request cancelled (timeout, shutdown,
  // client gone) aborts a pending next() with the operation's error.
  //
  // Loop with a declaration, `while (auto piece = co_await ctx.body().next())`: GCC 12
  // miscompiles `while (co_await ...)` whose condition declares nothing (a crash).
  boost::asio::awaitable<std::optional<std::string_view>> next();

  // The rest of the body in one string, within the route's body limit (413 past it).
  boost::asio::awaitable<std::string> read_all();

  // True when the body comes from the socket as the handler asks (RouteOptions::stream_body
  // and a request that has a body); false when it was read whole before the handler.
  bool streamed() const { return source_ != nullptr; }
  // Whether next() has reached the end.
  bool finished() const { return finished_; }
  // Bytes handed out by next() so far.
  std::uint64_t bytes_read() const { return bytes_read_; }

 private:
  friend class Ctx;
  friend class App;
  detail::BodySource* source_ = nullptr;
  const std::string* whole_ = nullptr;  // the body read before the handler, when not streamed
  std::uint64_t bytes_read_ = 0;
  bool finished_ = false;
};

}  // namespace molt::web
