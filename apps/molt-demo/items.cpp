#include "items.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "demo_seed.hpp"
#include "list_items_query.hpp"
#include "molt/core/status.hpp"
#include "molt/db/described.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"

namespace molt_demo {
namespace {

using molt::db::Param;
using molt::db::Params;

constexpr std::string_view kInsert =
    "INSERT INTO items(id, user_id, created_at, status, title, score, unread) "
    "VALUES (:id, :user_id, :created_at, :status, :title, :score, :unread)";

Params insert_params(std::int64_t id, std::int64_t user_id, std::string created_at,
                     std::string status, std::string title, double score, bool unread) {
  return Params{{{id},
                 {user_id},
                 {std::move(created_at)},
                 {std::move(status)},
                 {std::move(title)},
                 {score},
                 {static_cast<std::int64_t>(unread)}},
                {"id", "user_id", "created_at", "status", "title", "score", "unread"}};
}

molt::db::QueryOptions query_options(molt::core::Deadline deadline,
                                     molt::core::CancelToken cancel) {
  molt::db::QueryOptions options;
  options.deadline = deadline;
  options.cancel = std::move(cancel);
  return options;
}

std::string now_utc() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

namespace {
// A fresh file is seeded under another name and renamed into place once complete: a start
// stopped while seeding (Ctrl-C, a crash) leaves no half-seeded file that every later start
// would take for a seeded one. What such a start left is removed first.
void seed_sqlite_file(const std::string& path) {
  const std::string seeding = path + ".seeding";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(seeding + suffix);
  std::fprintf(stderr, "molt-demo: seeding %s with the demo rows...\n", path.c_str());
  {
    molt::db::SqliteOptions options;
    options.path = seeding;
    options.read_write = true;
    options.create = true;
    auto db = molt::db::open_sqlite(options);
    molt::demo::write_demo_items(*db, {}, path);
  }  // closed: its write-ahead log is checkpointed into the file and removed
  std::filesystem::rename(seeding, path);
}
}  // namespace

ItemsStore ItemsStore::open_sqlite(const std::string& path) {
  if (!std::filesystem::exists(path)) seed_sqlite_file(path);
  molt::db::SqliteOptions options;
  options.path = path;
  options.read_write = true;  // POST /items writes; the demo owns its file
  auto db = molt::db::open_sqlite(options);
  if (db->query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'item_counts'", {}, {})
          .get<std::int64_t>(0, "n") == 0) {
    // A file seeded before item_counts existed: the counts are built from its rows, once.
    std::fprintf(stderr, "molt-demo: adding item_counts to %s...\n", path.c_str());
    auto tx = db->begin({});
    molt::demo::create_item_counts(tx, molt::db::Backend::Sqlite);
    tx.commit();
  }
  return ItemsStore(std::move(db));
}

ItemsStore ItemsStore::open_postgres(const std::string& dsn) {
  molt::db::PostgresOptions options;
  options.dsn = dsn;
  return ItemsStore(molt::db::open_postgres(options));
}

std::string_view ItemsStore::backend() const {
  return db_->backend() == molt::db::Backend::Sqlite ? "sqlite" : "postgres";
}

std::int64_t ItemsStore::last_id(molt::core::Deadline deadline) const {
  const auto rows =
      db_->query("SELECT coalesce(max(id), 0) AS last FROM items", {}, query_options(deadline, {}));
  return rows.get<std::int64_t>(0, "last");
}

std::optional<Item> ItemsStore::find(std::int64_t id, molt::core::Deadline deadline) const {
  const auto items = molt::db::rows_as<Item>(
      db_->query("SELECT id, created_at, status, title, score, unread FROM items WHERE id = :id",
                 Params{{{id}}, {"id"}}, query_options(deadline, {})));
  if (items.empty()) return std::nullopt;
  return items.front();
}

ItemSummary ItemsStore::summary(std::int64_t user_id, molt::core::Deadline deadline,
                                molt::core::CancelToken cancel) const {
  const auto rows = db_->query(
      "SELECT count(*) AS items,"
      " coalesce(sum(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS n_open,"
      " coalesce(sum(CASE WHEN status = 'closed' THEN 1 ELSE 0 END), 0) AS n_closed,"
      " coalesce(avg(score), 0) AS mean_score FROM items WHERE user_id = :user_id",
      Params{{{user_id}}, {"user_id"}}, query_options(deadline, std::move(cancel)));
  return {.user_id = user_id,
          .items = rows.get<std::int64_t>(0, "items"),
          .open = rows.get<std::int64_t>(0, "n_open"),
          .closed = rows.get<std::int64_t>(0, "n_closed"),
          .mean_score = rows.get<double>(0, "mean_score")};
}

bool ItemsStore::reads_in_process() const {
  return db_->backend() == molt::db::Backend::Sqlite;
}

ListItemsResponse ItemsStore::list(const ListItemsRequest& request, molt::core::Deadline deadline,
                                   molt::core::CancelToken cancel) const {
  return molt_worker::query_list_items(*db_, request, query_options(deadline, std::move(cancel)));
}

std::string ItemsStore::list_json(const ListItemsRequest& request, molt::core::Deadline deadline,
                                  molt::core::CancelToken cancel) const {
  std::string out;
  molt_worker::write_list_items_json(out, *db_, request,
                                     query_options(deadline, std::move(cancel)));
  return out;
}

void ItemsStore::validate(const NewItem& item) {
  molt::codec::check_rules(item, "item");
  // PostgreSQL text cannot hold a NUL (the database would refuse it: a 500), nor should a title.
  if (item.title.find('\0') != std::string::npos)
    throw molt::core::InvalidInput("item.title: must not contain a NUL character");
}

Item ItemsStore::create(const NewItem& item, molt::core::Deadline deadline) const {
  return create_all({item}, deadline).front();
}

std::vector<Item> ItemsStore::create_all(const std::vector<NewItem>& items,
                                         molt::core::Deadline deadline) const {
  for (const NewItem& item : items) validate(item);
  const auto options = query_options(deadline, {});
  auto tx = db_->begin(options);
  // The next id inside the write transaction: SQLite has a single writer, so no two inserts
  // can take the same one (on PostgreSQL a concurrent insert fails on the primary key).
  const auto next = tx.query("SELECT coalesce(max(id), 0) + 1 AS next FROM items", {}, options);
  std::int64_t id = next.get<std::int64_t>(0, "next");
  const std::string created_at = now_utc();
  std::vector<Item> created;
  created.reserve(items.size());
  for (const NewItem& item : items) {
    created.push_back({id++, created_at, item.status, item.title, item.score, true});
    tx.execute(kInsert,
               insert_params(created.back().id, item.user_id, created_at, item.status, item.title,
                             item.score, true),
               options);
  }
  tx.commit();
  return created;
}

}  // namespace molt_demo
