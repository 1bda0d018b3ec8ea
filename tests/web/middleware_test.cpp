#include "molt/web/middleware.hpp"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "socket_client.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Request;
using molt::web::Response;
using molt::web::TestClient;

awaitable<Response> show_id(const Request&, Ctx& ctx) {
  const auto* id = ctx.get<molt::web::RequestId>();
  co_return Response::text(id ? id->value : "none");
}

TEST(MiddlewareTest, RequestIdIsKeptWhenSaneAndMadeOtherwise) {
  App app;
  app.use(molt::web::request_id());
  app.get("/id", show_id);
  TestClient client(app);
  const auto given = client.get("/id", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(given.body, "abc-123");
  EXPECT_EQ(given.header("X-Request-Id"), "abc-123");
  const auto fresh = client.get("/id", {{"X-Request-Id", std::string(65, 'a')}});
  EXPECT_EQ(fresh.body.size(), 32u);
  EXPECT_EQ(fresh.header("X-Request-Id"), fresh.body);
  EXPECT_NE(client.get("/id").body, client.get("/id").body);
}

// Each thread (and process) counts from a random start: the second halves of the ids made on
// two threads do not repeat each other (they did, counter times a constant, from 1 each).
TEST(MiddlewareTest, MadeRequestIdsDoNotRepeatAcrossThreads) {
  App app;
  app.use(molt::web::request_id());
  app.get("/id", show_id);
  app.freeze();
  const auto made = [&app] {
    TestClient client(app);
    std::set<std::string> seconds;
    for (int i = 0; i < 50; ++i) seconds.insert(client.get("/id").body.substr(16));
    return seconds;
  };
  std::set<std::string> first, second;
  std::thread a([&] { first = made(); });
  std::thread b([&] { second = made(); });
  a.join();
  b.join();
  EXPECT_EQ(first.size(), 50u);
  for (const auto& half : second) EXPECT_FALSE(first.contains(half)) << half;
}

TEST(MiddlewareTest, AccessLogWritesOneJsonLinePerRequest) {
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::request_id());
  app.use(molt::web::access_log([&](std::string_view line) { lines.emplace_back(line); }));
  app.get("/id", show_id);
  TestClient client(app);
  client.get("/id?secret=1", {{"X-Request-Id", "r1"}});
  client.get("/missing");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind(R"({"method":"GET","path":"/id","status":200,"duration_us":)", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[0].find(R"("request_id":"r1"})"), std::string::npos);
  EXPECT_EQ(lines[0].find("secret"), std::string::npos);  // the query string is not logged
  EXPECT_NE(lines[1].find(R"("status":404)"), std::string::npos);
  EXPECT_EQ(lines[1].back(), '\n');
  // Found by a review: HEAD logged the bytes of the body it did not send.
  client.request("HEAD", "/id");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find(R"("bytes":0)"), std::string::npos) << lines[2];
}

// A streamed answer's line is written when the stream ends, with the bytes it produced and
// how it ended (it was written when the handler returned: 200, 0 bytes, whatever followed).
TEST(MiddlewareTest, AccessLogWritesAStreamsLineWhenItEnds) {
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::access_log([&](std::string_view line) { lines.emplace_back(line); }));
  app.get("/pieces/{n:int}", [](const Request&, Ctx& ctx) -> awaitable<Response> {
    auto left = std::make_shared<std::int64_t>(ctx.int_param("n"));
    co_return Response::stream(
        [left]() -> awaitable<std::optional<std::string>> {
          if (*left == 0) co_return std::nullopt;
          if (--*left == 1000) throw std::runtime_error("the source failed");
          co_return std::string("abc");
        },
        "text/plain");
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/pieces/4").body, "abcabcabcabc");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("status":200,)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("bytes":12,"stream":"complete")"), std::string::npos) << lines[0];
  // Two pieces, then the producer throws: the answer is cut short.
  client.raw("GET /pieces/1003 HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find(R"("bytes":6,"stream":"failed")"), std::string::npos) << lines[1];
  client.request("HEAD", "/pieces/4");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].find("stream"), std::string::npos) << lines[2];
}

