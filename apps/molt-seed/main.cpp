// molt-seed: writes the demo database that list_items reads in database mode (DESIGN.md §5).
// The rows come from demo_rows.hpp; this file only decides where they go and how.

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "demo_rows.hpp"
#include "molt/core/status.hpp"
#include "molt/db/database.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"

namespace molt::demo {
namespace {

// The SQL that differs from one backend to the next.
struct Dialect {
  std::string_view table_exists;  // one row, column "n": how many tables are named items
  std::string_view create_table;
  // (user_id, id): a user's items in id order, the keyset page. (user_id, status): the
  // per-status counts from the index alone, without visiting the rows.
  std::array<std::string_view, 2> create_indexes;
  bool numbered_placeholders;  // `$1, $2, ...` (PostgreSQL) rather than `?` (SQLite)
};

constexpr Dialect kSqlite{
    "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'items'",
    "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, created_at TEXT NOT "
    "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score REAL NOT NULL, unread INTEGER NOT "
    "NULL)",
    {"CREATE INDEX items_user_id_id ON items(user_id, id)",
     "CREATE INDEX items_user_id_status ON items(user_id, status)"},
    false};

constexpr Dialect kPostgres{
    "SELECT count(*) AS n FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_name = 'items'",
    "CREATE TABLE items(id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, created_at TEXT NOT "
    "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, unread "
    "INTEGER NOT NULL)",
    {"CREATE INDEX items_user_id_id ON items(user_id, id)",
     "CREATE INDEX items_user_id_status ON items(user_id, status)"},
    true};

// Rows per INSERT: on PostgreSQL a statement is a round trip, so one row per statement spent
// most of the time waiting (16 s for 200,000 rows). 1,000 rows are 7,000 parameters, well
// inside both backends' limits (PostgreSQL 65,535, SQLite 32,766).
constexpr std::size_t kRowsPerInsert = 1000;
constexpr std::size_t kColumns = 7;

// An INSERT of `rows` rows: placeholders only, every value is bound.
std::string insert_sql(const Dialect& dialect, std::size_t rows) {
  std::string sql =
      "INSERT INTO items(id, user_id, created_at, status, title, score, unread) VALUES ";
  std::size_t placeholder = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r ? ",(" : "(";
    for (std::size_t c = 0; c < kColumns; ++c) {
      if (c) sql += ',';
      sql += dialect.numbered_placeholders ? "$" + std::to_string(++placeholder) : "?";
    }
    sql += ')';
  }
  return sql;
}

struct Settings {
  std::string sqlite_path;
  std::string postgres_dsn;
  int users = kDefaultUsers;
  int items = kDefaultItemsPerUser;
  bool force = false;
};

// (Re)creates the items table and fills it, all in one transaction: either every row is there
// or the database is as it was. An existing table with rows is kept unless `force`. Returns the
// number of rows written; throws core::Error.
std::int64_t write_items(db::Database& database, const Dialect& dialect, const Settings& s,
                         std::string_view where) {
  db::Transaction tx = database.begin({});
  if (tx.query(dialect.table_exists).get<std::int64_t>(0, "n") > 0) {
    const auto existing = tx.query("SELECT count(*) AS n FROM items").get<std::int64_t>(0, "n");
    if (existing > 0 && !s.force)
      throw core::InvalidInput(std::string(where) + " already has an items table with " +
                               std::to_string(existing) +
                               " rows; pass --force to drop and recreate it");
    // An empty table is replaced too, so the schema is always exactly ours.
    tx.execute("DROP TABLE items");
  }
  tx.execute(dialect.create_table);

  // Full batches share one statement, prepared once (the connection caches it), and one set
  // of parameters whose buffers are reused from batch to batch; the last batch may be short.
  const std::string full_batch = insert_sql(dialect, kRowsPerInsert);
  db::Params params;
  params.values.reserve(kRowsPerInsert * kColumns);
  std::int64_t written = 0;
  auto flush = [&] {
    const std::size_t rows = params.values.size() / kColumns;
    if (rows == 0) return;
    written += tx.execute(rows == kRowsPerInsert ? full_batch : insert_sql(dialect, rows), params)
                   .rows_affected;
    params.values.clear();
  };
  for_each_demo_row(s.users, s.items, [&](const DemoRow& row) {
    params.values.push_back({row.id});
    params.values.push_back({row.user_id});
    params.values.push_back({row.created_at});
    params.values.push_back({std::string(row.status)});
    params.values.push_back({row.title});
    params.values.push_back({row.score});
    params.values.push_back({std::int64_t{row.unread ? 1 : 0}});
    if (params.values.size() == kRowsPerInsert * kColumns) flush();
  });
  flush();
  // Built once over all the rows: cheaper than maintaining them insert by insert.
  for (std::string_view index : dialect.create_indexes) tx.execute(index);
  tx.commit();
  return written;
}

std::int64_t seed_sqlite(const Settings& s) {
  db::SqliteOptions options;
  options.path = s.sqlite_path;
  options.read_write = true;
  options.create = true;
  options.readers = 1;
  // A batch job: building the index of a large table may take longer than a request would.
  options.query_timeout = std::chrono::minutes(30);
  auto database = db::open_sqlite(options);
  return write_items(*database, kSqlite, s, "'" + s.sqlite_path + "'");
}

std::int64_t seed_postgres(const Settings& s) {
  db::PostgresOptions options;
  options.dsn = s.postgres_dsn;
  options.pool_size = 1;
  options.query_timeout = std::chrono::minutes(30);
  auto database = db::open_postgres(options);
  return write_items(*database, kPostgres, s, "the PostgreSQL database");
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
  app.add_option("--users", s.users, "users; their ids are 1..users")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--items", s.items, "items per user")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_flag("--force", s.force, "replace an items table that already has rows");
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
               static_cast<long long>(rows), s.users, s.items,
               s.postgres_dsn.empty() ? s.sqlite_path.c_str() : "PostgreSQL", took.count());
  return 0;
}
