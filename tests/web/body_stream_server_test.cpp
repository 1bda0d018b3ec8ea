// Streamed request bodies on real sockets: backpressure reaches the client, a client that
// leaves or stalls cancels the read, `Expect: 100-continue` waits for the handler, and the
// connection stays usable (or closes cleanly) after a streamed request.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "socket_client.hpp"

namespace {

using namespace std::chrono_literals;
using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteOptions;
using molt::web::Server;
using molt::web::ServerOptions;
using molt::web::TestClient;
using molt::web::testing::Client;

constexpr std::uint64_t kLargeBody = 64ull << 20;
const RouteOptions kLargeStream{.max_body_bytes = kLargeBody, .stream_body = true};

std::atomic<std::size_t> first_piece{0};
std::atomic<bool> release{false};
std::atomic<int> read_stopped_by_disconnect{0};
std::atomic<int> late_reads_refused{0};
std::atomic<int> work_stopped_by_disconnect{0};
std::atomic<int> background_finished{0};
std::atomic<int> background_cancelled{0};
std::atomic<int> producer_stopped_by_disconnect{0};

awaitable<Response> count_rest(Ctx& ctx) {
  while (const auto piece = co_await ctx.body().next()) {
  }
  co_return Response::text(std::to_string(ctx.body().bytes_read()));
}

App& body_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.get("/hi",
            [](const Request&, Ctx&) -> awaitable<Response> { co_return Response::text("hi"); });
    app.post(
        "/count", [](const Request&, Ctx& ctx) { return count_rest(ctx); }, "count", kLargeStream);
    // Reads one piece, then stops reading until the test releases it.
    app.post(
        "/hold",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          const auto piece = co_await ctx.body().next();
          first_piece = piece ? piece->size() : 0;
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
          while (!release) {
            timer.expires_after(5ms);
            co_await timer.async_wait(boost::asio::use_awaitable);
          }
          co_return co_await count_rest(ctx);
        },
        "hold", kLargeStream);
    app.post(
        "/watched",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          try {
            co_return co_await count_rest(ctx);
          } catch (const std::exception&) {
            if (ctx.token().reason() == molt::core::CancelReason::Disconnected)
              ++read_stopped_by_disconnect;
            throw;
          }
        },
        "watched", kLargeStream);
    // Reads the body, then works for long.
    app.post(
        "/then-work",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          while (const auto piece = co_await ctx.body().next()) {
          }
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
          timer.expires_after(30s);
          try {
            co_await timer.async_wait(boost::asio::use_awaitable);
          } catch (const boost::system::system_error&) {
            if (ctx.token().reason() == molt::core::CancelReason::Disconnected)
              ++work_stopped_by_disconnect;
            throw;
          }
          co_return Response::text("worked");
        },
        "then-work", kLargeStream);
    // A streamed answer whose producer tries to read the body after the handler returned.
    app.post(
        "/late",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          co_return Response::stream(
              [&ctx]() -> awaitable<std::optional<std::string>> {
                try {
                  (void)co_await ctx.body().next();  // refused: the handler has returned
                } catch (const std::logic_error&) {
                  ++late_reads_refused;
                }
                co_return std::nullopt;
              },
              "text/plain");
        },
        "late", kLargeStream);
    // Refuses at once and leaves background work (which follows the request's token) to run.
    app.post(
        "/refuse-and-spawn",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          ctx.spawn([](molt::core::CancelToken) -> awaitable<void> {
            boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
            timer.expires_after(300ms);
            try {
              co_await timer.async_wait(boost::asio::use_awaitable);
              ++background_finished;
            } catch (const boost::system::system_error&) {
              ++background_cancelled;
            }
          });
          co_return Response::error(401, "unauthorized", "a token is required");
        },
        "refuse-and-spawn", kLargeStream);
    // Streams an answer without reading the body: a first piece, then a long wait.
    app.post(
        "/stream-unread",
        [](const Request&, Ctx&) -> awaitable<Response> {
          auto sent = std::make_shared<bool>(false);
          co_return Response::stream(
              [sent]() -> awaitable<std::optional<std::string>> {
                if (!std::exchange(*sent, true)) co_return std::string("first");
                boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
                timer.expires_after(30s);
                try {
                  co_await timer.async_wait(boost::asio::use_awaitable);
                } catch (const boost::system::system_error&) {
                  ++producer_stopped_by_disconnect;
                  throw;
                }
                co_return std::nullopt;
              },
              "text/plain");
        },
        "stream-unread", kLargeStream);
    // Answers with the first piece of the body, as soon as it comes.
    app.post(
        "/first",
        [](const Request&, Ctx& ctx) -> awaitable<Response> {
          const auto piece = co_await ctx.body().next();
          co_return Response::text(piece ? std::string(*piece) : std::string("none"));
        },
        "first", kLargeStream);
    app.post(
        "/reject",
        [](const Request&, Ctx&) -> awaitable<Response> {
          co_return Response::error(401, "unauthorized", "a token is required");
        },
        "reject", kLargeStream);
    ready = true;
  }
  return app;
}

