#include "molt/web/sse.hpp"

#include <stdexcept>
#include <utility>

namespace molt::web {

namespace {

// `name: line` for each line of `text`, its lines ended by CRLF, CR or LF as the format reads
// them.
void append_lines(std::string& out, std::string_view name, std::string_view text) {
  while (true) {
    const std::size_t end = text.find_first_of("\r\n");
    out.append(name).append(text.substr(0, end)).push_back('\n');
    if (end == std::string_view::npos) return;
    text.remove_prefix(end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1));
  }
}

}  // namespace

std::string format_event(const ServerSentEvent& event) {
  // A line break would end the field early (and start another the caller never wrote).
  if (event.event.find_first_of("\r\n") != std::string::npos)
    throw std::invalid_argument("a server-sent event's type must not hold a line break");
  if (event.id.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    throw std::invalid_argument("a server-sent event's id must not hold a line break or a NUL");
  std::string out;
  out.reserve(event.data.size() + event.comment.size() + event.event.size() + event.id.size() + 32);
  if (!event.comment.empty()) append_lines(out, ": ", event.comment);
  if (!event.event.empty()) out.append("event: ").append(event.event).push_back('\n');
  if (!event.id.empty()) out.append("id: ").append(event.id).push_back('\n');
  if (event.retry)
    out.append("retry: ").append(std::to_string(event.retry->count())).push_back('\n');
  // A client dispatches no event without a data line: a typed one with no data gets an empty
  // one (an event of just an id or a comment is meant not to be dispatched).
  if (!event.data.empty() || !event.event.empty()) append_lines(out, "data: ", event.data);
  out.push_back('\n');
  return out;
}

Response event_stream(EventSource next, EventStreamOptions options) {
  Response response = Response::stream(
      [next = std::move(next)]() -> boost::asio::awaitable<std::optional<std::string>> {
        std::optional<ServerSentEvent> event = co_await next();
        if (!event) co_return std::nullopt;
        co_return format_event(*event);
      },
      "text/event-stream; charset=utf-8");
  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Accel-Buffering", "no");
  response.set_stream_keepalive(options.ping_interval, ": ping\n\n");  // none for 0
  return response;
}

std::optional<std::string_view> last_event_id(const Request& request) {
  return request.header("Last-Event-ID");
}

}  // namespace molt::web
