// The demo service's routes: what `make run` serves (docs/web.md walks through them).
#pragma once

#include <chrono>

#include "items.hpp"
#include "molt/core/blocking_pool.hpp"
#include "molt/web/app.hpp"

namespace molt_demo {

struct Services {
  ItemsStore items;
  molt::core::BlockingPool& pool;  // database calls run here, off the I/O threads
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::milliseconds query_timeout{2000};
};

void add_routes(molt::web::App& app, Services& services);

}  // namespace molt_demo