// A client that leaves mid-stream: the line says so, when it happened.
TEST(MiddlewareTest, AccessLogSaysWhenAClientLeftAStream) {
  std::mutex mutex;
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::access_log([&](std::string_view line) {
    const std::lock_guard lock(mutex);
    lines.emplace_back(line);
  }));
  app.get("/endless", [](const Request&, Ctx&) -> awaitable<Response> {
    co_return Response::stream(
        []() -> awaitable<std::optional<std::string>> {
          boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor);
          pause.expires_after(std::chrono::milliseconds(5));
          co_await pause.async_wait(boost::asio::use_awaitable);
          co_return std::string(1000, 'x');
        },
        "text/plain");
  });
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  molt::web::Server server(app, options);
  server.start();
  {
    molt::web::testing::Client client(server.port());
    client.send("GET /endless HTTP/1.1\r\nHost: t\r\n\r\n");
    char some[512];
    ASSERT_GT(::recv(client.fd(), some, sizeof some, 0), 0);
  }  // closed mid-stream
  for (int i = 0; i < 300; ++i) {
    {
      const std::lock_guard lock(mutex);
      if (!lines.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server.stop();
  const std::lock_guard lock(mutex);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("stream":"disconnected")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("client":"127.0.0.1")"), std::string::npos) << lines[0];
}

// cors() on a group: the automatic OPTIONS and 405 answers at its routes' paths go through
// the group's middleware too, so the group answers its own preflights.
TEST(MiddlewareTest, CorsOnAGroupAnswersThePreflightsOfItsRoutes) {
  App app;
  auto api = app.group("/api");
  molt::web::CorsOptions options;
  options.allowed_origins = {"https://app.example"};
  api.use(molt::web::cors(options));
  api.get("/data", show_id);
  app.get("/open", show_id);
  TestClient client(app);
  const auto preflight =
      client.request("OPTIONS", "/api/data", {},
                     {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(preflight.header("Access-Control-Allow-Methods"), "GET, POST, PUT, PATCH, DELETE");
  const auto refused =
      client.request("DELETE", "/api/data", {}, {{"Origin", "https://app.example"}});
  EXPECT_EQ(refused.status, 405);
  EXPECT_EQ(refused.header("Allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(refused.header("Access-Control-Allow-Origin"), "https://app.example");
  // Outside the group nothing changes: the automatic answer, without CORS.
  const auto outside =
      client.request("OPTIONS", "/open", {},
                     {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}});
  EXPECT_EQ(outside.status, 204);
  EXPECT_EQ(outside.header("Allow"), "GET, HEAD, OPTIONS");
  EXPECT_FALSE(outside.header("Access-Control-Allow-Origin").has_value());
}

// Found by a review: at a path served by an app route and a group's route, the automatic
// answers went through the middleware of whichever route was added there first: a group's
// POST missed its own cors() on the preflight, and another group's guard answered 401 for a
// public GET's OPTIONS and 405.
TEST(MiddlewareTest, AutomaticAnswersAtAPathSharedByGroupsGoThroughTheRightMiddleware) {
  App app;
  app.get("/api/items", show_id);  // public, added first
  auto api = app.group("/api");
  molt::web::CorsOptions options;
  options.allowed_origins = {"https://a.example"};
  api.use(molt::web::cors(options));
  api.post("/items", show_id);
  auto admin = app.group("/admin");
  admin.use([](const Request&, Ctx&, molt::web::Next) -> awaitable<Response> {
    co_return Response::error(401, "unauthorized", "a token is required");
  });
  admin.post("/x", show_id);
  app.get("/admin/x", show_id);  // public, added after the guarded one
  TestClient client(app);
  const auto preflight =
      client.request("OPTIONS", "/api/items", {},
                     {{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"), "https://a.example");
  for (const char* method : {"OPTIONS", "DELETE"}) {
    const auto answer = client.request(method, "/admin/x");
    EXPECT_NE(answer.status, 401) << method;
    EXPECT_EQ(answer.header("Allow"), "GET, HEAD, OPTIONS, POST") << method;
  }
  EXPECT_EQ(client.get("/admin/x").status, 200);
  EXPECT_EQ(client.request("POST", "/admin/x").status, 401);
}

TEST(MiddlewareTest, CorsAnswersPreflightsAndMarksAllowedOrigins) {
  App app;
  molt::web::CorsOptions options;
  options.allowed_origins = {"https://app.example"};
  app.use(molt::web::cors(options));
  app.get("/data", show_id);
  TestClient client(app);
  const auto preflight =
      client.request("OPTIONS", "/data", {},
                     {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(preflight.header("Access-Control-Allow-Methods"), "GET, POST, PUT, PATCH, DELETE");
  EXPECT_EQ(preflight.header("Access-Control-Max-Age"), "600");
  // Found by a review: a preflight for what is not allowed got a 204, where Starlette says 400.
  const auto refused =
      client.request("OPTIONS", "/data", {},
                     {{"Origin", "https://evil.example"},
                      {"Access-Control-Request-Method", "PURGE"},
                      {"Access-Control-Request-Headers", "Content-Type, X-Secret"}});
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("disallowed CORS origin, method, headers"), std::string::npos)
      << refused.body;
  EXPECT_FALSE(refused.header("Access-Control-Allow-Origin").has_value());
  const auto headers_ok =
      client.request("OPTIONS", "/data", {},
                     {{"Origin", "https://app.example"},
                      {"Access-Control-Request-Method", "POST"},
                      {"Access-Control-Request-Headers", "content-type, authorization"}});
  EXPECT_EQ(headers_ok.status, 204);
  const auto simple = client.get("/data", {{"Origin", "https://app.example"}});
  EXPECT_EQ(simple.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(simple.header("Vary"), "Origin");
  // An answer that already varies keeps its own field beside Origin.
  molt::web::Response negotiated = Response::text("x");
  negotiated.add_vary("Accept");
  negotiated.add_vary("Origin");
  negotiated.add_vary("accept");
  EXPECT_EQ(negotiated.header("Vary"), "Accept, Origin");
  const auto stranger = client.get("/data", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(stranger.status, 200);
  EXPECT_FALSE(stranger.header("Access-Control-Allow-Origin").has_value());
  // Without an Origin the answer still varies by it: a shared cache must not hand this copy,
  // which allows no origin, to a cross-origin request.
  EXPECT_EQ(client.get("/data").header("Vary"), "Origin");
  molt::web::CorsOptions bad;
  bad.allowed_origins = {"*"};
  bad.allow_credentials = true;
  EXPECT_THROW(molt::web::cors(bad), std::invalid_argument);
}

// From a FastAPI user's review: "*" for methods and headers was compared literally (every
// preflight a 400), the answer did not name the safelisted headers (a JSON POST asking for
// content-type was blocked by the browser), and no header could be exposed to scripts.
TEST(MiddlewareTest, CorsTakesWildcardMethodsAndHeadersAndExposesHeaders) {
  App app;
  molt::web::CorsOptions options;
  options.allowed_origins = {"https://app.example"};
  options.allow_credentials = true;
  options.allowed_methods = {"*"};
  options.allowed_headers = {"*"};
  options.expose_headers = {"Location", "X-Request-Id"};
  app.use(molt::web::cors(options));
  app.route("PURGE", "/data", show_id);
  TestClient client(app);
  const auto preflight =
      client.request("OPTIONS", "/data", {},
                     {{"Origin", "https://app.example"},
                      {"Access-Control-Request-Method", "PURGE"},
                      {"Access-Control-Request-Headers", "x-api-key, content-type"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Methods"), "PURGE");
  EXPECT_EQ(preflight.header("Access-Control-Allow-Headers"), "x-api-key, content-type");
  EXPECT_EQ(preflight.header("Vary"),
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  EXPECT_FALSE(preflight.header("Access-Control-Expose-Headers").has_value());
  const auto answer = client.request("PURGE", "/data", {}, {{"Origin", "https://app.example"}});
  EXPECT_EQ(answer.header("Access-Control-Expose-Headers"), "Location, X-Request-Id");
  EXPECT_EQ(answer.header("Access-Control-Allow-Credentials"), "true");
  const auto stranger = client.request("PURGE", "/data", {}, {{"Origin", "https://evil.example"}});
  EXPECT_FALSE(stranger.header("Access-Control-Expose-Headers").has_value());

  App listed;
  molt::web::CorsOptions only_key;
  only_key.allowed_origins = {"https://app.example"};
  only_key.allowed_headers = {"X-Api-Key", "content-type"};
  listed.use(molt::web::cors(only_key));
  listed.post("/data", show_id);
  TestClient listed_client(listed);
  const auto json_post =
      listed_client.request("OPTIONS", "/data", {},
                            {{"Origin", "https://app.example"},
                             {"Access-Control-Request-Method", "POST"},
                             {"Access-Control-Request-Headers", "content-type, x-api-key"}});
  EXPECT_EQ(json_post.status, 204);
  EXPECT_EQ(json_post.header("Access-Control-Allow-Headers"),
            "Accept, Accept-Language, Content-Language, Content-Type, X-Api-Key");
  EXPECT_EQ(json_post.header("Vary"), "Origin");
}

// A handler's exception is answered inside the chain: every middleware sees the error answer,
// as it sees any other (its request id, its log line, its CORS headers), at app and group level.
TEST(MiddlewareTest, ErrorsFromHandlersPassBackThroughTheMiddleware) {
  std::vector<std::string> lines;
  std::vector<int> seen_by_group;
  App app;
  app.use(molt::web::request_id());
  app.use(molt::web::access_log([&](std::string_view line) { lines.emplace_back(line); }));
  molt::web::CorsOptions cors;
  cors.allowed_origins = {"https://app.example"};
  app.use(molt::web::cors(cors));
  app.get("/bad", [](const Request&, Ctx&) -> awaitable<Response> {
    throw molt::web::HttpError(400, "invalid_input", "no good");
    co_return Response::text("unreachable");
  });
  auto api = app.group("/api");
  api.use([&](const Request&, Ctx&, molt::web::Next next) -> awaitable<Response> {
    Response response = co_await next();
    seen_by_group.push_back(response.status());
    co_return response;
  });
  api.get("/boom", [](const Request&, Ctx&) -> awaitable<Response> {
    throw std::runtime_error("disk on fire");
    co_return Response::text("unreachable");
  });
  TestClient client(app);
  const auto bad = client.get("/bad", {{"Origin", "https://app.example"}, {"X-Request-Id", "r9"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.header("X-Request-Id"), "r9");
  EXPECT_EQ(bad.header("Access-Control-Allow-Origin"), "https://app.example");
  const auto boom = client.get("/api/boom", {{"Origin", "https://app.example"}});
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.body, R"({"error":{"code":"internal_error","message":"the request failed"}})");
  EXPECT_TRUE(boom.header("X-Request-Id").has_value());
  EXPECT_EQ(boom.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(seen_by_group, std::vector<int>{500});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("status":400)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("status":500)"), std::string::npos) << lines[1];
}

// Found by a review: a middleware that threw (an auth check, FastAPI's most common pattern)
// skipped every middleware outside it: no access log line, no request id, no CORS headers.
TEST(MiddlewareTest, ErrorsFromMiddlewarePassBackThroughTheOuterOnes) {
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::request_id());
  app.use(molt::web::access_log([&](std::string_view line) { lines.emplace_back(line); }));
  molt::web::CorsOptions cors;
  cors.allowed_origins = {"https://app.example"};
  app.use(molt::web::cors(cors));
  app.use([](const Request& request, Ctx&, molt::web::Next next) -> awaitable<Response> {
    if (request.header("X-Block")) throw molt::web::HttpError(403, "forbidden", "blocked");
    co_return co_await next();
  });
  auto secure = app.group("/secure");
  secure.use([](const Request& request, Ctx&, molt::web::Next next) -> awaitable<Response> {
    if (!request.header("Authorization"))
      throw molt::web::HttpError(401, "unauthorized", "sign in first");
    co_return co_await next();
  });
  secure.use([](const Request&, Ctx&, molt::web::Next) -> awaitable<Response> {
    throw std::runtime_error("the session store is down");
    co_return Response(200);
  });
  secure.get("/x", [](const Request&, Ctx&) -> awaitable<Response> { co_return Response(200); });
  TestClient client(app);
  const TestClient::Headers origin = {{"Origin", "https://app.example"}};

  const auto unauthorized = client.get("/secure/x", origin);
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(unauthorized.body, R"({"error":{"code":"unauthorized","message":"sign in first"}})");
  EXPECT_TRUE(unauthorized.header("X-Request-Id").has_value());
  EXPECT_EQ(unauthorized.header("Access-Control-Allow-Origin"), "https://app.example");

  const auto failed =
      client.get("/secure/x", {{"Origin", "https://app.example"}, {"Authorization", "t"}});
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.header("Access-Control-Allow-Origin"), "https://app.example");

  const auto blocked =
      client.get("/secure/x", {{"Origin", "https://app.example"}, {"X-Block", "1"}});
  EXPECT_EQ(blocked.status, 403);
  EXPECT_EQ(blocked.header("Access-Control-Allow-Origin"), "https://app.example");

  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("status":401)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("status":500)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(R"("status":403)"), std::string::npos) << lines[2];
}

TEST(MiddlewareTest, ServerTimingAndHeaderInjectionGuard) {
  App app;
  app.use(molt::web::server_timing());
  app.get("/t", show_id);
  app.get("/inject", [](const Request& request, Ctx&) -> awaitable<Response> {
    Response response = Response::text("x");
    response.set_header("X-Echo", request.query_param("v").value_or(""));
    co_return response;
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/t").header("Server-Timing").value_or("").rfind("app;dur=", 0), 0u);
  const auto injected = client.get("/inject?v=a%0D%0ASet-Cookie:%20x=1");
  EXPECT_EQ(injected.status, 500);  // refused, not written
  EXPECT_FALSE(injected.header("Set-Cookie").has_value());
}

}  // namespace
