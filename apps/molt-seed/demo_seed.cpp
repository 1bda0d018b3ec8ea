#include "demo_seed.hpp"

#include <array>
#include <span>
#include <string>

#include "molt/core/status.hpp"

namespace molt::demo {
namespace {

// The SQL that differs from one backend to the next.
struct Dialect {
  std::string_view table_exists;  // one row, column "n": how many tables are named items
  std::string_view create_table;
  // (user_id, id): a user's items in id order, the keyset page. (user_id, status): a user's
  // items per status counted from the index alone (item_counts is filled that way). On SQLite the
  // page index also carries the other columns of the page, so the page is read from the index alone
  // too, without a table lookup per row (119k instructions a page against 140k).
  std::array<std::string_view, 2> create_indexes;
  // item_counts: each user's items per status, filled from the rows, then kept by triggers on
  // every insert, delete and change of user or status (a counter cache, as Rails keeps one).
  // The answer's counts become two key lookups instead of counting ~200 index entries a call
  // (106k of the worker's 294k instructions on SQLite).
  std::span<const std::string_view> create_counts;
  bool numbered_placeholders;  // `$1, $2, ...` (PostgreSQL) rather than `?` (SQLite)
};

constexpr std::string_view kFillCounts =
    "INSERT INTO item_counts(user_id, status, n) "
    "SELECT user_id, status, count(*) FROM items GROUP BY user_id, status";

constexpr std::string_view kSqliteCounts[] = {
    "CREATE TABLE item_counts(user_id INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT "
    "NULL, PRIMARY KEY(user_id, status)) WITHOUT ROWID",
    kFillCounts,
    "CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT(user_id, status) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER items_count_delete AFTER DELETE ON items BEGIN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; END",
    "CREATE TRIGGER items_count_update AFTER UPDATE OF user_id, status ON items BEGIN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT(user_id, status) DO UPDATE SET n = n + 1; END"};

constexpr std::string_view kPostgresCounts[] = {
    "CREATE TABLE item_counts(user_id BIGINT NOT NULL, status TEXT NOT NULL, n BIGINT NOT "
    "NULL, PRIMARY KEY(user_id, status))",
    kFillCounts,
    "CREATE OR REPLACE FUNCTION items_count_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP <> 'INSERT' THEN "
    "UPDATE item_counts SET n = n - 1 WHERE user_id = OLD.user_id AND status = OLD.status; "
    "END IF; "
    "IF TG_OP <> 'DELETE' THEN "
    "INSERT INTO item_counts(user_id, status, n) VALUES (NEW.user_id, NEW.status, 1) "
    "ON CONFLICT (user_id, status) DO UPDATE SET n = item_counts.n + 1; "
    "END IF; "
    "RETURN NULL; "
    "END $$",
    "CREATE TRIGGER items_count_change AFTER INSERT OR DELETE OR UPDATE OF user_id, status "
    "ON items FOR EACH ROW EXECUTE FUNCTION items_count_change()"};

constexpr Dialect kSqlite{
    "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'items'",
    "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, created_at TEXT NOT "
    "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score REAL NOT NULL, unread INTEGER NOT "
    "NULL)",
    {"CREATE INDEX items_user_id_id ON items(user_id, id, created_at, status, title, score, "
     "unread)",
     "CREATE INDEX items_user_id_status ON items(user_id, status)"},
    kSqliteCounts,
    false};

constexpr Dialect kPostgres{
    "SELECT count(*) AS n FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_name = 'items'",
    "CREATE TABLE items(id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, created_at TEXT NOT "
    "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, unread "
    "INTEGER NOT NULL)",
    {"CREATE INDEX items_user_id_id ON items(user_id, id)",
     "CREATE INDEX items_user_id_status ON items(user_id, status)"},
    kPostgresCounts,
    true};

// Rows per INSERT: on PostgreSQL a statement is a round trip, so one row per statement spent
// most of the time waiting (16 s for 200,000 rows). 1,000 rows are 7,000 parameters, well
// inside both backends' limits (PostgreSQL 65,535, SQLite 32,766).
constexpr std::size_t kRowsPerInsert = 1000;
constexpr std::size_t kColumns = 7;

const Dialect& dialect_of(db::Backend backend) {
  return backend == db::Backend::Postgres ? kPostgres : kSqlite;
}

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

}  // namespace

std::int64_t write_demo_items(db::Database& database, const SeedOptions& s,
                              std::string_view where) {
  const Dialect& dialect = dialect_of(database.backend());
  db::Transaction tx = database.begin({});
  if (tx.query(dialect.table_exists).get<std::int64_t>(0, "n") > 0) {
    const auto existing = tx.query("SELECT count(*) AS n FROM items").get<std::int64_t>(0, "n");
    if (existing > 0 && !s.force)
      throw core::InvalidInput(std::string(where) + " already has an items table with " +
                               std::to_string(existing) +
                               " rows; pass --force to drop and recreate it");
    // An empty table is replaced too, so the schema is always exactly ours.
    tx.execute("DROP TABLE items");  // and its triggers
  }
  tx.execute("DROP TABLE IF EXISTS item_counts");
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
  create_item_counts(tx, database.backend());
  tx.commit();
  return written;
}

void create_item_counts(db::Transaction& tx, db::Backend backend) {
  for (std::string_view statement : dialect_of(backend).create_counts) tx.execute(statement);
}

}  // namespace molt::demo
