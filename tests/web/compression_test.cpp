#include "molt/web/compression.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "molt/web/static_files.hpp"
#include "molt/web/test_client.hpp"

namespace molt::web {
namespace {

using boost::asio::awaitable;

// `gzip` inflated back (a gzip stream, as a browser reads it); throws if it is not one.
std::string gunzip(const std::string& gzip) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzip.data()));
  stream.avail_in = static_cast<uInt>(gzip.size());
  std::string out;
  char buffer[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  inflateEnd(&stream);
  if (rc != Z_STREAM_END) throw std::runtime_error("not a whole gzip stream");
  return out;
}

const std::string kJsonBody = [] {
  std::string body = "[";
  for (int i = 0; i < 200; ++i) body += R"({"id":)" + std::to_string(i) + R"(,"title":"item"},)";
  body.back() = ']';
  return body;
}();

struct CompressedApp {
  App app;
  CompressedApp() {
    app.use(compression());
    app.get("/json", [](const Request&, Ctx&) { return Response::json_text(kJsonBody); });
    app.get("/small", [](const Request&, Ctx&) { return Response::json_text(R"({"ok":true})"); });
    app.get("/png", [](const Request&, Ctx&) {
      return Response(200, std::string(4096, 'x'), "image/png");
    });
    app.get("/tagged", [](const Request& request, Ctx&) {
      Response response = Response::text(std::string(4096, 'a'));
      response.set_header("ETag", "\"v1\"");
      response.add_vary("Accept");
      (void)request;
      return response;
    });
    app.get("/encoded", [](const Request&, Ctx&) {
      Response response = Response::text(std::string(4096, 'a'));
      response.set_header("Content-Encoding", "br");
      return response;
    });
    app.get("/partial", [](const Request&, Ctx&) {
      Response response(206, std::string(4096, 'a'), "text/plain");
      response.set_header("Content-Range", "bytes 0-4095/10000");
      return response;
    });
    app.get("/lines", [](const Request&, Ctx&) -> awaitable<Response> {
      auto left = std::make_shared<int>(50);
      Response response = Response::stream(
          [left]() -> awaitable<std::optional<std::string>> {
            if (*left == 0) co_return std::nullopt;
            co_return "line " + std::to_string((*left)--) + " of the stream\n";
          },
          "application/x-ndjson");
      response.set_stream_length(0);  // a wrong length: compression drops it
      co_return response;
    });
    app.get("/events", [](const Request&, Ctx&) -> awaitable<Response> {
      co_return Response::stream(
          []() -> awaitable<std::optional<std::string>> { co_return std::nullopt; },
          "text/event-stream");
    });
  }
};

