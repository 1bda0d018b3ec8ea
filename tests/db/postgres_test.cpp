// molt::db on PostgreSQL: a real throwaway server (tests/support/postgres_server.hpp), one
// per test process. Each test works in its own table and application_name, so the tests
// also pass when run in one process.

#include "molt/db/postgres.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "support/postgres_server.hpp"
#include "support/status_of.hpp"

namespace molt::db {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;
using testing::PostgresServer;

using molt::testing::status_of;

// A database on the shared server whose sessions carry `application_name`, in UTC so that
// timestamps come back the same everywhere.
std::shared_ptr<Database> open(const std::string& application_name, std::size_t pool_size = 2,
                               std::chrono::milliseconds pool_wait = 1s) {
  PostgresOptions o;
  o.dsn = PostgresServer::shared().dsn() + " application_name=" + application_name +
          " options='-c TimeZone=UTC'";
  o.pool_size = pool_size;
  o.pool_wait = pool_wait;
  return open_postgres(o);
}

QueryOptions within(std::chrono::milliseconds timeout) {
  QueryOptions o;
  o.deadline = core::Deadline::after(timeout);
  return o;
}

std::int64_t backend_pid(Database& db) {
  return db.query("SELECT pg_backend_pid() AS pid", {}, {}).get<std::int64_t>(0, "pid");
}

// Whether a statement mentioning `text` is still running for `application_name`, polled
// briefly: the server ends a cancelled statement asynchronously.
bool still_running(const std::string& application_name, const std::string& text) {
  const std::string sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                          application_name + "' AND state = 'active' AND query LIKE '%" + text +
                          "%'";
  for (int i = 0; i < 20; ++i) {
    if (PostgresServer::shared().psql(sql) == "0") return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

TEST(PostgresTest, RoundTripsTypedValuesPositionalAndNamed) {
  auto db = open("molt-roundtrip");
  EXPECT_EQ(db->backend(), Backend::Postgres);
  const Bytes blob{std::string("\0\x01\xff'\\x", 6)};
  auto rows = db->query(
      "SELECT $1::int8 AS i, $2 + 0.5::float8 AS f, $3 AS t, $4 AS b, $5 AS bytes, "
      "$6::int8 AS missing, 12345678901234567890.000000000001::numeric AS num, "
      "'2024-01-02 03:04:05+02'::timestamptz AS ts",
      Params::positional({{std::int64_t{-42}},
                          {1.25},
                          {std::string("héllo 'quoted'")},
                          {true},
                          {blob},
                          Param::null(ValueType::Int)}),
      {});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.columns().size(), 8u);
  EXPECT_EQ(rows.get<std::int64_t>(0, "i"), -42);
  EXPECT_DOUBLE_EQ(rows.get<double>(0, "f"), 1.75);
  EXPECT_EQ(rows.get<std::string>(0, "t"), "héllo 'quoted'");
  EXPECT_EQ(rows.get<bool>(0, "b"), true);
  EXPECT_EQ(rows.get<Bytes>(0, "bytes"), blob);
  EXPECT_EQ(rows.get<std::optional<std::int64_t>>(0, "missing"), std::nullopt);
  EXPECT_EQ(rows.get<std::string>(0, "num"), "12345678901234567890.000000000001");
  EXPECT_EQ(rows.get<std::string>(0, "ts"), "2024-01-02 01:04:05+00");

  // Named: the same name twice is one parameter; `::` casts stay casts.
  auto named = db->query("SELECT :a::int8 + :a::int8 AS twice, :label::text AS label",
                         Params{{{std::int64_t{21}}, {std::string("x")}}, {"a", "label"}}, {});
  EXPECT_EQ(named.get<std::int64_t>(0, "twice"), 42);
  EXPECT_EQ(named.get<std::string>(0, "label"), "x");

  db->execute("CREATE TABLE roundtrip(id bigserial PRIMARY KEY, title text, data bytea)", {}, {});
  const auto inserted =
      db->execute("INSERT INTO roundtrip(title, data) VALUES (:title, :data), (:title, NULL)",
                  Params{{{std::string("t")}, {blob}}, {"title", "data"}}, {});
  EXPECT_EQ(inserted.rows_affected, 2);
  EXPECT_FALSE(inserted.last_insert_id.has_value());  // PostgreSQL callers use RETURNING
  auto back = db->query("SELECT id, data FROM roundtrip ORDER BY id", {}, {});
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.get<std::int64_t>(1, "id"), 2);
  EXPECT_EQ(back.get<std::optional<Bytes>>(0, "data"), blob);
  EXPECT_EQ(back.get<std::optional<Bytes>>(1, "data"), std::nullopt);
  EXPECT_EQ(db->execute("UPDATE roundtrip SET title = 'u'", {}, {}).rows_affected, 2);
  EXPECT_EQ(db->stats().connections, 1u);  // one caller at a time used one connection
}

TEST(PostgresTest, QueryRefusesWritesAndEnforcesMaxRows) {
  auto& pg = PostgresServer::shared();
  pg.psql("CREATE TABLE readonly(id int); INSERT INTO readonly VALUES (1), (2), (3)");
  auto db = open("molt-readonly", 1);

  std::string message;
  EXPECT_EQ(status_of([&] { db->query("INSERT INTO readonly VALUES (4)", {}, {}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("read-only transaction"), std::string::npos) << message;
  EXPECT_EQ(status_of([&] { db->query("DELETE FROM readonly RETURNING id", {}, {}); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(pg.psql("SELECT count(*) FROM readonly"), "3");

  QueryOptions limited;
  limited.max_rows = 2;
  EXPECT_EQ(status_of([&] { db->query("SELECT id FROM readonly", {}, limited); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("max_rows=2"), std::string::npos) << message;
  limited.max_rows = 3;
  EXPECT_EQ(db->query("SELECT id FROM readonly", {}, limited).size(), 3u);

  // Inside a transaction too; the refusal leaves the transaction usable for writes.
  auto tx = db->begin({});
  EXPECT_EQ(status_of([&] { tx.query("DELETE FROM readonly"); }), StatusCode::InvalidInput);
  EXPECT_EQ(tx.execute("INSERT INTO readonly VALUES (4)").rows_affected, 1);
  EXPECT_EQ(tx.query("SELECT count(*) AS n FROM readonly").get<std::int64_t>(0, "n"), 4);
  tx.commit();
  EXPECT_EQ(pg.psql("SELECT count(*) FROM readonly"), "4");
}

TEST(PostgresTest, SqlErrorsAreInvalidInputWithTheServersMessage) {
  auto db = open("molt-errors", 1);
  std::string message;
  EXPECT_EQ(status_of([&] { db->query("SELEC 1", {}, {}); }, &message), StatusCode::InvalidInput);
  EXPECT_NE(message.find("syntax error at or near \"SELEC\""), std::string::npos) << message;
  EXPECT_EQ(status_of([&] { db->query("SELECT * FROM no_such_table", {}, {}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("\"no_such_table\" does not exist"), std::string::npos) << message;
  EXPECT_EQ(status_of([&] { db->query("SELECT 1 / 0", {}, {}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("division by zero"), std::string::npos) << message;
  EXPECT_EQ(status_of([&] {
              db->query("SELECT $1::int + $2::int", Params::positional({{std::int64_t{1}}}), {});
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of(
                [&] {
                  db->query("SELECT :a::int", Params{{{std::int64_t{1}}}, {"b"}}, {});
                },
                &message),
            StatusCode::InvalidInput);

  db->execute("CREATE TABLE errors(id int PRIMARY KEY)", {}, {});
  db->execute("INSERT INTO errors VALUES (1)", {}, {});
  EXPECT_EQ(status_of([&] { db->execute("INSERT INTO errors VALUES (1)", {}, {}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("duplicate key"), std::string::npos) << message;
  // Every error left the one connection usable.
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM errors", {}, {}).get<std::int64_t>(0, "n"), 1);
}

TEST(PostgresTest, DeadlineCancelsTheStatementOnTheServerAndKeepsTheConnection) {
  auto db = open("molt-deadline", 1);
  const auto pid = backend_pid(*db);
  const auto started = std::chrono::steady_clock::now();
  std::string message;
  EXPECT_EQ(status_of([&] { db->query("SELECT pg_sleep(10)", {}, within(300ms)); }, &message),
            StatusCode::Timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms) << message;
  EXPECT_FALSE(still_running("molt-deadline", "pg_sleep"));
  // The same pooled connection answers, outside any leftover transaction.
  EXPECT_EQ(backend_pid(*db), pid);
  EXPECT_EQ(PostgresServer::shared().psql(
                "SELECT state FROM pg_stat_activity WHERE application_name = 'molt-deadline'"),
            "idle");
  db->execute("CREATE TEMP TABLE after_timeout(id int)", {}, {});  // not read-only any more
  // Without a deadline of its own the call gets query_timeout.
  PostgresOptions o;
  o.dsn = PostgresServer::shared().dsn() + " application_name=molt-deadline-default";
  o.pool_size = 1;
  o.query_timeout = 200ms;
  auto short_db = open_postgres(o);
  EXPECT_EQ(status_of([&] { short_db->execute("SELECT pg_sleep(10)", {}, {}); }),
            StatusCode::Timeout);
  EXPECT_FALSE(still_running("molt-deadline-default", "pg_sleep"));
}

TEST(PostgresTest, CancelFromAnotherThreadStopsTheStatementAtOnce) {
  auto db = open("molt-cancel", 1);
  const auto pid = backend_pid(*db);
  core::CancelSource source;
  QueryOptions options;
  options.cancel = source.token();
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    source.cancel();
  });
  const auto started = std::chrono::steady_clock::now();
  const auto status = status_of([&] { db->query("SELECT pg_sleep(10)", {}, options); });
  const auto took = std::chrono::steady_clock::now() - started;
  canceller.join();
  EXPECT_EQ(status, StatusCode::Cancelled);
  EXPECT_LT(took, 1500ms);
  EXPECT_FALSE(still_running("molt-cancel", "pg_sleep"));
  EXPECT_EQ(backend_pid(*db), pid);

  // A token that already fired stops the call before it reaches the server.
  EXPECT_EQ(status_of([&] { db->query("SELECT 1", {}, options); }), StatusCode::Cancelled);
  core::CancelSource timed_out;
  timed_out.cancel(core::CancelReason::Timeout);
  QueryOptions by_timeout;
  by_timeout.cancel = timed_out.token();
  EXPECT_EQ(status_of([&] { db->execute("SELECT 1", {}, by_timeout); }), StatusCode::Timeout);
}

TEST(PostgresTest, PoolWaitEndsInBusyAndTransactionsRollBackUnlessCommitted) {
  auto& pg = PostgresServer::shared();
  pg.psql("CREATE TABLE pooled(id int)");
  auto db = open("molt-pool", 1, 200ms);
  {
    auto tx = db->begin({});
    tx.execute("INSERT INTO pooled VALUES (1)");
    EXPECT_EQ(db->stats().in_use, 1u);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(status_of([&] { db->query("SELECT 1", {}, {}); }), StatusCode::Busy);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);
    EXPECT_EQ(pg.psql("SELECT count(*) FROM pooled"), "0");  // not visible before commit
  }  // destroyed without commit: rolled back
  EXPECT_EQ(db->stats().in_use, 0u);
  EXPECT_EQ(pg.psql("SELECT count(*) FROM pooled"), "0");

  // A waiter gets the connection as soon as the transaction ends.
  auto tx = db->begin({});
  std::thread finisher([&] {
    std::this_thread::sleep_for(50ms);
    tx.execute("INSERT INTO pooled VALUES (2)");
    tx.commit();
  });
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM pooled", {}, {}).get<std::int64_t>(0, "n"), 1);
  finisher.join();

  // The transaction keeps the database alive; a failed transaction does not commit.
  auto last = db->begin({});
  db.reset();
  last.execute("INSERT INTO pooled VALUES (3)");
  EXPECT_EQ(status_of([&] { last.execute("INSERT INTO pooled VALUES ('x')"); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of([&] { last.commit(); }), StatusCode::InvalidInput);
  EXPECT_EQ(pg.psql("SELECT string_agg(id::text, ',') FROM pooled"), "2");
}

// Last in the file: when every test runs in one process, the restart comes after the others.
TEST(PostgresTest, ReconnectsAfterTheServerRestarted) {
  auto& pg = PostgresServer::shared();
  auto db = open("molt-restart", 1);
  const auto pid = backend_pid(*db);
  pg.restart();
  // The old pooled connection is dead: the call either finds out before sending and
  // reconnects, or reports the lost connection.
  std::string message;
  const auto status = status_of([&] { db->query("SELECT 1", {}, {}); }, &message);
  EXPECT_TRUE(status == StatusCode::Ok || status == StatusCode::InternalError) << message;
  if (status == StatusCode::InternalError) {
    EXPECT_NE(message.find("database connection lost"), std::string::npos) << message;
  }
  EXPECT_NE(backend_pid(*db), pid);
  EXPECT_EQ(db->stats().connections, 1u);

  // A server that is down: connection errors, then recovery once it is back.
  pg.stop();
  EXPECT_EQ(status_of([&] { db->query("SELECT 1", {}, {}); }), StatusCode::InternalError);
  EXPECT_EQ(db->stats().connections, 0u);
  pg.start();
  EXPECT_EQ(db->query("SELECT 2 AS two", {}, {}).get<std::int64_t>(0, "two"), 2);
}

}  // namespace
}  // namespace molt::db
