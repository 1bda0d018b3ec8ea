// The gateway beside Django: molt::web answers the routes it owns and forwards every other
// request to an upstream HTTP/1.1 server (Django under gunicorn), over pooled keep-alive
// connections, with X-Forwarded-* headers and timeouts.
//
//   molt::web::App app;
//   app.get("/items", list_items);                        // served natively
//   app.fallback(molt::web::proxy_to({.port = 8000}),     // the rest goes to Django
//                {.max_body_bytes = 64 << 20, .stream_body = true});
//
// What is forwarded: the method, the target as sent, the end-to-end headers (Host included,
// so Django's ALLOWED_HOSTS sees the public name) and the body, streamed as it arrives on a
// stream_body fallback. Hop-by-hop headers (Connection, Keep-Alive, TE, Upgrade, ...) stay
// on their own hop. X-Forwarded-For gets the client's address appended; X-Forwarded-Proto
// and X-Forwarded-Host are set, replacing what the client sent. A HEAD request is forwarded
// as GET, so that the answer's Content-Length is the real one.
//
// Answers come back whole when their length is known and at most
// max_buffered_response_bytes (so the client sees a Content-Length), else streamed piece by
// piece with backpressure. Failures are the gateway's own small JSON errors, never the
// upstream's internals: 502 bad_gateway (refused, reset, malformed) and 504 gateway_timeout.
// The details go to stderr. A request whose client leaves, or whose deadline passes, closes
// its upstream connection at once: the upstream sees the disconnect too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "molt/web/app.hpp"

namespace molt::web {

struct UpstreamOptions {
  // An IP address, or a name resolved once when proxy_to() is called.
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::chrono::milliseconds connect_timeout{2'000};
  // The upstream's time to send its response head, and then each piece of its body.
  std::chrono::milliseconds response_timeout{60'000};
  // Idle keep-alive connections kept per I/O thread; more are closed once answered.
  std::size_t max_idle_connections = 64;
  // Larger answers, and those of unknown length, are streamed instead of held whole.
  std::uint64_t max_buffered_response_bytes = 1 << 20;
  std::uint32_t max_response_header_bytes = 64 << 10;
};

// A handler that forwards the request it is given to `upstream` and answers with what comes
// back. Throws std::invalid_argument when the host does not resolve. Copies share one pool.
Handler proxy_to(UpstreamOptions upstream);

}  // namespace molt::web
