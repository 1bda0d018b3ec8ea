// Server-sent events: the format, the answer's head, and on real sockets the keep-alive
// comments while the producer waits, which also renew the route's request_timeout.
#include "molt/web/sse.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/describe.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "molt/web/app.hpp"
#include "molt/web/compression.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "socket_client.hpp"

namespace sse_sample {
struct Tick {
  int n = 0;
};
BOOST_DESCRIBE_STRUCT(Tick, (), (n))
}  // namespace sse_sample

namespace molt::web {
namespace {

using boost::asio::awaitable;
using namespace std::chrono_literals;

TEST(ServerSentEvents, EventsAreWrittenInTheFormat) {
  EXPECT_EQ(format_event({.data = "hello"}), "data: hello\n\n");
  EXPECT_EQ(format_event({.data = "a\nb\r\nc\rd", .event = "said", .id = "7", .retry = 1500ms}),
            "event: said\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(format_event({.data = "x\n"}), "data: x\ndata: \n\n");  // a last empty line kept
  EXPECT_EQ(format_event({.comment = "keep\nalive"}), ": keep\n: alive\n\n");
  EXPECT_EQ(format_event({.id = "42"}), "id: 42\n\n");  // no data: only moves the last id
  EXPECT_EQ(format_event({.event = "reset"}), "event: reset\ndata: \n\n");  // dispatched
  EXPECT_EQ(format_event(json_event(sse_sample::Tick{3}, "tick")),
            "event: tick\ndata: {\"n\":3}\n\n");
  EXPECT_THROW(format_event({.data = "x", .event = "a\nb"}), std::invalid_argument);
  EXPECT_THROW(format_event({.data = "x", .id = "a\rb"}), std::invalid_argument);
  EXPECT_THROW(format_event({.data = "x", .id = std::string("a\0b", 3)}), std::invalid_argument);
}

// Three ticks `gap` apart, then the end; ids from the Last-Event-ID the client sent.
Handler ticks(std::chrono::milliseconds gap, std::chrono::milliseconds ping) {
  return [gap, ping](const Request& request, Ctx&) -> awaitable<Response> {
    int from = 0;
    if (const auto last = last_event_id(request)) from = std::stoi(std::string(*last)) + 1;
    auto n = std::make_shared<int>(from);
    co_return event_stream(
        [n, gap, last = from + 3]() -> awaitable<std::optional<ServerSentEvent>> {
          if (*n == last) co_return std::nullopt;
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, gap);
          co_await timer.async_wait(boost::asio::use_awaitable);
          ServerSentEvent event = json_event(sse_sample::Tick{*n}, "tick");
          event.id = std::to_string((*n)++);
          co_return event;
        },
        {.ping_interval = ping});
  };
}

TEST(ServerSentEvents, AStreamHasItsHeadAndEventsAndResumesFromTheLastId) {
  App app;
  app.get("/ticks", ticks(0ms, 0ms));
  TestClient client(app);
  const TestResponse answer = client.get("/ticks");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("Content-Type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(answer.header("Cache-Control"), "no-cache");
  EXPECT_EQ(answer.header("X-Accel-Buffering"), "no");
  EXPECT_EQ(answer.body,
            "event: tick\nid: 0\ndata: {\"n\":0}\n\nevent: tick\nid: 1\ndata: {\"n\":1}\n\n"
            "event: tick\nid: 2\ndata: {\"n\":2}\n\n");
  const TestResponse resumed = client.get("/ticks", {{"Last-Event-ID", "6"}});
  EXPECT_TRUE(
      resumed.body.starts_with("event: tick\nid: 7\ndata: {\"n\":7}\n\nevent: tick\nid: 8\n"))
      << resumed.body;
}

std::unique_ptr<Server> one_thread_server(App& app) {
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  auto server = std::make_unique<Server>(app, options);
  server->start();
  return server;
}

// The body of a chunked answer, its chunks joined.
std::string dechunked(const std::string& raw) {
  const auto answers = TestClient::parse_responses(raw);
  return answers.empty() ? std::string() : answers[0].body;
}

TEST(ServerSentEvents, PingsGoOutWhileTheProducerWaitsAndRenewTheRequestTimeout) {
  App app;
  // Each tick takes 400 ms, past the route's 250 ms: only the pings, every 50 ms, keep the
  // stream from being cut.
  app.get("/slow", ticks(400ms, 50ms), "slow", {.request_timeout = 250ms});
  app.get("/silent", ticks(400ms, 0ms), "silent", {.request_timeout = 250ms});
  auto server = one_thread_server(app);
  {
    testing::Client client(server->port());
    client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    const std::string body = dechunked(client.receive(1));
    const std::string events =
        "event: tick\nid: 0\ndata: {\"n\":0}\n\nevent: tick\nid: 1\ndata: {\"n\":1}\n\n"
        "event: tick\nid: 2\ndata: {\"n\":2}\n\n";
    std::string without_pings = body;
    std::size_t pings = 0;
    for (std::size_t at; (at = without_pings.find(": ping\n\n")) != std::string::npos; ++pings)
      without_pings.erase(at, 8);
    EXPECT_EQ(without_pings, events) << body;
    EXPECT_GE(pings, 6u) << body;  // about 7 in each 400 ms wait
  }
  {
    testing::Client client(server->port());
    client.send("GET /silent HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string data;
    EXPECT_TRUE(client.ended_by_reset(data));  // cut at 250 ms, before its first event
    EXPECT_EQ(data.find("data:"), std::string::npos) << data;
  }
  server->stop();
}

// What the client read up to its first ping ("" if the connection ended first).
std::string until_a_ping(testing::Client& client) {
  std::string seen;
  char chunk[4096];
  while (seen.find(": ping\n\n") == std::string::npos) {
    const ssize_t n = ::recv(client.fd(), chunk, sizeof(chunk), 0);
    if (n <= 0) return "";
    seen.append(chunk, static_cast<std::size_t>(n));
  }
  return seen;
}

TEST(ServerSentEvents, AClientThatLeavesStopsTheProducerDespiteThePings) {
  App app;
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  app.get("/forever", [stopped](const Request&, Ctx&) -> awaitable<Response> {
    co_return event_stream(
        [stopped]() -> awaitable<std::optional<ServerSentEvent>> {
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 1h);
          try {
            co_await timer.async_wait(boost::asio::use_awaitable);
          } catch (...) {
            *stopped = true;
            throw;
          }
          co_return ServerSentEvent{.data = "never"};
        },
        {.ping_interval = 20ms});
  });
  auto server = one_thread_server(app);
  {
    testing::Client client(server->port());
    client.send("GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
    ASSERT_NE(until_a_ping(client), "");
  }  // the client leaves
  for (int i = 0; i < 500 && !*stopped; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(*stopped);
  server->stop();
}

// A keep-alive piece larger than the socket's buffers goes out in parts, before the next
// piece: the stream's framing holds, and nothing of it is sent twice nor left for the next
// answer on the connection.
TEST(ServerSentEvents, AKeepalivePieceSentInPartsKeepsTheStreamWhole) {
  App app;
  const std::string big(4 << 20, 'k');
  app.get("/big", [&big](const Request&, Ctx&) -> awaitable<Response> {
    auto n = std::make_shared<int>(0);
    Response response = Response::stream(
        [n]() -> awaitable<std::optional<std::string>> {
          if (*n == 2) co_return std::nullopt;
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 300ms);
          co_await timer.async_wait(boost::asio::use_awaitable);
          co_return "piece" + std::to_string((*n)++) + "\n";
        },
        "text/plain");
    response.set_stream_keepalive(20ms, big);
    co_return response;
  });
  app.get("/hi", [](const Request&, Ctx&) { return Response::text("hi"); });
  auto server = one_thread_server(app);
  testing::Client client(server->port());
  client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /hi HTTP/1.1\r\nHost: t\r\n\r\n");
  // Both answers, the first too large for parse_responses: its chunks decoded here.
  std::string raw;
  char chunk[65536];
  while (!raw.ends_with("\r\n\r\nhi")) {
    const ssize_t n = ::recv(client.fd(), chunk, sizeof(chunk), 0);
    ASSERT_GT(n, 0) << raw.size();
    raw.append(chunk, static_cast<std::size_t>(n));
  }
  std::size_t at = raw.find("\r\n\r\n") + 4;
  std::string body;
  while (true) {
    const std::size_t line_end = raw.find("\r\n", at);
    const std::size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    at = line_end + 2;
    if (size == 0) break;
    body.append(raw, at, size);
    ASSERT_EQ(raw.compare(at + size, 2, "\r\n"), 0) << "a chunk does not end where it says";
    at += size + 2;
  }
  ASSERT_EQ(raw.compare(at, 2, "\r\n"), 0);
  const auto answers = TestClient::parse_responses(std::string_view(raw).substr(at + 2));
  ASSERT_EQ(answers.size(), 1u);
  // Whole keep-alive pieces, then "piece0\n", more of them, then "piece1\n".
  const std::size_t first = body.find("piece0\n"), second = body.find("piece1\n");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_EQ(first % big.size(), 0u);
  EXPECT_EQ((second - first - 7) % big.size(), 0u);
  EXPECT_EQ(body.size(), second + 7);
  EXPECT_EQ(body.find_first_not_of('k', 0), first);
  EXPECT_EQ(answers[0].body, "hi");
  server->stop();
}

// A producer that throws what is no std::exception ends its stream and its pings as any
// failure does (the pings went on from a freed frame, and the connection stayed open).
TEST(ServerSentEvents, AProducerThrowingAnythingEndsItsPings) {
  App app;
  app.get("/odd", [](const Request&, Ctx&) -> awaitable<Response> {
    auto calls = std::make_shared<int>(0);
    co_return event_stream(
        [calls]() -> awaitable<std::optional<ServerSentEvent>> {
          if ((*calls)++ == 0) co_return ServerSentEvent{.data = "x"};
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 200ms);
          co_await timer.async_wait(boost::asio::use_awaitable);
          throw 42;
        },
        {.ping_interval = 20ms});
  });
  auto server = one_thread_server(app);
  testing::Client client(server->port());
  client.send("GET /odd HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string data;
  EXPECT_TRUE(client.ended_by_reset(data));  // cut short at once, as any failed stream
  EXPECT_NE(data.find("data: x"), std::string::npos);
  server->stop();
}

TEST(ServerSentEvents, AtShutdownAnEventStreamEndsAtOnceAndCleanly) {
  App app;
  app.get("/forever", ticks(1h, 50ms));
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.shutdown_grace = 10s;
  Server server(app, options);
  server.start();
  testing::Client client(server.port());
  client.send("GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string seen = until_a_ping(client);
  ASSERT_NE(seen, "");
  const auto before = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 3s);  // not the 10 s grace
  std::string rest;
  EXPECT_FALSE(client.ended_by_reset(rest));
  EXPECT_TRUE((seen + rest).ends_with("0\r\n\r\n")) << seen + rest;  // the chunked end
}

TEST(ServerSentEvents, AStreamWithKeepalivesIsNotCompressedAndAnEmptyPieceIsRefused) {
  App app;
  app.use(compression({.minimum_bytes = 1}));
  const auto lines = [](bool keepalive) -> Handler {
    return [keepalive](const Request&, Ctx&) -> awaitable<Response> {
      auto done = std::make_shared<bool>(false);
      Response response = Response::stream(
          [done]() -> awaitable<std::optional<std::string>> {
            if (std::exchange(*done, true)) co_return std::nullopt;
            co_return std::string("{\"n\":1}\n");
          },
          "application/x-ndjson");
      if (keepalive) response.set_stream_keepalive(1s, "\n");
      co_return response;
    };
  };
  app.get("/plain", lines(false));
  app.get("/kept", lines(true));
  TestClient client(app);
  EXPECT_EQ(client.get("/plain", {{"Accept-Encoding", "gzip"}}).header("Content-Encoding"), "gzip");
  const TestResponse kept = client.get("/kept", {{"Accept-Encoding", "gzip"}});
  EXPECT_FALSE(kept.header("Content-Encoding"));
  EXPECT_EQ(kept.body, "{\"n\":1}\n");
  Response response = Response::stream(
      []() -> awaitable<std::optional<std::string>> { co_return std::nullopt; }, "text/plain");
  EXPECT_THROW(response.set_stream_keepalive(1s, ""), std::invalid_argument);
}

}  // namespace
}  // namespace molt::web
