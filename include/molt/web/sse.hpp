// Server-sent events (text/event-stream, the EventSource of browsers): a stream of events the
// server pushes over one long answer, with comments as keep-alives while nothing happens.
//
//   app.get("/events", [](const Request&, Ctx& ctx) -> awaitable<Response> {
//     Topic& news = ctx.state<Topic>();
//     auto feed = std::make_shared<Topic::Subscription>(co_await news.subscribe());
//     co_return molt::web::event_stream([feed]() -> awaitable<std::optional<ServerSentEvent>> {
//       std::string said = co_await feed->next();         // waits as long as it takes
//       co_return ServerSentEvent{.data = std::move(said), .event = "news"};
//     });                                                 // std::nullopt would end it
//   }, "events");
//
// The producer is pulled as the client takes what it gave (a slow client slows it), a client
// that leaves cancels its awaits, and while it waits longer than `ping_interval` the server
// sends a comment (": ping"), which also renews the route's request_timeout: a quiet stream
// is not cut by it. At shutdown the stream ends at once (cleanly: the client reconnects).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "molt/codec/json.hpp"
#include "molt/web/message.hpp"

namespace molt::web {

struct ServerSentEvent {
  std::string data;   // one `data:` line per line of it (none when empty and untyped)
  std::string event;  // the type a client listens for ("" is the default, "message")
  std::string id;     // the client sends the last one back as Last-Event-ID when it reconnects
  std::optional<std::chrono::milliseconds> retry;  // how long a client waits to reconnect
  std::string comment;                             // `: ` lines, which clients ignore
};

// The event in the text/event-stream format, ending with its blank line. std::invalid_argument
// for an `event` or `id` with a CR or LF (it would end the field early), or an `id` with a NUL.
std::string format_event(const ServerSentEvent& event);

// An event whose data is `value` as JSON (codec::to_json: a described struct, a map, ...).
template <typename T>
ServerSentEvent json_event(const T& value, std::string event = {}) {
  return ServerSentEvent{.data = codec::to_json(value), .event = std::move(event)};
}

// Each call gives the next event; std::nullopt ends the stream.
using EventSource = std::function<boost::asio::awaitable<std::optional<ServerSentEvent>>()>;

struct EventStreamOptions {
  // A `: ping` comment after this long without an event (0: none).
  std::chrono::milliseconds ping_interval{15'000};
};

// A 200 text/event-stream answer of the events `next` gives, not cached and not buffered by
// a proxy (Cache-Control: no-cache, X-Accel-Buffering: no), never compressed.
Response event_stream(EventSource next, EventStreamOptions options = {});

// The id a reconnecting EventSource sends back (Last-Event-ID): where to resume from.
std::optional<std::string_view> last_event_id(const Request& request);

}  // namespace molt::web
