#pragma once
// The embedded default: SQLite 3 with a small pool (read-only readers + one writer), WAL,
// a busy timeout, a prepared-statement cache per connection, and deadlines/cancellation that
// interrupt a running statement (progress handler + sqlite3_interrupt).

#include <chrono>
#include <memory>
#include <string>

#include "molt/db/database.hpp"

namespace molt::db {

struct SqliteOptions {
  std::string path;
  bool read_write = false;  // off: opened read-only, and every write is refused
  bool create = false;      // create the file when missing; needs read_write
  std::size_t readers = 4;
  std::size_t statement_cache = 64;  // prepared statements kept per connection
  std::chrono::milliseconds busy_timeout{2000};
  std::chrono::milliseconds pool_wait{1000};      // longer without a free connection -> Busy
  std::chrono::milliseconds query_timeout{5000};  // applies when a call brings no deadline
  // REFERENCES enforced, as Django and most users expect (SQLite's own default is off, and
  // a call may not set the pragma itself).
  bool foreign_keys = true;
  // The largest text or blob a statement may make (SQLITE_LIMIT_LENGTH); past it the statement
  // fails at once ("string or blob too big"). One SQL function runs to its end whatever the
  // deadline, so this bounds how long and how much memory one can take.
  std::size_t max_value_bytes = 64u << 20;
};

// Opens the database; throws core::Error (InvalidInput naming the path) when it cannot.
std::shared_ptr<Database> open_sqlite(const SqliteOptions& options);

}  // namespace molt::db
