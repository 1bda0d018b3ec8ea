// molt-seed: writes the demo database that list_items reads in database mode (DESIGN.md §5).
// The rows come from demo_rows.hpp; this file only decides where they go and how.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "demo_seed.hpp"
#include "molt/core/status.hpp"
#include "molt/db/database.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"

namespace molt::demo {
namespace {
struct Settings {
  std::string sqlite_path;
  std::string postgres_dsn;
  SeedOptions seed;
};

std::int64_t seed_sqlite(const Settings& s) {
  db::SqliteOptions options;
  options.path = s.sqlite_path;
  options.read_write = true;
  options.create = true;
  options.readers = 1;
  // A batch job: building the index of a large table may take longer than a request would.
  options.query_timeout = std::chrono::minutes(30);
  auto database = db::open_sqlite(options);
  return write_demo_items(*database, s.seed, "'" + s.sqlite_path + "'");
}

std::int64_t seed_postgres(const Settings& s) {
  db::PostgresOptions options;
  options.dsn = s.postgres_dsn;
  options.pool_size = 1;
  options.query_timeout = std::chrono::minutes(30);
  auto database = db::open_postgres(options);
  return write_demo_items(*database, s.seed, "the PostgreSQL database");
}

}  // namespace
}  // namespace molt::demo

int main(int argc, char** argv) {
  using molt::demo::Settings;
  CLI::App app("molt-seed: writes the deterministic demo database (items table, DESIGN.md §5)",
               "molt-seed");
  Settings s;
  auto* sqlite =
      app.add_option("--sqlite", s.sqlite_path, "SQLite database file (created when missing)");
  auto* postgres =
      app.add_option("--postgres", s.postgres_dsn, "PostgreSQL conninfo or postgresql:// URI");
  sqlite->excludes(postgres);
  app.add_option("--users", s.seed.users, "users; their ids are 1..users")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--items", s.seed.items, "items per user")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_flag("--force", s.seed.force, "replace an items table that already has rows");
  try {
    app.parse(argc, argv);
    if (s.sqlite_path.empty() && s.postgres_dsn.empty())
      throw CLI::RequiredError("one of --sqlite or --postgres");
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  const auto start = std::chrono::steady_clock::now();
  std::int64_t rows = 0;
  try {
    rows = s.postgres_dsn.empty() ? molt::demo::seed_sqlite(s) : molt::demo::seed_postgres(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "molt-seed: error: %s\n", e.what());
    return 1;
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::fprintf(stderr, "molt-seed: wrote %lld rows (%d users x %d items) to %s in %.3f s\n",
               static_cast<long long>(rows), s.seed.users, s.seed.items,
               s.postgres_dsn.empty() ? s.sqlite_path.c_str() : "PostgreSQL", took.count());
  return 0;
}
