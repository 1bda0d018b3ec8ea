// The demo service's routes: what `make run` serves (docs/web.md walks through them).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "items.hpp"
#include "molt/core/blocking_pool.hpp"
#include "molt/web/app.hpp"
#include "molt/web/blocking.hpp"
#include "molt/web/gateway.hpp"

namespace molt_demo {

struct Services {
  ItemsStore items;
  molt::core::BlockingPool& pool;  // database calls run here, off the I/O threads
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::milliseconds query_timeout{2000};
  // GET /items pages from SQLite are short reads by key (~30 us): they run on the I/O thread
  // within this budget, and go to the pool when they do not fit. From PostgreSQL (a network
  // round trip) they always go to the pool.
  molt::web::InlineBudget item_pages{std::chrono::microseconds(250)};
};

void add_routes(molt::web::App& app, Services& services);

// Gateway mode: molt-demo in front of the Django demo. It serves list_items at Django's own
// URL too (`items_path`, "/offload/"), and every request no route owns goes to `upstream`.
struct GatewaySettings {
  molt::web::UpstreamOptions upstream;
  std::string items_path;
  std::uint64_t max_body_bytes = 64 << 20;
};
void add_gateway(molt::web::App& app, Services& services, const GatewaySettings& settings);

}  // namespace molt_demo
