// WebSocket routes: the handshake through the middleware, messages both ways, closes and their
// codes, limits, refusals; in-process through the TestClient, then on real sockets (a Beast
// client on 127.0.0.1) for timeouts and shutdown.
#include "molt/web/websocket.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "molt/codec/utf8.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/openapi.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "molt/web/topic.hpp"
#include "socket_client.hpp"

namespace {

using namespace std::chrono_literals;
using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Next;
using molt::web::Request;
using molt::web::Response;
using molt::web::TestClient;
using molt::web::TestWebSocket;
using molt::web::WebSocket;
using molt::web::WebSocketClosed;
using molt::web::WebSocketRefused;
namespace close_code = molt::web::close_code;

struct Move {
  std::string piece;
  int square = 0;
};
BOOST_DESCRIBE_STRUCT(Move, (), (piece, square))

awaitable<void> echo(WebSocket& socket, Ctx&) {
  co_await socket.accept();
  for (;;) {
    molt::web::WebSocketMessage message = co_await socket.receive();
    if (message.binary)
      co_await socket.send_bytes(message.data);
    else
      co_await socket.send_text("echo: " + message.data);
  }
}

awaitable<void> sleep_ms(int ms) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

// The close the next receive meets: a failure if a message comes instead.
WebSocketClosed close_at_next_receive(TestWebSocket& socket) {
  try {
    socket.receive();
  } catch (const WebSocketClosed& closed) {
    return closed;
  }
  ADD_FAILURE() << "a message came, not the close";
  return WebSocketClosed(0, "");
}

// The code of the close the server sends next, after any messages before it.
std::uint16_t next_close_code(TestWebSocket& socket) {
  try {
    for (;;) socket.receive();
  } catch (const WebSocketClosed& closed) {
    return closed.code();
  }
}

TEST(WebSocketTest, EchoesTextAndBytesUntilTheClientCloses) {
  App app;
  std::atomic<int> client_close_seen{0};
  app.websocket("/ws/echo", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    try {
      co_await echo(socket, ctx);
    } catch (const WebSocketClosed& closed) {
      client_close_seen = closed.code();
      EXPECT_EQ(closed.reason(), "done here");
      EXPECT_EQ(ctx.token().reason(), molt::core::CancelReason::Disconnected);
    }
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/echo");
  EXPECT_EQ(socket.handshake().status, 101);
  EXPECT_EQ(socket.handshake().header("Server").value_or(""), "molt");  // no version banner
  socket.send_text("hello");
  EXPECT_EQ(socket.receive_text(), "echo: hello");
  socket.send_text("");
  EXPECT_EQ(socket.receive_text(), "echo: ");
  const std::string bytes("\x00\xff\x01", 3);
  socket.send_bytes(bytes);
  const auto message = socket.receive();
  EXPECT_TRUE(message.binary);
  EXPECT_EQ(message.data, bytes);
  socket.close(4001, "done here");
  EXPECT_EQ(client_close_seen.load(), 4001);
}

TEST(WebSocketTest, MessagesSentAheadWaitInOrderForTheHandler) {
  App app;
  app.websocket(
      "/ws/late",
      [](WebSocket& socket, Ctx&) -> awaitable<void> {
        co_await socket.accept();
        co_await sleep_ms(50);  // the client's messages arrive meanwhile, more than the queue holds
        for (int i = 0; i < 40; ++i) {
          const std::string text = co_await socket.receive_text();
          co_await socket.send_text(text);
        }
      },
      {}, {.receive_queue = 4});
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/late");
  for (int i = 0; i < 40; ++i) socket.send_text("m" + std::to_string(i));
  for (int i = 0; i < 40; ++i) EXPECT_EQ(socket.receive_text(), "m" + std::to_string(i));
  EXPECT_EQ(next_close_code(socket), close_code::normal);  // the handler returned
}

TEST(WebSocketTest, SendsFromSeveralTasksOfOneHandlerGoOutWhole) {
  App app;
  app.websocket("/ws/two", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    using namespace boost::asio::experimental::awaitable_operators;
    co_await socket.accept();
    auto producer = [&socket](std::string name) -> awaitable<void> {
      for (int i = 0; i < 100; ++i)
        co_await socket.send_text(name + std::to_string(i) + std::string(3000, 'x'));
    };
    co_await (producer("a") && producer("b"));
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/two");
  int next_a = 0, next_b = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string text = socket.receive_text();
    ASSERT_EQ(text.size() - text.find('x'), 3000u) << "a message went out mixed with another";
    int& next = text[0] == 'a' ? next_a : next_b;
    EXPECT_EQ(text.substr(1, text.find('x') - 1), std::to_string(next++));
  }
  EXPECT_EQ(next_a, 100);
  EXPECT_EQ(next_b, 100);
}

TEST(WebSocketTest, JsonBothWaysAndADecodeErrorTheHandlerAnswers) {
  App app;
  app.websocket("/ws/game", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    for (;;) {
      std::string problem;
      try {
        Move move = co_await socket.receive_json<Move>();
        move.square += 1;
        co_await socket.send_json(move);
        continue;
      } catch (const molt::codec::DecodeError& e) {
        problem = e.what();
      }
      boost::json::object error;
      error["error"] = problem;
      const boost::json::value answer(std::move(error));  // named: see docs/web.md on GCC 12
      co_await socket.send_json(answer);
    }
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/game");
  socket.send_json(Move{"knight", 10});
  const Move answer = socket.receive_json<Move>();
  EXPECT_EQ(answer.piece, "knight");
  EXPECT_EQ(answer.square, 11);
  socket.send_text(R"({"piece":"rook","square":"far"})");
  const auto error = socket.receive_json();
  EXPECT_NE(std::string(error.at("error").as_string()).find("message.square"), std::string::npos)
      << error;
  socket.send_json(Move{"pawn", 1});  // still open
  EXPECT_EQ(socket.receive_json<Move>().square, 2);
}

TEST(WebSocketTest, AnUncaughtDecodeErrorClosesWith1007AndItsMessage) {
  App app;
  app.websocket("/ws/strict", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    (void)co_await socket.receive_json<Move>();
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/strict");
  socket.send_text("{\"piece\":1}");
  const WebSocketClosed closed = close_at_next_receive(socket);
  EXPECT_EQ(closed.code(), close_code::invalid_payload);
  EXPECT_NE(closed.reason().find("message.piece"), std::string::npos) << closed.reason();
}

TEST(WebSocketTest, TheHandlersEndClosesWithACodeThatSaysHow) {
  App app;
  app.websocket("/ws/bye", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    co_await socket.close(4000, std::string(300, 'r'));  // the reason is cut to fit
  });
  app.websocket("/ws/fails", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    throw std::runtime_error("secret detail");
  });
  app.websocket("/ws/forbidden", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    throw molt::web::HttpError(403, "forbidden", "not your room");
  });
  app.websocket("/ws/bad-code", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    co_await socket.close(1005);  // reserved: never sent
  });
  TestClient client(app);
  {
    TestWebSocket socket = client.websocket_connect("/ws/bye");
    const WebSocketClosed closed = close_at_next_receive(socket);
    EXPECT_EQ(closed.code(), 4000);
    EXPECT_EQ(closed.reason(), std::string(123, 'r'));
  }
  {
    TestWebSocket socket = client.websocket_connect("/ws/fails");
    const WebSocketClosed closed = close_at_next_receive(socket);
    EXPECT_EQ(closed.code(), close_code::internal_error);
    EXPECT_EQ(closed.reason().find("secret"), std::string::npos);
  }
  {
    TestWebSocket socket = client.websocket_connect("/ws/forbidden");
    const WebSocketClosed closed = close_at_next_receive(socket);
    EXPECT_EQ(closed.code(), close_code::policy_violation);
    EXPECT_EQ(closed.reason(), "not your room");
  }
  {
    TestWebSocket socket = client.websocket_connect("/ws/bad-code");
    EXPECT_EQ(next_close_code(socket), close_code::internal_error);
  }
}

