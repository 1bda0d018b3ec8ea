// Streamed request bodies (RouteOptions::stream_body) through the TestClient: the server's own
// reader and parser, with the input handed over in small reads as from a socket.
#include <gtest/gtest.h>

#include <boost/describe/class.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "molt/web/app.hpp"
#include "molt/web/test_client.hpp"
#include "molt/web/typed.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Limits;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteOptions;
using molt::web::TestClient;

struct Point {
  int x = 0;
  int y = 0;
};
BOOST_DESCRIBE_STRUCT(Point, (), (x, y))

const RouteOptions kStream{.stream_body = true};

// "<pieces>:<body>" of the body, read to its end with ctx.body().
awaitable<Response> pieces(const Request&, Ctx& ctx) {
  int count = 0;
  std::string body;
  while (const auto piece = co_await ctx.body().next()) {
    ++count;
    body.append(*piece);
  }
  if (!ctx.body().finished() || ctx.body().bytes_read() != body.size())
    co_return Response::text("bad accounting", 500);
  co_return Response::text(std::to_string(count) + ":" + body);
}

App& stream_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.get("/hi",
            [](const Request&, Ctx&) -> awaitable<Response> { co_return Response::text("hi"); });
    app.post(
        "/pieces",
        [](const Request& request, Ctx& ctx) -> awaitable<Response> {
          // Nothing was read before the handler (a request without a body has none to stream).
          if (request.body_streamed() != ctx.body().streamed() || !request.body().empty())
            co_return Response(500);
          co_return co_await pieces(request, ctx);
        },
        "pieces", kStream);
    app.post("/small", pieces, "small", {.max_body_bytes = 100, .stream_body = true});
    // Answers before reading anything: a client that must authenticate first.
    app.post("/reject",
             [](const Request&, Ctx&) -> awaitable<Response> {
               co_return Response::error(401, "unauthorized", "a token is required");
             },
             "reject", {.max_body_bytes = 1 << 20, .stream_body = true});
    // Reads one piece, then answers.
    app.post("/first",
             [](const Request&, Ctx& ctx) -> awaitable<Response> {
               const auto piece = co_await ctx.body().next();
               co_return Response::text(std::string(piece.value_or("")));
             },
             "first", {.max_body_bytes = 1 << 20, .stream_body = true});
    app.post(
        "/typed",
        [](const Request& request, Ctx&) -> awaitable<Response> {
          co_return molt::web::json(molt::web::body_as<Point>(request));
        },
        "typed", kStream);
    app.post(
        "/collected",
        [](const Request& request, Ctx& ctx) -> awaitable<Response> {
          const std::string body = co_await ctx.body().read_all();
          co_return molt::web::json(molt::web::body_as<Point>(request, body));
        },
        "collected", kStream);
    // Whether the connection stays open, told before the body is read.
    app.post(
        "/keep-alive",
        [](const Request& request, Ctx& ctx) -> awaitable<Response> {
          const bool before = request.keep_alive();
          const std::string body = co_await ctx.body().read_all();
          co_return Response::text(std::string(before ? "yes" : "no") + ":" + body);
        },
        "keep-alive", kStream);
    // Not streamed: the same calls give the body read before the handler, in one piece.
    app.post("/whole", [](const Request& request, Ctx& ctx) -> awaitable<Response> {
      if (request.body_streamed() || ctx.body().streamed()) co_return Response(500);
      co_return co_await pieces(request, ctx);
    });
    ready = true;
  }
  return app;
}

}  // namespace

namespace {

std::string post(std::string_view target, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

std::string post_chunked(std::string_view target, const std::vector<std::string>& chunks,
                         bool last = true) {
  std::string out =
      "POST " + std::string(target) + " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const auto& chunk : chunks) {
    char size[20];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    out += size + chunk + "\r\n";
  }
  if (last) out += "0\r\n\r\n";
  return out;
}

const std::string kHi = "GET /hi HTTP/1.1\r\nHost: t\r\n\r\n";

TEST(BodyStreamTest, PiecesArriveInOrderAndComplete) {
  TestClient client(stream_app());
  client.set_read_size(7);
  const std::string body = "the quick brown fox jumps over the lazy dog";
  const auto answers = TestClient::parse_responses(client.raw(post("/pieces", body)));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200);
  const auto colon = answers[0].body.find(':');
  EXPECT_GT(std::stoi(answers[0].body.substr(0, colon)), 3);  // several pieces, not one
  EXPECT_EQ(answers[0].body.substr(colon + 1), body);         // all of it, in order
}

