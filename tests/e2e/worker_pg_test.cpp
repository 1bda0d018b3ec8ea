// End-to-end on PostgreSQL: molt-seed writes the same demo rows to SQLite and to a real
// PostgreSQL server, and the worker answers list_items identically from both.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"
#include "support/postgres_server.hpp"
#include "support/worker_process.hpp"

namespace {

using namespace std::chrono_literals;
using molt::core::StatusCode;
using molt::ipc::Codec;
using molt::ipc::Response;
using molt::testing::make_request;
using molt::testing::msgpack_of;
using molt::testing::PostgresServer;
using molt::testing::WorkerProcess;
namespace json = boost::json;

int run_seed(const std::vector<std::string>& args) {
  std::string command = MOLT_SEED_BINARY;
  for (const auto& a : args) command += " '" + a + "'";
  return WEXITSTATUS(std::system((command + " 2>/dev/null").c_str()));
}

Response ask(WorkerProcess& w, std::uint64_t id, std::string entry, std::string_view request,
             std::uint64_t timeout_ms = 5000) {
  w.send(make_request(id, std::move(entry), Codec::MsgPack, msgpack_of(request), timeout_ms));
  auto r = w.receive(10s);
  if (!r) {
    ADD_FAILURE() << "no answer; stderr: " << w.stderr_text();
    return {};
  }
  return *r;
}

TEST(WorkerPostgresTest, ListItemsAnswersTheSameJsonFromPostgresAndSqlite) {
  PostgresServer& pg = PostgresServer::shared();
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("molt_pg_parity_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string sqlite_path = (dir / "demo.db").string();
  // 2,400 rows: molt-seed writes 1,000 rows per INSERT, so two full batches and a short one.
  ASSERT_EQ(run_seed({"--sqlite", sqlite_path, "--users", "4", "--items", "600", "--force"}), 0);
  ASSERT_EQ(run_seed({"--postgres", pg.dsn(), "--users", "4", "--items", "600", "--force"}), 0);
  {
    // Every row is the same on both backends, cell by cell and typed the same way.
    const std::string_view all =
        "SELECT id, user_id, created_at, status, title, score, unread FROM items ORDER BY id";
    const auto lite = molt::db::open_sqlite({.path = sqlite_path});
    const auto postgres = molt::db::open_postgres({.dsn = pg.dsn()});
    const molt::db::Rows a = lite->query(all, {}, {});
    const molt::db::Rows b = postgres->query(all, {}, {});
    ASSERT_EQ(a.size(), 2400u);
    ASSERT_EQ(b.size(), a.size());
    std::size_t differences = 0;
    for (std::size_t r = 0; r < a.size(); ++r)
      for (std::size_t c = 0; c < a.columns().size(); ++c)
        if (a.at(r, c) != b.at(r, c) && differences++ == 0)
          ADD_FAILURE() << "row " << r << " column " << a.columns()[c] << " differs";
    EXPECT_EQ(differences, 0u);
  }

  WorkerProcess on_sqlite(MOLT_WORKER_BINARY, {}, {"MOLT_DB_SQLITE_PATH=" + sqlite_path});
  WorkerProcess on_postgres(MOLT_WORKER_BINARY, {}, {"MOLT_DB_POSTGRES_DSN=" + pg.dsn()});
  const std::vector<std::string> grid = {
      R"j({"user_id": 1})j",
      R"j({"user_id": 2, "limit": 7})j",
      R"j({"user_id": 2, "limit": 7, "cursor": "67"})j",
      R"j({"user_id": 3, "status": "closed", "limit": 500})j",
      R"j({"user_id": 3, "q": "alpha"})j",
      R"j({"user_id": 4, "q": "eta", "status": "open", "limit": 3})j",
      R"j({"user_id": 4, "q": "100%_"})j",
      R"j({"user_id": 99})j",
  };
  std::uint64_t id = 0;
  for (const auto& request : grid) {
    const Response a = ask(on_sqlite, ++id, "list_items", request);
    const Response b = ask(on_postgres, id, "list_items", request);
    ASSERT_EQ(a.status, StatusCode::Ok) << request << ": " << a.error;
    ASSERT_EQ(b.status, StatusCode::Ok) << request << ": " << b.error;
    EXPECT_EQ(a.payload, b.payload) << request;
  }
  const json::value first = json::parse(ask(on_postgres, 100, "list_items", grid[1]).payload);
  EXPECT_EQ(first.at("items").as_array().size(), 7u);

  // item_counts follows writes through the trigger, as on SQLite (seed_test), and list_items
  // answers the new counts.
  const std::string by_table =
      "SELECT string_agg(user_id || status || n, ' ' ORDER BY user_id, status) FROM item_counts "
      "WHERE n > 0";
  const std::string by_rows =
      "SELECT string_agg(user_id || status || n, ' ' ORDER BY user_id, status) FROM "
      "(SELECT user_id, status, count(*) AS n FROM items GROUP BY user_id, status) c";
  EXPECT_EQ(pg.psql(by_table),
            "1closed200 1open400 2closed200 2open400 3closed200 3open400 "
            "4closed200 4open400");
  for (const char* write : {"INSERT INTO items VALUES (9000, 2, 'x', 'closed', 'new', 0.5, 0)",
                            "INSERT INTO items VALUES (9001, 9, 'x', 'open', 'new user', 0.5, 0)",
                            "DELETE FROM items WHERE id IN (1, 2, 3)",
                            "UPDATE items SET status = 'closed' WHERE id = 9001",
                            "UPDATE items SET user_id = 1 WHERE user_id = 9",
                            "UPDATE items SET status = status WHERE id = 4"}) {
    pg.psql(write);
    EXPECT_EQ(pg.psql(by_table), pg.psql(by_rows)) << write;
  }
  const json::value after = json::parse(ask(on_postgres, 101, "list_items", grid[0]).payload);
  EXPECT_EQ(
      json::serialize(after.at("counts")),
      pg.psql(
          "SELECT format('{\"open\":%s,\"closed\":%s}', count(*) FILTER (WHERE status = 'open'), "
          "count(*) FILTER (WHERE status = 'closed')) FROM items WHERE user_id = 1"));
  std::filesystem::remove_all(dir);
}

TEST(WorkerPostgresTest, DbQueryAndDbExecOnPostgresWithDeadlinesThatReallyStop) {
  PostgresServer& pg = PostgresServer::shared();
  pg.psql("CREATE TABLE notes(id BIGSERIAL PRIMARY KEY, body TEXT, data BYTEA)");
  WorkerProcess w(MOLT_WORKER_BINARY, {"--threads", "2"},
                  {"MOLT_DB_POSTGRES_DSN=" + pg.dsn(), "MOLT_DB_POOL_SIZE=1"});
  Response r = ask(w, 1, "db_exec",
                   R"j({"sql": "INSERT INTO notes(body) VALUES ($1), (:never_mixed)",
                       "params": {"values": ["a", "b"]}, "allow_write": true})j");
  EXPECT_EQ(r.status, StatusCode::InvalidInput) << "mixing $n and :name must be refused";
  r = ask(w, 2, "db_exec",
          R"j({"sql": "INSERT INTO notes(body) VALUES ($1), ($2)", "params": {"values": ["a", "b"]},
              "allow_write": true})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(molt::codec::to_json(molt::codec::decode_msgpack<json::value>(r.payload)),
            R"j({"rows_affected":2})j");
  r = ask(w, 3, "db_query",
          R"j({"sql": "SELECT id, body FROM notes WHERE body = :b", "result_format": "json",
              "params": {"mode": "named", "values": [{"name": "b", "value": "b"}]}})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(r.payload, R"j({"columns":["id","body"],"rows":[[2,"b"]],"row_count":1})j");
  r = ask(w, 4, "db_query", R"j({"sql": "DELETE FROM notes"})j");
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_EQ(pg.psql("SELECT count(*) FROM notes"), "2");
  // A RETURNING clause's rows come back beside the count, in db_query's shape.
  r = ask(w, 40, "db_exec",
          R"j({"sql": "INSERT INTO notes(body) VALUES ('c') RETURNING id, body",
              "result_format": "json", "allow_write": true})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(r.payload, R"j({"rows_affected":1,"columns":["id","body"],"rows":[[3,"c"]]})j");
  pg.psql("DELETE FROM notes WHERE id = 3");

  const auto start = std::chrono::steady_clock::now();
  r = ask(w, 5, "db_query", R"j({"sql": "SELECT pg_sleep(10)"})j", /*timeout_ms=*/300);
  EXPECT_EQ(r.status, StatusCode::Timeout) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // Really stopped on the server, and the one pooled connection serves the next request.
  std::string active = "1";
  for (int i = 0; i < 100 && active != "0"; ++i) {
    active = pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
        "AND state = 'active'");
    if (active != "0") std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(active, "0");
  r = ask(w, 6, "db_query", R"j({"sql": "SELECT count(*) AS n FROM notes"})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;

  // Array cells are arrays in both result formats, elements typed like cells.
  r = ask(w, 7, "db_query",
          R"j({"result_format": "json", "sql": "SELECT ARRAY[1, NULL]::int8[] AS a, )j"
          R"j(ARRAY['x', 'y z', NULL] AS t, ARRAY[0.5, 2]::float8[] AS f, ARRAY[true] AS b, )j"
          R"j(ARRAY['\\x01ff'::bytea] AS by, '{}'::text[] AS e"})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(
      r.payload,
      R"j({"columns":["a","t","f","b","by","e"],)j"
      R"j("rows":[[[1,null],["x","y z",null],[0.5,2.0],[true],["Af8="],[]]],"row_count":1})j");
  r = ask(
      w, 8, "db_query",
      R"j({"sql": "SELECT ARRAY[1, NULL]::int8[] AS a, ARRAY['x', 'y z'] AS t, '{}'::int4[] AS e"})j");
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(molt::codec::to_json(molt::codec::decode_msgpack<json::value>(r.payload)),
            R"j({"columns":["a","t","e"],"rows":[[[1,null],["x","y z"],[]]],"row_count":1})j");
  r = ask(w, 9, "db_query", R"j({"sql": "SELECT ARRAY[[1, 2], [3, 4]] AS m"})j");
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_NE(r.error.find("one-dimensional"), std::string::npos) << r.error;
}

}  // namespace
