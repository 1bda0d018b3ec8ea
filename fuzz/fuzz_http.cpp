// fuzz_http: arbitrary bytes as one connection's input to a molt::web app, through the
// server's own reader, router and writer (TestClient::raw). Properties: no crash or
// sanitizer report, and whatever the server writes back is a sequence of well-formed
// HTTP/1.1 answers. The first byte of the input also picks how it is split into reads, so that
// streamed bodies (POST /stream) come in pieces of every size. Requests come from a trusted
// proxy, so X-Forwarded-For and X-Forwarded-Proto are parsed too.
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "molt/web/app.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/test_client.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::Ctx;
using molt::web::Request;
using molt::web::Response;

molt::web::App& app() {
  static molt::web::App instance;
  static bool ready = false;
  if (!ready) {
    // Every request comes from a trusted proxy (set_peer_address below): its X-Forwarded-*
    // are read, and the answer to / says what was made of them.
    instance.use(molt::web::proxy_headers({.trusted_proxies = {"127.0.0.0/8", "2001:db8::/32"}}));
    instance.get("/", [](const Request& request, Ctx&) -> awaitable<Response> {
      co_return Response::text(std::string(request.remote_address()) + " " +
                               std::string(request.scheme()));
    });
    instance.post("/echo", [](const Request& request, Ctx&) -> awaitable<Response> {
      co_return Response::text(request.body());
    });
    instance.get("/users/{id:int}/{rest:path}",
                 [](const Request& request, Ctx& ctx) -> awaitable<Response> {
                   co_return Response::text(std::string(ctx.param("rest").value_or("")) +
                                            request.query_param("q").value_or(""));
                 });
    // Reads the body piece by piece and answers early at a piece that starts with 'q': the
    // connection must then skip the rest of the body, or close.
    instance.post("/stream",
                  [](const Request&, Ctx& ctx) -> awaitable<Response> {
                    std::string seen;
                    while (const auto piece = co_await ctx.body().next()) {
                      if (piece->front() == 'q') break;
                      seen.append(*piece);
                    }
                    co_return Response::text(seen);
                  },
                  "stream", {.max_body_bytes = 1024, .stream_body = true});
    ready = true;
  }
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  molt::web::Limits limits;
  limits.initial_buffer_bytes = 64;  // small, so that growth and compaction get exercised
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 4096;
  molt::web::TestClient client(app(), limits);
  client.set_peer_address("127.0.0.1");
  if (size > 0 && (data[0] & 1) != 0) client.set_read_size(1 + data[0] % 61);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string out = client.raw(input);
  // Answers to HEAD have no body, which a plain response parser cannot know: check the
  // stream's form only when no request can be a HEAD.
  if (input.find("HEAD") != std::string_view::npos) return 0;
  bool well_formed = true;
  try {
    molt::web::TestClient::parse_responses(out);
  } catch (const std::exception&) {
    well_formed = false;
  }
  FUZZ_CHECK(well_formed);
  return 0;
}