TEST(BodyStreamTest, PiecesAreAsLargeAsTheStreamBufferWhateverTheHeader) {
  Limits limits;
  limits.stream_buffer_bytes = 4096;
  TestClient client(stream_app(), limits);
  const std::string body(40'000, 'b');
  const std::string header = "X-Padding: " + std::string(8000, 'p') + "\r\n";
  const auto answers = TestClient::parse_responses(client.raw(post("/pieces", body, header)));
  ASSERT_EQ(answers.size(), 1u);
  const std::string& text = answers[0].body;
  EXPECT_EQ(text.substr(text.find(':') + 1), body);
  // 40,000 bytes in pieces of at most 4096 (the first may be smaller): 10 or 11 of them.
  EXPECT_LE(std::stoi(text.substr(0, text.find(':'))), 11);
  EXPECT_GE(std::stoi(text.substr(0, text.find(':'))), 10);
}

TEST(BodyStreamTest, ChunkedBodiesStreamChunkByChunk) {
  TestClient client(stream_app());
  const auto answers = TestClient::parse_responses(
      client.raw(post_chunked("/pieces", {"alpha-", "beta-", "gamma"})));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].body, "3:alpha-beta-gamma");  // one piece per chunk, in order
  client.set_read_size(3);                           // chunk headers split across reads too
  const auto split = TestClient::parse_responses(
      client.raw(post_chunked("/pieces", {"alpha-", "beta-", "gamma"})));
  ASSERT_EQ(split.size(), 1u);
  EXPECT_EQ(split[0].body.substr(split[0].body.find(':') + 1), "alpha-beta-gamma");
}

TEST(BodyStreamTest, RequestsWithoutABodyAndUnstreamedRoutesReadTheSameWay) {
  TestClient client(stream_app());
  EXPECT_EQ(client.request("POST", "/pieces").body, "0:");
  EXPECT_EQ(client.request("POST", "/whole", "all of it").body, "1:all of it");
  EXPECT_EQ(client.request("POST", "/whole").body, "0:");
}

TEST(BodyStreamTest, PastTheLimitMidStreamIs413AndTheConnectionCloses) {
  TestClient client(stream_app());
  // Chunked: the limit is crossed while the handler reads.
  const std::string raw =
      client.raw(post_chunked("/small", {std::string(60, 'a'), std::string(60, 'b')}) + kHi);
  const auto answers = TestClient::parse_responses(raw);
  ASSERT_EQ(answers.size(), 1u);  // the pipelined GET is never read
  EXPECT_EQ(answers[0].status, 413);
  EXPECT_EQ(answers[0].header("Connection"), "close");
  EXPECT_NE(answers[0].body.find("payload_too_large"), std::string::npos);
  // A declared length over the limit is refused before the handler runs.
  EXPECT_EQ(client.request("POST", "/small", std::string(101, 'x')).status, 413);
  EXPECT_EQ(client.request("POST", "/small", std::string(100, 'x')).status, 200);
}

TEST(BodyStreamTest, AMalformedOrCutShortBodyIs400) {
  TestClient client(stream_app());
  const auto bad = TestClient::parse_responses(
      client.raw("POST /pieces HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\nzz\r\n"));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].status, 400);
  const auto cut = TestClient::parse_responses(
      client.raw("POST /pieces HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\nonly this"));
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].status, 400);
  EXPECT_NE(cut[0].body.find("ended early"), std::string::npos);
}

TEST(BodyStreamTest, AnEarlyAnswerSkipsASmallRemainderAndKeepsTheConnection) {
  TestClient client(stream_app());
  client.set_read_size(64);
  const auto answers =
      TestClient::parse_responses(client.raw(post("/reject", std::string(5000, 'x')) + kHi));
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status, 401);
  EXPECT_FALSE(answers[0].header("Connection").has_value());
  EXPECT_EQ(answers[1].body, "hi");  // the body's bytes were not taken for a request
  // A handler that read a piece and left the rest.
  const auto partly =
      TestClient::parse_responses(client.raw(post("/first", std::string(5000, 'y')) + kHi));
  ASSERT_EQ(partly.size(), 2u);
  EXPECT_FALSE(partly[0].body.empty());
  EXPECT_EQ(partly[0].body, std::string(partly[0].body.size(), 'y'));
  EXPECT_FALSE(partly[0].header("Connection").has_value());
  EXPECT_EQ(partly[1].body, "hi");
}