ServerOptions local() {
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  return options;
}

std::string post_head(std::string_view target, std::uint64_t length, std::string_view extra = "") {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
}

// Writes `total` bytes without blocking until the writes make no progress for 300 ms (the
// socket buffers on both sides are full); returns how many were written.
std::uint64_t write_until_blocked(int fd, std::uint64_t total) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  const std::string block(64 * 1024, 'x');
  std::uint64_t written = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (written < total && std::chrono::steady_clock::now() - last_progress < 300ms) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), total - written));
    const ssize_t sent = ::send(fd, block.data(), n, MSG_NOSIGNAL);
    if (sent > 0) {
      written += static_cast<std::uint64_t>(sent);
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  ::fcntl(fd, F_SETFL, flags);
  return written;
}

void send_filler(Client& client, std::uint64_t bytes) {
  const std::string block(64 * 1024, 'x');
  while (bytes > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), bytes));
    client.send(std::string_view(block).substr(0, n));
    bytes -= n;
  }
}

TEST(BodyStreamServerTest, AHandlerThatStopsReadingStopsTheClient) {
  Server server(body_app(), local());
  server.start();
  first_piece = 0;
  release = false;
  Client client(server.port());
  const int small = 64 * 1024;
  ::setsockopt(client.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  client.send(post_head("/hold", kLargeBody));
  const std::uint64_t written = write_until_blocked(client.fd(), kLargeBody);
  // The client is held back by the kernel's buffers, a few MB at most: the server took no
  // more than the piece its handler asked for (64 MB if it read the body regardless).
  EXPECT_LT(written, 8ull << 20);
  EXPECT_GT(first_piece.load(), 0u);
  EXPECT_LE(first_piece.load(), molt::web::Limits{}.stream_buffer_bytes);
  release = true;  // the handler reads on, and the client can send the rest
  send_filler(client, kLargeBody - written);
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].body, std::to_string(kLargeBody));
  server.stop();
}

TEST(BodyStreamServerTest, AClientThatLeavesMidBodyCancelsThePendingRead) {
  Server server(body_app(), local());
  server.start();
  read_stopped_by_disconnect = 0;
  {
    Client leaving(server.port());
    leaving.send(post_head("/watched", 1000) + "only ten b");
    std::this_thread::sleep_for(100ms);  // the handler waits in next()
  }
  for (int i = 0; i < 200 && read_stopped_by_disconnect == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(read_stopped_by_disconnect.load(), 1);
  for (int i = 0; i < 100 && server.open_connections() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.open_connections(), 0u);
  server.stop();
}

// Found by a review: a client that left mid-body was logged 400 (its next() throws "cut
// short"), not the 499 of a client that went away.
TEST(BodyStreamServerTest, AClientThatLeavesMidBodyIsLogged499) {
  std::mutex mutex;
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::access_log([&](std::string_view line) {
    const std::lock_guard lock(mutex);
    lines.emplace_back(line);
  }));
  app.post(
      "/count", [](const Request&, Ctx& ctx) { return count_rest(ctx); }, "count", kLargeStream);
  Server server(app, local());
  server.start();
  {
    Client leaving(server.port());
    leaving.send(post_head("/count", 1000) + "only ten b");
    std::this_thread::sleep_for(100ms);  // the handler waits in next()
  }
  for (int i = 0; i < 200 && server.open_connections() > 0; ++i) std::this_thread::sleep_for(10ms);
  server.stop();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("status":499)"), std::string::npos) << lines[0];
}

