#include "settings.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"

namespace molt_worker {

std::int64_t int_from_env(const char* name, std::int64_t fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  std::int64_t value = 0;
  const std::string_view s(text);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || value < 0)
    throw std::invalid_argument(std::string(name) + " must be a non-negative integer, got '" +
                                text + "'");
  return value;
}

bool flag_from_env(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return false;
  const std::string_view s(text);
  if (s == "1" || s == "true" || s == "yes") return true;
  if (s == "0" || s == "false" || s == "no") return false;
  throw std::invalid_argument(std::string(name) + " must be 1 or 0, got '" + text + "'");
}

DbSettings DbSettings::from_env() {
  DbSettings s;
  if (const char* p = std::getenv("MOLT_DB_SQLITE_PATH")) s.sqlite_path = p;
  if (const char* d = std::getenv("MOLT_DB_POSTGRES_DSN")) s.postgres_dsn = d;
  s.sqlite_read_write = flag_from_env("MOLT_DB_SQLITE_READWRITE");
  s.max_rows = int_from_env("MOLT_DB_MAX_ROWS", s.max_rows);
  s.pool_size = int_from_env("MOLT_DB_POOL_SIZE", s.pool_size);
  s.query_timeout_ms = int_from_env("MOLT_DB_QUERY_TIMEOUT_MS", s.query_timeout_ms);
  s.pool_wait_ms = int_from_env("MOLT_DB_POOL_WAIT_MS", s.pool_wait_ms);
  if (s.max_rows == 0) throw std::invalid_argument("MOLT_DB_MAX_ROWS must be at least 1");
  if (s.pool_size == 0) throw std::invalid_argument("MOLT_DB_POOL_SIZE must be at least 1");
  return s;
}

const DbSettings& db_settings() {
  static const DbSettings settings = DbSettings::from_env();
  return settings;
}

const std::shared_ptr<molt::db::Database>& configured_database() {
  static const std::shared_ptr<molt::db::Database> database = [] {
    const DbSettings& s = db_settings();
    if (!s.postgres_dsn.empty() && !s.sqlite_path.empty())
      throw std::invalid_argument(
          "both MOLT_DB_POSTGRES_DSN and MOLT_DB_SQLITE_PATH are set; choose one database");
    if (!s.postgres_dsn.empty()) {
      molt::db::PostgresOptions o;
      o.dsn = s.postgres_dsn;
      o.pool_size = static_cast<std::size_t>(s.pool_size);
      o.query_timeout = std::chrono::milliseconds(s.query_timeout_ms);
      o.pool_wait = std::chrono::milliseconds(s.pool_wait_ms);
      return molt::db::open_postgres(o);
    }
    if (s.sqlite_path.empty()) return std::shared_ptr<molt::db::Database>();
    // In the worker's own terms: the library's hint names its C++ options.
    std::error_code ignored;
    if (!std::filesystem::exists(s.sqlite_path, ignored))
      throw std::invalid_argument("MOLT_DB_SQLITE_PATH names no file ('" + s.sqlite_path +
                                  "'): the worker opens a database, it does not create one "
                                  "(molt-seed writes the demo's)");
    molt::db::SqliteOptions o;
    o.path = s.sqlite_path;
    o.read_write = s.sqlite_read_write;
    o.readers = static_cast<std::size_t>(s.pool_size);
    o.query_timeout = std::chrono::milliseconds(s.query_timeout_ms);
    o.pool_wait = std::chrono::milliseconds(s.pool_wait_ms);
    return molt::db::open_sqlite(o);
  }();
  return database;
}

}  // namespace molt_worker
