// chat: rooms of WebSockets on every I/O thread, the sample of websocket.hpp and topic.hpp.
// A client joins a room with a name; what it sends ({"text": "hi"}) goes to everyone in the
// room as {"from": "ann", "text": "hi"}, and joins and leaves are announced (from "*").
// /events/{room} gives the same to a client that only listens, as server-sent events (sse.hpp).
// The page at / tries it in a browser.
//
//   chat [--port 8082] [--threads 2]
//   open http://127.0.0.1:8082/
//   python -m websockets 'ws://127.0.0.1:8082/ws/lobby?name=ann'
//   curl -N http://127.0.0.1:8082/events/lobby        # listen only: server-sent events
#include <CLI/CLI.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/describe.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "molt/codec/rules.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/server.hpp"
#include "molt/web/sse.hpp"
#include "molt/web/topic.hpp"
#include "molt/web/websocket.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::Ctx;
using molt::web::HttpError;
using molt::web::Topic;
using molt::web::WebSocket;

struct Said {
  std::string from;
  std::string text;
};
BOOST_DESCRIBE_STRUCT(Said, (), (from, text))

struct Incoming {
  std::string text;
};
BOOST_DESCRIBE_STRUCT(Incoming, (), (text))
MOLT_RULES(Incoming, rule(&Incoming::text, length(1, 2000)))

// The rooms: a Topic each, made at the first join. Shared by every I/O thread, so locked; and
// bounded, since a client names the room.
class Rooms {
 public:
  Topic& room(const std::string& name) {
    std::lock_guard lock(mutex_);
    if (rooms_.size() >= kMaxRooms && !rooms_.contains(name))
      throw HttpError(503, "too_many_rooms", "no room for another room; join an existing one");
    return rooms_.try_emplace(name, 64).first->second;  // 64 messages queued per member
  }

 private:
  static constexpr std::size_t kMaxRooms = 1000;
  std::mutex mutex_;
  std::map<std::string, Topic> rooms_;
};

// A name a room or a person may have: 1 to 32 letters, digits, '-' or '_'.
std::string checked_name(std::optional<std::string_view> name, std::string_view what) {
  const bool fits = name && !name->empty() && name->size() <= 32 &&
                    std::all_of(name->begin(), name->end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                    });
  if (!fits)
    throw HttpError(400, "invalid_input",
                    std::string(what) + ": 1 to 32 letters, digits, '-' or '_'");
  return std::string(*name);
}

awaitable<void> from_client(WebSocket& socket, Topic& room, const std::string& name) {
  for (;;) {
    std::optional<Incoming> said;
    std::string problem;
    try {
      said = co_await socket.receive_json<Incoming>();
    } catch (const molt::codec::DecodeError& e) {
      problem = e.what();  // "message.text: ...": told to this member only, who may go on
    }
    if (said) {
      room.publish(molt::codec::to_json(Said{name, said->text}));
    } else {
      const Said refusal{"*", "not sent: " + problem};  // a local: GCC 12 mishandles
      co_await socket.send_json(refusal);               // temporaries in a co_await
    }
  }
}

awaitable<void> to_client(WebSocket& socket, Topic::Subscription& inbox) {
  for (;;) co_await socket.send_text(co_await inbox.next());
}

// GET /ws/{room}?name=ann. A bad name refuses the socket with a 400 before it opens.
awaitable<void> chat(WebSocket& socket, Ctx& ctx) {
  using namespace boost::asio::experimental::awaitable_operators;
  const std::string room_name = checked_name(ctx.param("room"), "room");
  const std::string name = checked_name(socket.request().query_param("name"), "name");
  Topic& room = ctx.state<Rooms>().room(room_name);
  co_await socket.accept();
  auto inbox = co_await room.subscribe();
  room.publish(molt::codec::to_json(Said{"*", name + " joined"}));
  try {
    // Both ways at once. When the client leaves, its receive throws WebSocketClosed and the
    // socket's close stops the other side's wait for the room, so the `||` ends.
    co_await (from_client(socket, room, name) || to_client(socket, inbox));
  } catch (...) {
    room.publish(molt::codec::to_json(Said{"*", name + " left"}));
    throw;
  }
}

// GET /events/{room}: what is said in the room as server-sent events, for a client that only
// listens (an EventSource, `curl -N`). Quiet rooms get a ping comment every 15 s.
awaitable<molt::web::Response> room_events(const molt::web::Request&, Ctx& ctx) {
  Topic& room = ctx.state<Rooms>().room(checked_name(ctx.param("room"), "room"));
  auto inbox = std::make_shared<Topic::Subscription>(co_await room.subscribe());
  co_return molt::web::event_stream(
      [inbox]() -> awaitable<std::optional<molt::web::ServerSentEvent>> {
        std::string said = co_await inbox->next();
        co_return molt::web::ServerSentEvent{.data = std::move(said), .event = "said"};
      });
}

constexpr std::string_view kPage = R"html(<!doctype html>
<meta charset="utf-8"><title>chat</title>
<input id="text" autofocus placeholder="say something, then Enter"><pre id="log"></pre>
<script>
const name = (prompt("your name (letters, digits, - or _)") || "guest").slice(0, 32);
const socket = new WebSocket(`ws://${location.host}/ws/lobby?name=${encodeURIComponent(name)}`);
socket.onmessage = (event) => {
  const said = JSON.parse(event.data);
  log.textContent += `${said.from}: ${said.text}\n`;
};
socket.onclose = (event) => { log.textContent += `(closed: ${event.code} ${event.reason})\n`; };
text.onkeydown = (event) => {
  if (event.key === "Enter" && text.value) {
    socket.send(JSON.stringify({text: text.value}));
    text.value = "";
  }
};
</script>
)html";

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"chat: rooms of WebSockets"};
  molt::web::ServerOptions options;
  options.port = 8082;
  options.threads = 2;
  cli.add_option("--port", options.port)->capture_default_str();
  cli.add_option("--threads", options.threads)->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  try {
    molt::web::Server::block_stop_signals();
    molt::web::App app;
    app.emplace_state<Rooms>();
    app.use(molt::web::access_log());
    app.get("/", [](const molt::web::Request&, Ctx&) {
      return molt::web::Response(200, std::string(kPage), "text/html; charset=utf-8");
    });
    app.websocket("/ws/{room}", chat, "chat", {.max_message_bytes = 16 * 1024});
    app.get("/events/{room}", room_events, "events");
    molt::web::Server server(app, options);
    server.start();
    std::fprintf(stderr, "chat: serving http://127.0.0.1:%u\n", unsigned(server.port()));
    server.wait_for_signal();  // SIGTERM/SIGINT: sockets get 1001, event streams end
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat: %s\n", e.what());
    return 1;
  }
}
