// Built-in middleware. Each is a plain Middleware value: add it with app.use(...) or
// group.use(...), in the order it should wrap the handler (the first added is outermost).
// Errors need no middleware: App turns any exception into a safe JSON answer (HttpError ->
// its status and message; anything else -> 500 without details, which go to stderr).
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/web/app.hpp"

namespace molt::web {

// The request's id: the client's `X-Request-Id` when it is a sane token (up to 64
// characters of [A-Za-z0-9._-]), else a fresh one. Echoed in the answer; handlers read it
// with ctx.get<RequestId>().
struct RequestId {
  std::string value;
};
Middleware request_id();

// One JSON line per request: method, path, status, duration and request id (when the
// request_id middleware runs before this one). Written with one write(2), so lines from
// several threads never interleave. The default sink is stderr.
Middleware access_log(std::function<void(std::string_view line)> sink = {});

struct CorsOptions {
  // Exact origins; "*" allows any (and cannot be combined with allow_credentials).
  std::vector<std::string> allowed_origins;
  // "*" allows any method, as Starlette's allow_methods=["*"].
  std::vector<std::string> allowed_methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  // Besides the CORS-safelisted ones (Accept, Accept-Language, Content-Language,
  // Content-Type), which are always allowed; "*" allows any.
  std::vector<std::string> allowed_headers = {"Authorization"};
  bool allow_credentials = false;
  std::chrono::seconds max_age{600};
  // Answer headers a page's script may read beyond the safelisted ones (Location, X-Request-Id).
  std::vector<std::string> expose_headers;
};
// Answers preflight requests itself (204) and marks answers to allowed origins.
Middleware cors(CorsOptions options);

struct ProxyHeadersOptions {
  // The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed, as uvicorn's
  // --forwarded-allow-ips: addresses ("127.0.0.1", "::1") and networks ("10.0.0.0/8",
  // "fd00::/8"). "*" believes any peer: only for a server nothing but its proxies can reach.
  // A trusted proxy must set X-Forwarded-Proto and append to X-Forwarded-For itself.
  std::vector<std::string> trusted_proxies = {"127.0.0.1", "::1"};
};
// Behind a reverse proxy (nginx, a load balancer): when the socket's peer is a trusted
// proxy, request.remote_address() becomes the client that X-Forwarded-For names (read from
// the right, the first address that is not a trusted proxy) and request.scheme() "https"
// when X-Forwarded-Proto says so; request.peer_address() stays the socket's. Headers from
// any other peer are ignored, so a client cannot choose its own address. Add it first, so
// that access_log and everything else see the client. std::invalid_argument at once for
// an entry that is neither an address nor a network.
Middleware proxy_headers(ProxyHeadersOptions options = {});

// `Server-Timing: app;dur=<ms>`: the time spent inside the chain after this middleware.
Middleware server_timing();

}  // namespace molt::web
