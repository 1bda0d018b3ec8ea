#pragma once
// Settings the stock exports read from the environment (DESIGN.md §4), and the database they
// share. A malformed value stops startup with a message naming the variable.

#include <cstdint>
#include <memory>
#include <string>

#include "molt/db/database.hpp"

namespace molt_worker {

// A non-negative integer from `name`, or `fallback` when unset or empty.
std::int64_t int_from_env(const char* name, std::int64_t fallback);
bool flag_from_env(const char* name);

struct DbSettings {
  std::string sqlite_path;               // MOLT_DB_SQLITE_PATH
  bool sqlite_read_write = false;        // MOLT_DB_SQLITE_READWRITE=1
  std::string postgres_dsn;              // MOLT_DB_POSTGRES_DSN
  std::int64_t max_rows = 1000;          // MOLT_DB_MAX_ROWS
  std::int64_t pool_size = 4;            // MOLT_DB_POOL_SIZE
  std::int64_t query_timeout_ms = 5000;  // MOLT_DB_QUERY_TIMEOUT_MS
  std::int64_t pool_wait_ms = 1000;      // MOLT_DB_POOL_WAIT_MS

  static DbSettings from_env();
};

// The process's database per the environment, opened on first use; nullptr when none is
// configured (list_items then runs in fake-DB mode and db_query/db_exec answer InvalidInput).
const std::shared_ptr<molt::db::Database>& configured_database();
const DbSettings& db_settings();

}  // namespace molt_worker
