#pragma once
// PostgreSQL through libpq's non-blocking API: a fixed pool of connections with FIFO waiters,
// statements prepared once per connection and sent in pipeline mode (a call is one round
// trip), deadlines and cancellation that send the server a cancel request, typed decoding of
// text results, and connections reopened after the server went away.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "molt/db/database.hpp"

namespace molt::db {

struct PostgresOptions {
  std::string dsn;  // libpq conninfo ("host=... dbname=...") or a postgresql:// URI
  std::size_t pool_size = 4;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds pool_wait{1000};      // longer without a free connection -> Busy
  std::chrono::milliseconds query_timeout{5000};  // applies when a call brings no deadline
  // Prepared statements kept per connection (least recently used out); 0 sends every
  // statement unnamed, parsed and planned by the server on each call.
  std::size_t statement_cache = 128;
};

// Checks the options and returns the database; connections open on first use, so a server
// that is down shows up as the first call's error. Throws core::Error(InvalidInput) for a
// conninfo libpq cannot parse or a pool of size 0.
std::shared_ptr<Database> open_postgres(const PostgresOptions& options);

}  // namespace molt::db