TEST(WebSocketTest, TheWrongKindOfMessageClosesWith1003) {
  App app;
  app.websocket("/ws/text", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    (void)co_await socket.receive_text();
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/text");
  socket.send_bytes("\x01\x02");
  EXPECT_EQ(next_close_code(socket), close_code::unsupported_data);
}

TEST(WebSocketTest, AMessageOverTheLimitClosesWith1009) {
  App app;
  std::atomic<int> handler_saw{0};
  app.websocket("/ws/small",
                [&](WebSocket& socket, Ctx&) -> awaitable<void> {
                  co_await socket.accept();
                  try {
                    for (;;) co_await socket.send_text(co_await socket.receive_text());
                  } catch (const WebSocketClosed& closed) {
                    handler_saw = closed.code();
                  }
                },
                {}, {.max_message_bytes = 16});
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/small");
  socket.send_text(std::string(16, 'a'));
  EXPECT_EQ(socket.receive_text(), std::string(16, 'a'));
  socket.send_text(std::string(17, 'a'));
  EXPECT_EQ(next_close_code(socket), close_code::too_big);
  socket.wait_server_done();
  EXPECT_EQ(handler_saw.load(), close_code::too_big);
}

TEST(WebSocketTest, TextThatIsNotUtf8IsRefusedBothWays) {
  App app;
  std::atomic<bool> send_refused{false};
  app.websocket("/ws/utf8", [&](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    try {
      co_await socket.send_text("\xff\xfe");
    } catch (const std::invalid_argument&) {
      send_refused = true;
    }
    (void)co_await socket.receive();
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/utf8");
  socket.send_text("\xc3\x28");  // an invalid two-byte sequence
  EXPECT_EQ(next_close_code(socket), close_code::invalid_payload);
  EXPECT_TRUE(send_refused.load());
}

TEST(WebSocketTest, AHandlerThatDoesNotAcceptRefusesWithAnHttpAnswer) {
  App app;
  app.websocket("/ws/nobody", [](WebSocket&, Ctx&) -> awaitable<void> { co_return; });
  app.websocket("/ws/token", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    if (!socket.request().query_param("token"))
      throw molt::web::HttpError(401, "unauthorized", "a token is needed");
    co_await socket.accept();
    co_await socket.send_text("welcome");
  });
  app.websocket("/ws/closed-early",
                [](WebSocket& socket, Ctx&) -> awaitable<void> { co_await socket.close(1008); });
  TestClient client(app);
  try {
    client.websocket_connect("/ws/nobody");
    FAIL() << "connected";
  } catch (const WebSocketRefused& refused) {
    EXPECT_EQ(refused.response().status, 403);
    EXPECT_EQ(refused.response().json().at("error").at("code"), "websocket_refused");
  }
  try {
    client.websocket_connect("/ws/token");
    FAIL() << "connected";
  } catch (const WebSocketRefused& refused) {
    EXPECT_EQ(refused.response().status, 401);
    EXPECT_EQ(refused.response().json().at("error").at("message"), "a token is needed");
  }
  EXPECT_EQ(client.websocket_connect("/ws/token?token=t").receive_text(), "welcome");
  try {
    client.websocket_connect("/ws/closed-early");
    FAIL() << "connected";
  } catch (const WebSocketRefused& refused) {
    EXPECT_EQ(refused.response().status, 403);
  }
}

TEST(WebSocketTest, MiddlewareMayRefuseOrAddHeadersToThe101) {
  App app;
  std::vector<std::string> lines;
  app.use(molt::web::request_id());
  app.use(molt::web::access_log([&](std::string_view line) { lines.emplace_back(line); }));
  app.use([](const Request& request, Ctx& ctx, Next next) -> awaitable<Response> {
    if (request.header("X-Key").value_or("") != "k")
      co_return Response::error(401, "unauthorized", "no key");
    ctx.set(std::string("alice"));
    co_return co_await next();
  });
  app.websocket("/ws/who", [](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    co_await socket.accept();
    co_await socket.send_text(*ctx.get<std::string>());
  });
  TestClient client(app);
  try {
    client.websocket_connect("/ws/who");
    FAIL() << "connected";
  } catch (const WebSocketRefused& refused) {
    EXPECT_EQ(refused.response().status, 401);
    EXPECT_TRUE(refused.response().header("X-Request-Id"));
  }
  {
    TestWebSocket socket =
        client.websocket_connect("/ws/who", {{"X-Key", "k"}, {"X-Request-Id", "req-7"}});
    EXPECT_EQ(socket.handshake().header("X-Request-Id").value_or(""), "req-7");
    EXPECT_EQ(socket.receive_text(), "alice");
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"status\":401"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("\"status\":101"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"close_code\":1000"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"request_id\":\"req-7\""), std::string::npos) << lines[1];
}

TEST(WebSocketTest, PathParametersCookiesAndSubprotocols) {
  App app;
  app.websocket("/ws/rooms/{room}", [](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    const auto offered = socket.subprotocols();
    co_await socket.accept(offered.empty() ? "" : offered.back());
    co_await socket.send_text(std::string(*ctx.param("room")) + " " +
                              std::string(socket.request().header("Cookie").value_or("-")));
  });
  app.websocket("/ws/picky", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept("chat.v3");  // not offered
  });
  TestClient client(app);
  client.set_cookie("session", "abc");
  {
    TestWebSocket socket = client.websocket_connect("/ws/rooms/lobby", {}, {"chat.v1", "chat.v2"});
    EXPECT_EQ(socket.handshake().header("Sec-WebSocket-Protocol").value_or(""), "chat.v2");
    EXPECT_EQ(socket.receive_text(), "lobby session=abc");
  }
  try {
    client.websocket_connect("/ws/picky", {}, {"chat.v1"});
    FAIL() << "connected";
  } catch (const WebSocketRefused& refused) {
    EXPECT_EQ(refused.response().status, 500);  // the handler's mistake, logged
  }
}

TEST(WebSocketTest, APlainRequestOrABadHandshakeGetsAClearHttpAnswer) {
  App app;
  app.websocket("/ws/echo", echo);
  TestClient client(app);
  auto plain = client.get("/ws/echo");
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.header("Upgrade").value_or(""), "websocket");
  const std::string handshake =
      "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  auto old_version = client.get("/ws/echo", {{"Upgrade", "websocket"},
                                             {"Connection", "Upgrade"},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                             {"Sec-WebSocket-Version", "8"}});
  EXPECT_EQ(old_version.status, 426);
  EXPECT_EQ(old_version.header("Sec-WebSocket-Version").value_or(""), "13");
  auto bad_key = client.get("/ws/echo", {{"Upgrade", "websocket"},
                                         {"Connection", "Upgrade"},
                                         {"Sec-WebSocket-Key", "short=="},
                                         {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(bad_key.status, 400);
  auto no_connection = client.get("/ws/echo", {{"Upgrade", "websocket"},
                                               {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                               {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(no_connection.status, 400);
  // A WebSocket route does not appear in the OpenAPI document.
  App documented;
  documented.websocket("/ws/echo", echo);
  documented.get("/health", [](const Request&, Ctx&) { return Response::text("ok"); });
  molt::web::serve_openapi(documented, {.title = "t", .version = "1"});
  TestClient docs(documented);
  const auto document = docs.get("/openapi.json").json();
  EXPECT_TRUE(document.at("paths").as_object().contains("/health"));
  EXPECT_FALSE(document.at("paths").as_object().contains("/ws/echo"));
}

TEST(WebSocketTest, AHandlerThatOnlySendsLearnsThatTheClientLeft) {
  App app;
  std::atomic<int> sent{0};
  std::atomic<bool> saw_cancel{false};
  app.websocket("/ws/ticks", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    co_await socket.accept();
    while (!ctx.cancelled()) {
      co_await socket.send_text("tick");
      ++sent;
      co_await sleep_ms(5);
    }
    saw_cancel = ctx.token().reason() == molt::core::CancelReason::Disconnected;
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/ticks");
  EXPECT_EQ(socket.receive_text(), "tick");
  socket.close();  // returns once the server's side has ended
  EXPECT_TRUE(saw_cancel.load());
}

// ---- on real sockets ---------------------------------------------------------------------

namespace asio = boost::asio;
namespace ws = boost::beast::websocket;
using tcp = asio::ip::tcp;

struct RealClient {
  asio::io_context io;
  ws::stream<tcp::socket> stream{io};
  ws::response_type handshake;
  explicit RealClient(std::uint16_t port, std::string_view target = "/ws/echo",
                      bool offer_compression = false) {
    ws::permessage_deflate deflate;
    deflate.client_enable = offer_compression;
    stream.set_option(deflate);
    stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    stream.handshake(handshake, "127.0.0.1", std::string(target));
  }
  std::string read() {
    boost::beast::flat_buffer buffer;
    stream.read(buffer);
    return boost::beast::buffers_to_string(buffer.data());
  }
};

molt::web::ServerOptions local_server() {
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.shutdown_grace = 3s;
  return options;
}

TEST(WebSocketServerTest, EchoesOverTcpAndRefusesFramesBeforeTheAnswer) {
  App app;
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  app.use(molt::web::access_log([&](std::string_view line) {
    std::lock_guard lock(lines_mutex);
    lines.emplace_back(line);
  }));
  app.websocket("/ws/echo", echo);
  molt::web::Server server(app, local_server());
  server.start();
  {
    RealClient client(server.port());
    client.stream.write(asio::buffer(std::string("over tcp")));
    EXPECT_EQ(client.read(), "echo: over tcp");
    client.stream.close(ws::close_code::normal);
  }
  // A client that sends a frame with its handshake, before the 101: refused.
  molt::web::testing::Client raw(server.port());
  raw.send(
      "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
      "\x81\x80\x00\x00\x00\x00");
  const std::string answer = raw.receive_until_closed();
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  server.stop();
  ASSERT_EQ(lines.size(), 2u);  // the refused one is logged with what it was answered
  EXPECT_NE(lines[1].find("\"status\":400"), std::string::npos) << lines[1];
}

// The raw bytes of a handshake, then frames written by hand (masked with a zero key).
std::string read_handshake(molt::web::testing::Client& raw, std::string_view target) {
  raw.send("GET " + std::string(target) +
           " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return raw.receive_head();
}

TEST(WebSocketServerTest, TextThatIsNotUtf8ClosesWith1007HoweverItIsFramed) {
  App app;
  std::atomic<bool> delivered{false};
  app.websocket("/ws/echo",
                [&](WebSocket& socket, Ctx&) -> awaitable<void> {
                  co_await socket.accept();
                  (void)co_await socket.receive();
                  delivered = true;
                },
                {}, {.close_timeout = 200ms});  // this client never answers the close
  molt::web::Server server(app, local_server());
  server.start();
  molt::web::testing::Client raw(server.port());
  ASSERT_EQ(read_handshake(raw, "/ws/echo").rfind("HTTP/1.1 101", 0), 0u);
  // "ab" and the first two bytes of a four-byte character, then an empty last frame.
  raw.send(std::string("\x01\x84\0\0\0\0ab\xf0\x9f", 10));
  raw.send(std::string("\x80\x80\0\0\0\0", 6));
  const std::string close = raw.receive_until_closed();
  ASSERT_GE(close.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(close[0]), 0x88);  // a close frame
  EXPECT_EQ((static_cast<unsigned char>(close[2]) << 8) | static_cast<unsigned char>(close[3]),
            close_code::invalid_payload);
  EXPECT_FALSE(delivered.load());
  server.stop();
}

TEST(WebSocketServerTest, AHandlerThatLeavesMessagesUntakenLosesTheSocketAfterTheIdleTimeout) {
  App app;
  std::atomic<bool> handler_ended{false};
  app.websocket(
      "/ws/push",
      [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
        co_await socket.accept();
        try {
          while (!ctx.cancelled()) {  // never receives: the client's messages fill the queue
            co_await socket.send_text("tick");
            co_await sleep_ms(50);
          }
        } catch (const WebSocketClosed&) {
        }
        handler_ended = true;
      },
      {}, {.receive_queue = 2, .idle_timeout = 400ms});
  molt::web::Server server(app, local_server());
  server.start();
  RealClient client(server.port(), "/ws/push");
  for (int i = 0; i < 3; ++i) client.stream.write(asio::buffer(std::string("m")));
  // The client reads (and so answers pings), but the server reads nothing past its full
  // queue, neither the pongs nor a close: the idle timeout ends it, as a client that left.
  const auto started = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  while (!ec && std::chrono::steady_clock::now() - started < 5s) {
    boost::beast::flat_buffer buffer;
    client.stream.read(buffer, ec);
  }
  EXPECT_TRUE(ec);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  server.stop();
  EXPECT_TRUE(handler_ended.load());
}

TEST(WebSocketServerTest, CompressionOnlyWhereTheRouteTurnsItOn) {
  App app;
  app.websocket("/ws/echo", echo);
  app.websocket("/ws/packed", echo, {}, {.compress = true});
  molt::web::Server server(app, local_server());
  server.start();
  for (const auto& [target, compressed] : {std::pair{"/ws/echo", false}, {"/ws/packed", true}}) {
    RealClient client(server.port(), target, true);
    EXPECT_EQ(client.handshake.count("Sec-WebSocket-Extensions") > 0, compressed) << target;
    const std::string big(200'000, 'z');
    client.stream.write(asio::buffer(big));
    EXPECT_EQ(client.read(), "echo: " + big) << target;
    client.stream.close(ws::close_code::normal);
  }
  server.stop();
}

TEST(WebSocketServerTest, ASilentClientIsClosedAfterTheIdleTimeout) {
  App app;
  app.websocket("/ws/echo", echo, {}, {.idle_timeout = 300ms});
  molt::web::Server server(app, local_server());
  server.start();
  RealClient quiet(server.port());
  // Reading answers the server's pings: a client that reads stays past the timeout.
  quiet.stream.write(asio::buffer(std::string("a")));
  EXPECT_EQ(quiet.read(), "echo: a");
  std::this_thread::sleep_for(1s);  // not reading: its pings go unanswered
  boost::system::error_code ec;
  boost::beast::flat_buffer buffer;
  for (int i = 0; i < 10 && !ec; ++i) quiet.stream.read(buffer, ec);  // pings, then the end
  EXPECT_TRUE(ec) << "still open";
  EXPECT_EQ(server.open_connections(), 0u);
  server.stop();
}

TEST(WebSocketServerTest, ShutdownTellsClientsGoingAwayAndCancelsTheHandler) {
  App app;
  std::atomic<int> handler_reason{-1};
  app.websocket("/ws/echo", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    try {
      co_await echo(socket, ctx);
    } catch (const WebSocketClosed&) {
      handler_reason = static_cast<int>(ctx.token().reason());
    }
  });
  molt::web::Server server(app, local_server());
  server.start();
  RealClient client(server.port());
  client.stream.write(asio::buffer(std::string("x")));
  EXPECT_EQ(client.read(), "echo: x");
  std::thread stopping([&] { server.stop(); });
  boost::system::error_code ec;
  boost::beast::flat_buffer buffer;
  client.stream.read(buffer, ec);  // the server's close: answered by Beast, then closed
  EXPECT_EQ(ec, ws::error::closed);
  EXPECT_EQ(client.stream.reason().code, close_code::going_away);
  stopping.join();
  EXPECT_EQ(handler_reason.load(), static_cast<int>(molt::core::CancelReason::Shutdown));
}

}  // namespace
namespace {

TEST(WebSocketTest, TheClientLeavingEndsWhatTheHandlerAwaitsOnBothSidesOfAnOr) {
  using namespace boost::asio::experimental::awaitable_operators;
  App app;
  molt::web::Topic topic;
  std::atomic<int> ended_with{-1};
  app.websocket("/ws/relay", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    co_await socket.accept();
    auto inbox = co_await topic.subscribe();
    auto from_client = [&]() -> awaitable<void> {
      for (;;) topic.publish(co_await socket.receive_text());
    };
    auto to_client = [&]() -> awaitable<void> {
      for (;;) co_await socket.send_text(co_await inbox.next());
    };
    try {
      // An `||` waits for a side that succeeds: the receive's WebSocketClosed alone would
      // leave the other side waiting for the topic. The socket's close stops it too.
      co_await (from_client() || to_client());
    } catch (const std::exception&) {
      ended_with = static_cast<int>(ctx.token().reason());
    }
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/relay");
  socket.send_text("round trip");
  EXPECT_EQ(socket.receive_text(), "round trip");
  socket.close();  // returns once the server's side has ended
  EXPECT_EQ(ended_with.load(), static_cast<int>(molt::core::CancelReason::Disconnected));
  EXPECT_EQ(topic.subscribers(), 0u);
}

}  // namespace
namespace {

TEST(WebSocketTest, CallsThatOverlapTheHandshakeAreRefusedNotRaced) {
  using namespace boost::asio::experimental::awaitable_operators;
  App app;
  std::atomic<int> refused_calls{0};
  // accept() and, while its 101 is written, a second accept() or a close().
  app.websocket("/ws/overlap/{second}", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    auto attempt = [&](bool close) -> awaitable<void> {
      try {
        if (close)
          co_await socket.close(4001);
        else
          co_await socket.accept();
      } catch (const std::logic_error&) {
        ++refused_calls;
      }
    };
    co_await (attempt(false) && attempt(ctx.param("second") == "close"));
    co_await socket.send_text("still open");
  });
  TestClient client(app);
  EXPECT_EQ(client.websocket_connect("/ws/overlap/accept").receive_text(), "still open");
  EXPECT_EQ(client.websocket_connect("/ws/overlap/close").receive_text(), "still open");
  EXPECT_EQ(refused_calls.load(), 2);
}

TEST(WebSocketTest, CloseReasonsAreUtf8WhateverTheyQuote) {
  App app;
  app.websocket("/ws/who", [](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    throw molt::web::HttpError(
        403, "forbidden",
        "no access for " + std::string(socket.request().header("X-Who").value_or("")));
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/who", {{"X-Who", "\xff\xfe"}});
  const WebSocketClosed closed = close_at_next_receive(socket);
  EXPECT_EQ(closed.code(), close_code::policy_violation);
  EXPECT_TRUE(molt::codec::is_valid_utf8(closed.reason())) << closed.reason();
  EXPECT_EQ(closed.reason().rfind("no access for ", 0), 0u);
}

TEST(WebSocketTest, ListFieldsOnSeveralLinesUpgradeAndRepeatedKeysDoNot) {
  App app;
  app.websocket("/ws/echo", echo);
  TestClient client(app);
  // Beast's client writes its own Connection line; one more makes two lines of one list.
  TestWebSocket socket = client.websocket_connect("/ws/echo", {{"Connection", "keep-alive"}});
  socket.send_text("two lines");
  EXPECT_EQ(socket.receive_text(), "echo: two lines");
  const auto twice = client.get("/ws/echo", {{"Upgrade", "websocket"},
                                             {"Connection", "Upgrade"},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                             {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(twice.status, 400);
}

}  // namespace
namespace {

TEST(WebSocketTest, MessagesSentBeforeTheClientClosedReachABusyHandlerFirst) {
  App app;
  std::vector<std::string> received;
  std::atomic<int> closed_with{0};
  app.websocket("/ws/busy", [&](WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    // Busy (an await that throws when interrupted) while two messages and the close come.
    boost::asio::steady_timer busy(co_await boost::asio::this_coro::executor, 100ms);
    co_await busy.async_wait(boost::asio::use_awaitable);
    try {
      for (;;) received.push_back(co_await socket.receive_text());
    } catch (const WebSocketClosed& closed) {
      closed_with = closed.code();
    }
  });
  TestClient client(app);
  TestWebSocket socket = client.websocket_connect("/ws/busy");
  socket.send_text("a");
  socket.send_text("b");
  socket.close(4002);
  EXPECT_EQ(received, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(closed_with.load(), 4002);
}

TEST(WebSocketServerTest, AHandlerThatNeitherAcceptsNorRefusesInTimeIsCut) {
  App app;
  std::atomic<int> reason{-1};
  app.websocket("/ws/slow", [&](WebSocket& socket, Ctx& ctx) -> awaitable<void> {
    co_await sleep_ms(3000);  // an authentication call that hangs, before accept(): cut short
    reason = static_cast<int>(ctx.token().reason());
    co_await socket.accept();
  });
  molt::web::ServerOptions options = local_server();
  options.limits.request_timeout = 300ms;
  molt::web::Server server(app, options);
  server.start();
  const auto started = std::chrono::steady_clock::now();
  asio::io_context io;
  ws::stream<tcp::socket> stream(io);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), server.port()});
  boost::system::error_code ec;
  stream.handshake("127.0.0.1", "/ws/slow", ec);
  EXPECT_TRUE(ec);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  server.stop();
  EXPECT_EQ(reason.load(), static_cast<int>(molt::core::CancelReason::Timeout));
}

}  // namespace