TEST(BodyStreamServerTest, AClientThatLeavesAfterTheBodyCancelsTheWorkAfterIt) {
  Server server(body_app(), local());
  server.start();
  work_stopped_by_disconnect = 0;
  {
    Client leaving(server.port());
    leaving.send(post_head("/then-work", 50'000) + std::string(50'000, 'w'));
    std::this_thread::sleep_for(100ms);  // the body is read; the handler works
  }
  for (int i = 0; i < 200 && work_stopped_by_disconnect == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(work_stopped_by_disconnect.load(), 1);  // not 30 s later
  server.stop();
}

// The client's delay, not the handler's: 408 (it was a 504, as for a handler out of time).
TEST(BodyStreamServerTest, TheRequestTimeoutCoversTheBody) {
  ServerOptions options = local();
  options.limits.request_timeout = 300ms;
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  const auto start = std::chrono::steady_clock::now();
  client.send(post_head("/count", 1000) + "only ten b");  // and the rest never comes
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 408);
  EXPECT_NE(answers[0].body.find("did not arrive in time"), std::string::npos) << answers[0].body;
  EXPECT_EQ(answers[0].header("Connection"), "close");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  server.stop();
}

// An upload that trickles in (a byte now and then, each within request_timeout) held its
// connection for ever: below the minimum rate, once past its grace, it ends with a 408.
TEST(BodyStreamServerTest, ABodySlowerThanTheMinimumRateEnds) {
  ServerOptions options = local();
  options.limits.min_body_rate = 1000;
  options.limits.min_body_rate_grace = 300ms;
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  const auto start = std::chrono::steady_clock::now();
  client.send(post_head("/count", 1000) + std::string(100, 'x'));
  std::string received;
  for (int i = 0; i < 40 && received.empty(); ++i) {  // 10 bytes a second, for up to 4 s
    std::this_thread::sleep_for(100ms);
    ::send(client.fd(), "x", 1, MSG_NOSIGNAL);
    char head[512];
    const ssize_t n = ::recv(client.fd(), head, sizeof(head), MSG_DONTWAIT);
    if (n > 0) received.assign(head, static_cast<std::size_t>(n));
  }
  received += client.receive(1);
  const auto answers = TestClient::parse_responses(received);
  ASSERT_EQ(answers.size(), 1u) << received;
  EXPECT_EQ(answers[0].status, 408);
  EXPECT_NE(answers[0].body.find("too slowly (under 1000 bytes a second)"), std::string::npos)
      << answers[0].body;
  EXPECT_EQ(answers[0].header("Connection"), "close");
  // 100 bytes earn 0.1 s of waiting, past the grace of 0.3 s: it ends near 0.3 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  server.stop();
}

TEST(BodyStreamServerTest, ABodyAtTheMinimumRateGoesOn) {
  ServerOptions options = local();
  options.limits.min_body_rate = 100;
  options.limits.min_body_rate_grace = 500ms;  // then a piece's wait never falls below it
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  client.send(post_head("/count", 300));
  for (int i = 0; i < 15; ++i) {  // 200 bytes a second, for 1.5 s
    std::this_thread::sleep_for(100ms);
    client.send(std::string(20, 'x'));
  }
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200);
  EXPECT_EQ(answers[0].body, "300");
  server.stop();
}

// The rate counts the time the server waited for the body, not the handler's own time
// between reads: a handler that works on each piece for a while does not make it slow.
TEST(BodyStreamServerTest, TheMinimumRateCountsOnlyTheWaitForTheClient) {
  App app;
  app.post(
      "/ponder",
      [](const Request&, Ctx& ctx) -> awaitable<Response> {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        while (const auto piece = co_await ctx.body().next()) {
          timer.expires_after(300ms);
          co_await timer.async_wait(boost::asio::use_awaitable);
        }
        co_return Response::text(std::to_string(ctx.body().bytes_read()));
      },
      "ponder", kLargeStream);
  ServerOptions options = local();
  options.limits.min_body_rate = 1000;
  options.limits.min_body_rate_grace = 200ms;
  Server server(app, options);
  server.start();
  Client client(server.port());
  client.send(post_head("/ponder", 100));
  for (int i = 0; i < 10; ++i) {  // 100 bytes a second over the wall clock
    client.send(std::string(10, 'x'));
    std::this_thread::sleep_for(100ms);
  }
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200) << answers[0].body;
  EXPECT_EQ(answers[0].body, "100");
  server.stop();
}