TEST(Compression, AJsonAnswerIsGzippedForAClientThatTakesIt) {
  CompressedApp fixture;
  TestClient client(fixture.app);
  const auto answer = client.get("/json", {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("Content-Encoding"), "gzip");
  EXPECT_EQ(answer.header("Vary"), "Accept-Encoding");
  EXPECT_LT(answer.body.size(), kJsonBody.size() / 4);
  EXPECT_EQ(gunzip(answer.body), kJsonBody);
  EXPECT_EQ(answer.header("Content-Length"), std::to_string(answer.body.size()));
  // HEAD says the same length as GET.
  const auto head = client.request("HEAD", "/json", {}, {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(head.header("Content-Length"), answer.header("Content-Length"));
}

TEST(Compression, OnlyWhenTheClientTakesIt) {
  CompressedApp fixture;
  TestClient client(fixture.app);
  for (const char* accept : {"identity", "gzip;q=0", "br", "*;q=0", "gzip;q=x", "GZIP;q=0"}) {
    const auto answer = client.get("/json", {{"Accept-Encoding", accept}});
    EXPECT_FALSE(answer.header("Content-Encoding")) << accept;
    EXPECT_EQ(answer.body, kJsonBody) << accept;
    EXPECT_EQ(answer.header("Vary"), "Accept-Encoding") << accept;  // caches keep them apart
  }
  EXPECT_EQ(client.get("/json").body, kJsonBody);  // no Accept-Encoding: as it is
  for (const char* accept : {"*", "br;q=1, *;q=0.5", "x-gzip", "deflate, GZip;q=0.3"})
    EXPECT_EQ(client.get("/json", {{"Accept-Encoding", accept}}).header("Content-Encoding"), "gzip")
        << accept;
  // Several Accept-Encoding lines are one list.
  EXPECT_EQ(client.get("/json", {{"Accept-Encoding", "br"}, {"Accept-Encoding", "gzip"}})
                .header("Content-Encoding"),
            "gzip");
}

TEST(Compression, WhatWouldNotShrinkOrMustNotChangeGoesAsItIs) {
  CompressedApp fixture;
  TestClient client(fixture.app);
  const TestClient::Headers gzip{{"Accept-Encoding", "gzip"}};
  EXPECT_FALSE(client.get("/small", gzip).header("Content-Encoding"));  // under 500 bytes
  EXPECT_FALSE(client.get("/png", gzip).header("Content-Encoding"));
  EXPECT_FALSE(client.get("/png", gzip).header("Vary"));
  EXPECT_EQ(client.get("/encoded", gzip).header("Content-Encoding"), "br");
  const auto partial = client.get("/partial", gzip);
  EXPECT_FALSE(partial.header("Content-Encoding"));
  EXPECT_EQ(partial.body.size(), 4096u);
  EXPECT_FALSE(client.get("/events", gzip).header("Content-Encoding"));
  EXPECT_EQ(client.get("/missing", gzip).status, 404);
}

TEST(Compression, AStrongETagBecomesWeakAndVaryKeepsWhatItHad) {
  CompressedApp fixture;
  TestClient client(fixture.app);
  const auto answer = client.get("/tagged", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(answer.header("ETag"), "W/\"v1\"");
  EXPECT_EQ(answer.header("Vary"), "Accept, Accept-Encoding");
  EXPECT_EQ(client.get("/tagged").header("ETag"), "\"v1\"");
}

TEST(Compression, AStreamIsCompressedPieceByPiece) {
  CompressedApp fixture;
  TestClient client(fixture.app);
  const auto answer = client.get("/lines", {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("Content-Encoding"), "gzip");
  EXPECT_EQ(answer.header("Transfer-Encoding"), "chunked");  // its declared length is gone
  std::string expected;
  for (int i = 50; i > 0; --i) expected += "line " + std::to_string(i) + " of the stream\n";
  EXPECT_EQ(gunzip(answer.body), expected);
}

TEST(Compression, A304CarriesTheVaryAndETagOfThe200ItStandsFor) {
  const auto folder =
      std::filesystem::temp_directory_path() / ("molt-gzip-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "page.html") << std::string(4096, 'p');
  App app;
  app.use(compression());
  serve_files(app, "/static", folder);
  TestClient client(app);
  const TestClient::Headers gzip{{"Accept-Encoding", "gzip"}};
  const auto page = client.get("/static/page.html", gzip);
  EXPECT_EQ(page.header("Content-Encoding"), "gzip");
  const std::string etag = page.header("ETag").value();
  EXPECT_TRUE(etag.starts_with("W/"));
  TestClient::Headers again = gzip;
  again.emplace_back("If-None-Match", etag);
  const auto not_modified = client.get("/static/page.html", again);
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.header("ETag"), etag);
  EXPECT_EQ(not_modified.header("Vary"), "Accept-Encoding");
  std::filesystem::remove_all(folder);
}

TEST(Compression, ALevelOutsideOneToNineIsRefused) {
  EXPECT_THROW(compression({.level = 0}), std::invalid_argument);
  EXPECT_THROW(compression({.level = 10}), std::invalid_argument);
}

}  // namespace
}  // namespace molt::web