// What is left counts, not the declared length: a body over 64 KiB of which the handler read
// enough is skipped too.
TEST(BodyStreamTest, WhatIsLeftOfTheBodyDecidesWhetherItIsSkipped) {
  molt::web::Limits limits;
  limits.initial_buffer_bytes = 16 * 1024;  // the first piece: about 16 KiB of the 70,000
  TestClient client(stream_app(), limits);
  client.set_read_size(16 * 1024);
  const auto answers =
      TestClient::parse_responses(client.raw(post("/first", std::string(70'000, 'y')) + kHi));
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_FALSE(answers[0].header("Connection").has_value());
  EXPECT_EQ(answers[1].body, "hi");
}

TEST(BodyStreamTest, AnEarlyAnswerToALargeOrEndlessBodyClosesTheConnection) {
  TestClient client(stream_app());
  client.set_read_size(1024);
  const auto large =
      TestClient::parse_responses(client.raw(post("/reject", std::string(200'000, 'x')) + kHi));
  ASSERT_EQ(large.size(), 1u);
  EXPECT_EQ(large[0].status, 401);
  EXPECT_EQ(large[0].header("Connection"), "close");
  // Chunked, with its end not in sight: nothing tells how much is left.
  const auto chunked =
      TestClient::parse_responses(client.raw(post_chunked("/first", {"one", "two"}, false) + kHi));
  ASSERT_EQ(chunked.size(), 1u);
  EXPECT_EQ(chunked[0].body, "one");
  EXPECT_EQ(chunked[0].header("Connection"), "close");
}

TEST(BodyStreamTest, ContinueIsSentOnlyWhenTheHandlerAsksForTheBody) {
  TestClient client(stream_app());
  const std::string expect = "Expect: 100-continue\r\n";
  const std::string read = client.raw(post("/pieces", "data", expect));
  EXPECT_EQ(read.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 0), 0u) << read;
  // Rejected before reading: the client is never told to send, and the connection closes
  // (the client may or may not send the body anyway).
  const std::string rejected = client.raw(post("/reject", "data", expect) + kHi);
  EXPECT_EQ(rejected.find("100 Continue"), std::string::npos);
  const auto answers = TestClient::parse_responses(rejected);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 401);
  EXPECT_EQ(answers[0].header("Connection"), "close");
}

TEST(BodyStreamTest, PipelinedRequestsAfterAStreamedOneAreAnswered) {
  TestClient client(stream_app());
  client.set_read_size(5);
  const auto answers = TestClient::parse_responses(
      client.raw(post("/pieces", "first body") + post_chunked("/pieces", {"second", "-body"}) +
                 kHi + post("/whole", "third")));
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0].body.substr(answers[0].body.find(':') + 1), "first body");
  EXPECT_EQ(answers[1].body.substr(answers[1].body.find(':') + 1), "second-body");
  EXPECT_EQ(answers[2].body, "hi");
  EXPECT_EQ(answers[3].body, "1:third");
}

TEST(BodyStreamTest, KeepAliveIsKnownBeforeTheBodyIsRead) {
  TestClient client(stream_app());
  EXPECT_EQ(client.request("POST", "/keep-alive", "x").body, "yes:x");
  const auto closing = client.request("POST", "/keep-alive", "x", {{"Connection", "close"}});
  EXPECT_EQ(closing.body, "no:x");
  EXPECT_EQ(closing.header("Connection"), "close");
  const auto answers = TestClient::parse_responses(client.raw(
      "POST /keep-alive HTTP/1.0\r\nContent-Length: 2\r\n\r\nabGET /hi HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(answers.size(), 1u);  // HTTP/1.0 closes after the answer
  EXPECT_EQ(answers[0].body, "no:ab");
}

TEST(BodyStreamTest, WholeBodyAccessorsOnAStreamedRoute) {
  TestClient client(stream_app());
  const TestClient::Headers json = {{"Content-Type", "application/json"}};
  // body_as(request) has no body to decode there: a programming error, not a client's.
  EXPECT_EQ(client.request("POST", "/typed", R"({"x":1,"y":2})", json).status, 500);
  // Collected within the limit, then decoded.
  const auto collected = client.request("POST", "/collected", R"({"x":1,"y":2})", json);
  EXPECT_EQ(collected.status, 200);
  EXPECT_EQ(collected.body, R"({"x":1,"y":2})");
  EXPECT_EQ(client.request("POST", "/collected", R"({"x":"one"})", json).status, 400);
}

}  // namespace