// A streamed body that keeps coming is not cut at the request timeout: each piece gives it
// the time afresh (an import slower than its size over 30 s was cut with a 504).
TEST(BodyStreamServerTest, AStreamedBodyThatKeepsComingOutlastsTheRequestTimeout) {
  ServerOptions options = local();
  options.limits.request_timeout = 300ms;
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  client.send(post_head("/count", 10));
  for (int i = 0; i < 10; ++i) {  // a byte every 100 ms: a second in all
    std::this_thread::sleep_for(100ms);
    client.send("x");
  }
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200);
  EXPECT_EQ(answers[0].body, "10");
  server.stop();
}

TEST(BodyStreamServerTest, ShutdownCancelsAReadThatOutlastsTheGrace) {
  ServerOptions options = local();
  options.shutdown_grace = 200ms;
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  client.send(post_head("/count", 1000) + "only ten b");  // the handler waits in next()
  std::this_thread::sleep_for(50ms);
  const auto start = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(server.open_connections(), 0u);
}

TEST(BodyStreamServerTest, AnEarlyAnswerReachesAClientStillSending) {
  Server server(body_app(), local());
  server.start();
  Client client(server.port());
  client.send(post_head("/reject", 8 << 20) + std::string(64 * 1024, 'x'));
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 401);
  EXPECT_EQ(answers[0].header("Connection"), "close");
  // Answered, the server reads and drops what still comes for a while: a client that has
  // not noticed the answer yet can finish its writes, rather than meet a reset.
  send_filler(client, (8 << 20) - 64 * 1024);  // more than the socket buffers hold
  ::shutdown(client.fd(), SHUT_WR);
  EXPECT_TRUE(client.closed_by_peer());
  server.stop();
}

// The same for a request refused from its header (413 here): before the server closes, it
// reads and drops what the client still sends, or the close would reset the connection and
// could destroy the answer before the client reads it.
TEST(BodyStreamServerTest, ARefusedRequestsAnswerReachesAClientStillSendingItsBody) {
  App app;
  app.post("/small",
           [](const Request&, Ctx&) -> awaitable<Response> { co_return Response::text("taken"); },
           "small", {.max_body_bytes = 1024});
  Server server(app, local());
  server.start();
  Client client(server.port());
  client.send(post_head("/small", 8 << 20));
  send_filler(client, 8 << 20);  // more than the socket buffers hold: it must be read
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 413);
  ::shutdown(client.fd(), SHUT_WR);
  EXPECT_TRUE(client.closed_by_peer());
  server.stop();
}

// Found by an adversarial review of the gateway: with a little of the body left, the answer
// waited for the client to send it, and a client that paused its upload to wait for the
// answer got it only at the request timeout. The answer goes first; the rest is dropped after
// it, and the connection goes on.
TEST(BodyStreamServerTest, AnEarlyAnswerReachesAClientThatPausedItsUpload) {
  Server server(body_app(), local());
  server.start();
  Client client(server.port());
  client.send(post_head("/reject", 60) + "0123456789");
  const auto start = std::chrono::steady_clock::now();
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 401);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(answers[0].header("Connection"), std::nullopt);  // kept: the rest is little
  client.send(std::string(50, 'r') + "GET /hi HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto next = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].body, "hi");
  server.stop();
}

