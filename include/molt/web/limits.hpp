// Limits and timeouts of the HTTP server: every one of them answers with the right status
// rather than letting a peer hold memory or a connection without bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace molt::web {

struct Limits {
  std::uint32_t max_header_bytes = 16 * 1024;  // request line + headers; over it: 431
  std::size_t max_headers = 100;               // header fields; over it: 431
  std::uint64_t max_body_bytes = 1024 * 1024;  // over it: 413
  std::size_t initial_buffer_bytes = 1024;     // what each connection starts with
  // The read buffer of a streamed request body (RouteOptions::stream_body), beside its
  // header: the most of the body a connection holds at once, and the largest piece
  // ctx.body().next() gives.
  std::size_t stream_buffer_bytes = 16 * 1024;
  std::size_t max_connections = 10'000;       // per thread; over it, new connections are closed
  std::size_t max_background_tasks = 10'000;  // ctx.spawn, per thread; over it spawn() says no
  std::chrono::milliseconds header_timeout{10'000};   // to receive a request's header
  std::chrono::milliseconds idle_timeout{30'000};     // between keep-alive requests
  std::chrono::milliseconds request_timeout{30'000};  // body + handler + write of one request
  // A streamed request body (RouteOptions::stream_body) must come at least this fast, on
  // average over the time the server waited for it, once that time is past
  // min_body_rate_grace; slower, next() throws 408. Without it, an upload sending a byte
  // now and then would hold its connection for ever (each piece gives request_timeout
  // afresh). 240 bytes a second, as ASP.NET Core's Kestrel; 0: no minimum.
  std::uint32_t min_body_rate = 240;  // bytes a second
  std::chrono::milliseconds min_body_rate_grace{5'000};
};

}  // namespace molt::web