// From a review of the above: a connection that closes after its answer does not wait for a
// little rest of the body (it lingers as any closing connection does); a client that closes
// instead of sending the rest does not cancel the request's background work; and a streamed
// answer is still watched for a client that leaves while a rest is due.
TEST(BodyStreamServerTest, ALittleRestNeitherHoldsAClosingConnectionNorCancelsWhatFollows) {
  Server server(body_app(), local());
  server.start();
  {
    Client closing(server.port());
    closing.send(post_head("/reject", 60, "Connection: close\r\n") + "0123456789");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(closing.receive_until_closed().rfind("HTTP/1.1 401 ", 0), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);  // not the request timeout
  }
  background_finished = 0;
  background_cancelled = 0;
  {
    Client leaving(server.port());
    leaving.send(post_head("/refuse-and-spawn", 60) + "0123456789");
    EXPECT_EQ(TestClient::parse_responses(leaving.receive(1)).size(), 1u);
  }  // closes instead of sending the rest
  for (int i = 0; i < 200 && background_finished + background_cancelled == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(background_finished.load(), 1);
  EXPECT_EQ(background_cancelled.load(), 0);
  producer_stopped_by_disconnect = 0;
  {
    Client leaving(server.port());
    leaving.send(post_head("/stream-unread", 60) + "0123456789");
    EXPECT_NE(leaving.receive_head().find("HTTP/1.1 200 "), std::string::npos);
    std::this_thread::sleep_for(50ms);
  }  // leaves while the producer waits
  for (int i = 0; i < 200 && producer_stopped_by_disconnect == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(producer_stopped_by_disconnect.load(), 1);  // not 30 s later
  server.stop();
}

// From a review: while the little rest of a body is awaited after an answer that is all
// out, a timeout closed the connection with a reset, as if that answer had been cut short
// (a reset can throw away answer bytes still on their way). It is a plain close.
TEST(BodyStreamServerTest, ARestThatNeverComesAfterAWholeAnswerEndsWithAClose) {
  ServerOptions options = local();
  options.limits.request_timeout = 300ms;
  Server server(body_app(), options);
  server.start();
  Client client(server.port());
  client.send(post_head("/reject", 60) + "0123456789");  // and the rest never comes
  std::string data = client.receive(1);
  EXPECT_EQ(data.rfind("HTTP/1.1 401 ", 0), 0u) << data;
  char chunk[4096];
  ssize_t n;
  while ((n = ::recv(client.fd(), chunk, sizeof(chunk), 0)) > 0) data.append(chunk, n);
  EXPECT_EQ(n, 0) << "errno " << errno;  // a close, not a reset
  server.stop();
}

TEST(BodyStreamServerTest, TheBodyIsNotReadAfterTheHandlerReturned) {
  Server server(body_app(), local());
  server.start();
  late_reads_refused = 0;
  Client client(server.port());
  client.send(post_head("/late", 100'000) + std::string(1000, 'x'));
  const auto answers = TestClient::parse_responses(client.receive(1));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].header("Connection"), "close");  // the rest was left unread
  EXPECT_EQ(late_reads_refused.load(), 1);
  server.stop();
}

TEST(BodyStreamServerTest, ContinueComesOnlyWhenTheHandlerReads) {
  Server server(body_app(), local());
  server.start();
  const std::string expect = "Expect: 100-continue\r\n";
  {
    Client client(server.port());
    client.send(post_head("/count", 5, expect));
    char buffer[256];
    const ssize_t n = ::recv(client.fd(), buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
    client.send("hello");
    const auto answers = TestClient::parse_responses(client.receive(1));
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].body, "5");
  }
  {
    Client client(server.port());
    client.send(post_head("/reject", 5, expect));
    const std::string raw = client.receive(1);
    EXPECT_EQ(raw.rfind("HTTP/1.1 401", 0), 0u) << raw;  // no 100 before it
  }
  server.stop();
}

// A chunk's data of under 5 bytes, sent apart from its size line, reaches the handler at once:
// the parser holds back short pieces only after a last chunk (for Beast's trailer parser).
TEST(BodyStreamServerTest, ATinyChunkSentAloneReachesTheHandler) {
  Server server(body_app(), local());
  server.start();
  for (const std::string_view size_line : {"3\r\n", "03\r\n"}) {
    Client client(server.port());
    client.send("POST /first HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                std::string(size_line));
    std::this_thread::sleep_for(50ms);  // the size line is read on its own
    client.send("abc");  // and the client waits for the answer before it sends the rest
    const auto answers = TestClient::parse_responses(client.receive(1));
    ASSERT_EQ(answers.size(), 1u) << size_line;
    EXPECT_EQ(answers[0].body, "abc");
  }
  server.stop();
}

TEST(BodyStreamServerTest, APipelinedRequestAfterAStreamedOneIsAnswered) {
  Server server(body_app(), local());
  server.start();
  Client client(server.port());
  client.send(post_head("/count", 100'000) + std::string(100'000, 'z') +
              "GET /hi HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto answers = TestClient::parse_responses(client.receive(2));
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].body, "100000");
  EXPECT_EQ(answers[1].body, "hi");
  server.stop();
}

}  // namespace
