// End-to-end: the real molt-worker on a real SQLite file (list_items database mode, db_query,
// db_exec), including deadlines, pool exhaustion and refused writes.

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "demo_seed.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/db/sqlite.hpp"
#include "support/worker_process.hpp"

namespace {

using namespace std::chrono_literals;
using molt::core::StatusCode;
using molt::ipc::Codec;
using molt::ipc::Response;
using molt::testing::make_request;
using molt::testing::msgpack_of;
using molt::testing::WorkerProcess;
namespace json = boost::json;
namespace db = molt::db;

constexpr std::string_view kSlowQuery =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n";

class WorkerDbTest : public ::testing::Test {
 protected:
  WorkerDbTest() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("molt_worker_db_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "demo.db").string();
    db::SqliteOptions o;
    o.path = path_;
    o.read_write = o.create = true;
    auto d = db::open_sqlite(o);
    d->execute(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
        "created_at TEXT NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL, "
        "score REAL NOT NULL, unread INTEGER NOT NULL)",
        {}, {});
    auto tx = d->begin({});
    // Users 1..3, ten items each; ids 1..30; every third item closed.
    for (std::int64_t id = 1; id <= 30; ++id) {
      const std::int64_t user = (id - 1) / 10 + 1;
      tx.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                 db::Params::positional(
                     {{id},
                      {user},
                      {std::string("2026-01-0") + std::to_string(id % 9 + 1) + "T00:00:00Z"},
                      {std::string(id % 3 == 0 ? "closed" : "open")},
                      {"Item " + std::to_string(id) + (id % 2 ? " alpha" : " beta_x")},
                      {static_cast<double>(id) / 4},
                      {std::int64_t{id % 4 == 0}}}));
    }
    molt::demo::create_item_counts(tx, db::Backend::Sqlite);  // list_items reads its counts there
    tx.commit();
  }
  ~WorkerDbTest() override { std::filesystem::remove_all(dir_); }

  WorkerProcess worker(std::vector<std::string> env = {}, std::vector<std::string> args = {}) {
    env.push_back("MOLT_DB_SQLITE_PATH=" + path_);
    return WorkerProcess(MOLT_WORKER_BINARY, args, env);
  }

  static Response answer(WorkerProcess& w) {
    auto r = w.receive(5s);
    if (!r) {
      ADD_FAILURE() << "no answer; stderr: " << w.stderr_text();
      return {};
    }
    return *r;
  }
  static json::value query_json(WorkerProcess& w, std::string_view request_json,
                                std::string_view entry = "db_query") {
    w.send(make_request(1, std::string(entry), Codec::MsgPack, msgpack_of(request_json), 5000));
    const Response r = answer(w);
    EXPECT_EQ(r.status, StatusCode::Ok) << r.error;
    if (r.codec == Codec::Json) return json::parse(r.payload);
    return molt::codec::decode_msgpack<json::value>(r.payload);
  }

  std::filesystem::path dir_;
  std::string path_;
};

// list_items's SQL is the worker's own: a database it does not fit is the server's failure
// (InternalError, 500 through Django), not the caller's bad input (it was InvalidInput: 400,
// and allow_fallback never ran). The log names the missing table.
TEST_F(WorkerDbTest, ListItemsOnADatabaseWithoutItemCountsNamesTheMissingTableInTheLog) {
  {
    db::SqliteOptions o;
    o.path = path_;
    o.read_write = true;
    db::open_sqlite(o)->execute("DROP TABLE item_counts", {}, {});
  }
  auto w = worker();
  w.send(make_request(1, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": 2})")));
  const Response r = answer(w);
  EXPECT_EQ(r.status, StatusCode::InternalError);
  EXPECT_EQ(r.error, "export 'list_items' failed (the worker's log says why)");
  w.close_stdin();
  w.wait_exit(5s);
  EXPECT_NE(w.stderr_text().find("no such table: item_counts"), std::string::npos)
      << w.stderr_text();
}

// A file that is not a database opens, then fails every read: InternalError for list_items,
// and health says the database is not ok.
TEST_F(WorkerDbTest, AFileThatIsNotADatabaseIsTheServersFailure) {
  std::ofstream(path_, std::ios::trunc) << std::string(4096, 'x');
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  auto w = worker();
  w.send(make_request(1, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": 2})")));
  EXPECT_EQ(answer(w).status, StatusCode::InternalError);
  w.send(make_request(2, "db_query", Codec::MsgPack,
                      msgpack_of(R"({"sql": "SELECT count(*) FROM items"})")));
  const Response q = answer(w);
  EXPECT_EQ(q.status, StatusCode::InternalError) << q.error;
  w.send(make_request(3, "health", Codec::Json, "{}"));
  const json::value health = json::parse(answer(w).payload);
  EXPECT_EQ(health.at("db").at("ok"), false);
}

TEST_F(WorkerDbTest, ListItemsReadsTheDatabaseWithFiltersAndKeysetPages) {
  auto w = worker();
  w.send(
      make_request(1, "list_items", Codec::MsgPack, msgpack_of(R"({"user_id": 2, "limit": 4})")));
  Response r = answer(w);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  EXPECT_EQ(
      r.payload,
      R"({"items":[)"
      R"({"id":11,"created_at":"2026-01-03T00:00:00Z","status":"open","title":"Item 11 alpha","score":2.75,"unread":false},)"
      R"({"id":12,"created_at":"2026-01-04T00:00:00Z","status":"closed","title":"Item 12 beta_x","score":3.0,"unread":true},)"
      R"({"id":13,"created_at":"2026-01-05T00:00:00Z","status":"open","title":"Item 13 alpha","score":3.25,"unread":false},)"
      R"({"id":14,"created_at":"2026-01-06T00:00:00Z","status":"open","title":"Item 14 beta_x","score":3.5,"unread":false}],)"
      R"("next_cursor":"14","counts":{"open":7,"closed":3}})");
  // The next page starts after the cursor; the last page has no cursor.
  const json::value page2 = json::parse(
      (w.send(make_request(2, "list_items", Codec::MsgPack,
                           msgpack_of(R"({"user_id": 2, "limit": 10, "cursor": "14"})"))),
       answer(w).payload));
  EXPECT_EQ(page2.at("items").as_array().size(), 6u);
  EXPECT_EQ(page2.at("items").at(0).at("id"), 15);
  EXPECT_TRUE(page2.at("next_cursor").is_null());
  // status and q filter; q's '_' is a literal character, not a LIKE wildcard.
  const json::value filtered = json::parse(
      (w.send(make_request(3, "list_items", Codec::MsgPack,
                           msgpack_of(R"({"user_id": 1, "status": "open", "q": "a_x"})"))),
       answer(w).payload));
  std::vector<std::int64_t> ids;
  for (const auto& item : filtered.at("items").as_array()) ids.push_back(item.at("id").as_int64());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{2, 4, 8, 10}));
  EXPECT_EQ(filtered.at("counts").at("closed"), 3);
}

TEST_F(WorkerDbTest, ListItemsRefusesABadCursor) {
  auto w = worker();
  w.send(make_request(1, "list_items", Codec::MsgPack,
                      msgpack_of(R"({"user_id": 2, "cursor": "x1"})")));
  const Response r = answer(w);
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  EXPECT_NE(r.error.find("payload.cursor"), std::string::npos) << r.error;
  // SQLite's LIKE stops at a NUL: the pattern "%\0%" matched every item.
  w.send(make_request(2, "list_items", Codec::MsgPack,
                      msgpack_of(R"({"user_id": 2, "q": "\u0000"})")));
  const Response nul = answer(w);
  EXPECT_EQ(nul.status, StatusCode::InvalidInput);
  EXPECT_NE(nul.error.find("payload.q: must not contain a NUL byte"), std::string::npos)
      << nul.error;
}

TEST_F(WorkerDbTest, DbQueryWithPositionalAndNamedParamsOnBothResultFormats) {
  auto w = worker();
  const json::value mp = query_json(
      w, R"({"sql": "SELECT id, title FROM items WHERE user_id = ? AND id < ? ORDER BY id",
      "params": {"mode": "positional", "values": [3, 23]}, "tag": "t1"})");
  EXPECT_EQ(
      molt::codec::to_json(mp),
      R"({"columns":["id","title"],"rows":[[21,"Item 21 alpha"],[22,"Item 22 beta_x"]],"row_count":2})");
  const json::value js = query_json(w, R"({"sql": "SELECT :b AS b, :a AS a, :n AS n",
      "params": {"mode": "named", "values": [{"name": "a", "value": 1.5}, {"name": "b", "value": "x"},
                                              {"name": "n", "type": "int", "value": null}]},
      "result_format": "json"})");
  EXPECT_EQ(molt::codec::to_json(js),
            R"({"columns":["b","a","n"],"rows":[["x",1.5,null]],"row_count":1})");
  // Keys in any order: the mode after the values, the value before the name, the sql last.
  const json::value reordered = query_json(w, R"({"result_format": "json",
      "params": {"values": [{"value": "y", "name": "b"}, {"value": 2, "name": "a"}], "mode": "named"},
      "sql": "SELECT :a AS a, :b AS b"})");
  EXPECT_EQ(molt::codec::to_json(reordered),
            R"({"columns":["a","b"],"rows":[[2,"y"]],"row_count":1})");
}

TEST_F(WorkerDbTest, DbQueryRefusesBadParametersWritesAndMalformedSql) {
  auto w = worker({"MOLT_DB_SQLITE_READWRITE=1"});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"sql": "SELECT ?", "params": {"values": [null]}})", "typed null"},
      {R"({"sql": "SELECT ?", "params": {"values": [[1]]}})", "payload.params.values[0]"},
      {R"({"sql": "SELECT ?", "params": {"values": [{"type": "int", "value": "x"}]}})",
       "expected int, got str"},
      {R"({"sql": "SELECT :a", "params": {"mode": "named", "values": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]}})",
       "given twice"},
      {R"({"sql": "SELECT :a", "params": {"mode": "named", "values": [{"name": "b", "value": 1}]}})",
       "no value given for :a"},
      {R"({"sql": "DELETE FROM items"})", "writes"},
      {R"({"sql": "SELEC 1"})", "syntax error"},
      {R"({"sql": "SELECT 1", "result_format": "arrow_ipc"})", "arrow_ipc is not supported yet"},
      {R"({"sql": "SELECT 1", "db_alias": "other"})", "unknown database 'other'"},
      {R"({"sql": "SELECT id FROM items", "max_rows": 5})", "max_rows=5"},
      {R"({"params": {}})", "payload.sql"},
  };
  std::uint64_t id = 0;
  for (const auto& [request, expected] : cases) {
    w.send(make_request(++id, "db_query", Codec::MsgPack, msgpack_of(request)));
    const Response r = answer(w);
    EXPECT_EQ(r.status, StatusCode::InvalidInput) << request;
    EXPECT_NE(r.error.find(expected), std::string::npos) << request << " -> " << r.error;
  }
  EXPECT_EQ(query_json(w, R"({"sql": "SELECT count(*) FROM items"})").at("rows").at(0).at(0), 30);
}

// A result that could not go out in one frame stops being read once it is past that size
// (it was built and encoded whole, then replaced by an InternalError); the worker goes on.
TEST_F(WorkerDbTest, AResultLargerThanAFrameIsRefusedWhileItIsRead) {
  auto w = worker({}, {"--max-frame-size", "65536"});
  w.send(make_request(1, "db_query", Codec::MsgPack,
                      msgpack_of(R"({"sql": "SELECT zeroblob(10000) FROM items"})")));
  const Response r = answer(w);
  EXPECT_EQ(r.status, StatusCode::InvalidInput);
  // The frame less the envelope's room (ipc::payload_room).
  EXPECT_NE(r.error.find("larger than 61440 bytes"), std::string::npos) << r.error;
  EXPECT_EQ(query_json(w, R"({"sql": "SELECT count(*) FROM items"})").at("rows").at(0).at(0), 30);

  // Found by a review: cells within the budget whose encoding is not (40,000 quotes, escaped
  // in JSON) were an InternalError from the frame check; it is the query's result too.
  w.send(make_request(
      2, "db_query", Codec::MsgPack,
      msgpack_of(
          R"j({"sql": "SELECT replace(hex(zeroblob(20000)), '0', '\"')", "result_format": "json"})j")));
  const Response escaped = answer(w);
  EXPECT_EQ(escaped.status, StatusCode::InvalidInput);
  EXPECT_NE(escaped.error.find("passes 61440 bytes encoded"), std::string::npos) << escaped.error;
}

// JSON has no NaN or infinities: result_format json writes them as PostgreSQL's to_json()
// does (they were bare Infinity tokens, which strict parsers refuse).
TEST_F(WorkerDbTest, InfinitiesAreStringsInJsonResults) {
  auto w = worker();
  const json::value js = query_json(
      w, R"({"sql": "SELECT 9e999 AS up, -9e999 AS down, 1.5 AS fine", "result_format": "json"})");
  EXPECT_EQ(molt::codec::to_json(js.at("rows")), R"([["Infinity","-Infinity",1.5]])");
}

// health says whether the database answers, beside the worker's own "ok".
TEST_F(WorkerDbTest, HealthSaysWhetherTheDatabaseAnswers) {
  auto w = worker();
  w.send(make_request(1, "health", Codec::Json, "{}"));
  const json::value up = json::parse(answer(w).payload);
  EXPECT_EQ(up.at("ok"), true);
  EXPECT_EQ(up.at("db"), json::parse(R"({"backend": "sqlite", "ok": true})"));

  // A PostgreSQL server that is not there: the worker is fine, its database is not, and the
  // connection's text (host, port) stays in the log.
  WorkerProcess down(MOLT_WORKER_BINARY, {},
                     {"MOLT_DB_POSTGRES_DSN=host=127.0.0.1 port=1 connect_timeout=1"});
  down.send(make_request(2, "health", Codec::Json, "{}"));
  const Response r = answer(down);
  ASSERT_EQ(r.status, StatusCode::Ok) << r.error;
  const json::value out = json::parse(r.payload);
  EXPECT_EQ(out.at("ok"), true);
  EXPECT_EQ(out.at("db").at("backend"), "postgres");
  EXPECT_EQ(out.at("db").at("ok"), false);
  EXPECT_EQ(r.payload.find("127.0.0.1"), std::string::npos) << r.payload;
}

TEST_F(WorkerDbTest, DbExecNeedsAllowWriteAndAWritableDatabase) {
  {
    auto ro = worker();
    ro.send(make_request(1, "db_exec", Codec::MsgPack,
                         msgpack_of(R"({"sql": "DELETE FROM items", "allow_write": true})")));
    const Response r = answer(ro);
    EXPECT_EQ(r.status, StatusCode::InvalidInput);
    EXPECT_NE(r.error.find("MOLT_DB_SQLITE_READWRITE"), std::string::npos) << r.error;
  }
  auto w = worker({"MOLT_DB_SQLITE_READWRITE=1"});
  w.send(make_request(1, "db_exec", Codec::MsgPack, msgpack_of(R"({"sql": "DELETE FROM items"})")));
  const Response refused = answer(w);
  EXPECT_EQ(refused.status, StatusCode::InvalidInput);
  EXPECT_NE(refused.error.find("allow_write"), std::string::npos) << refused.error;
  const json::value done =
      query_json(w, R"j({"sql": "INSERT INTO items VALUES (?, 9, 'd', 'open', 't', 1.0, 0)",
      "params": {"values": [100]}, "allow_write": true})j",
                 "db_exec");
  EXPECT_EQ(done.at("rows_affected"), 1);
  EXPECT_EQ(done.at("last_insert_id"), 100);
  EXPECT_EQ(query_json(w, R"({"sql": "SELECT count(*) FROM items"})").at("rows").at(0).at(0), 31);
  // max_rows holds db_exec's rows too: a SELECT is refused, and so is a write whose RETURNING
  // rows pass it, which is rolled back.
  for (const char* sql : {"SELECT id FROM items", "UPDATE items SET score = -1 RETURNING id"}) {
    w.send(make_request(2, "db_exec", Codec::MsgPack,
                        msgpack_of(std::string(R"({"sql": ")") + sql +
                                   R"(", "max_rows": 3, "allow_write": true})")));
    const Response r = answer(w);
    EXPECT_EQ(r.status, StatusCode::InvalidInput) << sql;
    EXPECT_NE(r.error.find("max_rows=3"), std::string::npos) << sql << " -> " << r.error;
  }
  EXPECT_EQ(query_json(w, R"({"sql": "SELECT count(*) FROM items WHERE score = -1"})")
                .at("rows")
                .at(0)
                .at(0),
            0);
}

TEST_F(WorkerDbTest, SlowQueryPastItsDeadlineIsStoppedAndTheWorkerGoesOn) {
  auto w = worker({"MOLT_DB_POOL_SIZE=1"}, {"--threads", "1"});
  const auto start = std::chrono::steady_clock::now();
  w.send(make_request(1, "db_query", Codec::MsgPack,
                      msgpack_of(R"({"sql": ")" + std::string(kSlowQuery) + R"("})"), 200));
  const Response r = answer(w);
  EXPECT_EQ(r.status, StatusCode::Timeout) << r.error;
  // The one connection and the one thread are free again: the query really stopped.
  EXPECT_EQ(query_json(w, R"({"sql": "SELECT count(*) FROM items"})").at("rows").at(0).at(0), 30);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST_F(WorkerDbTest, ExhaustedConnectionPoolAnswersBusy) {
  auto w = worker({"MOLT_DB_POOL_SIZE=1", "MOLT_DB_POOL_WAIT_MS=100"}, {"--threads", "2"});
  w.send(make_request(1, "db_query", Codec::MsgPack,
                      msgpack_of(R"({"sql": ")" + std::string(kSlowQuery) + R"("})"), 2000));
  std::this_thread::sleep_for(100ms);
  w.send(make_request(2, "db_query", Codec::MsgPack, msgpack_of(R"({"sql": "SELECT 1"})"), 2000));
  const Response busy = answer(w);
  EXPECT_EQ(busy.request_id, 2u);
  EXPECT_EQ(busy.status, StatusCode::Busy) << busy.error;
  w.send(make_request(1, "__cancel__", Codec::MsgPack, msgpack_of(R"({"request_id": 1})")));
  EXPECT_EQ(answer(w).status, StatusCode::Cancelled);
}

// Found by a new-user review: the library's hint named its C++ options (`create`,
// `read_write`), which a worker's user cannot set.
TEST(WorkerNoDbTest, AMissingSqliteFileIsSaidInTheWorkersTerms) {
  const std::string missing =
      (std::filesystem::path(::testing::TempDir()) / "molt-no-such-file.db").string();
  WorkerProcess w(MOLT_WORKER_BINARY, {}, {"MOLT_DB_SQLITE_PATH=" + missing});
  w.close_stdin();
  EXPECT_EQ(w.wait_exit(5s), 2);
  EXPECT_NE(w.stderr_text().find("MOLT_DB_SQLITE_PATH names no file"), std::string::npos)
      << w.stderr_text();
  EXPECT_NE(w.stderr_text().find("molt-seed"), std::string::npos) << w.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST(WorkerNoDbTest, DbQueryWithoutADatabaseIsInvalidInput) {
  WorkerProcess w(MOLT_WORKER_BINARY, {});
  w.send(make_request(1, "db_query", Codec::MsgPack, msgpack_of(R"({"sql": "SELECT 1"})")));
  auto r = w.receive(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, StatusCode::InvalidInput);
  EXPECT_NE(r->error.find("no database is configured"), std::string::npos) << r->error;
}

}  // namespace
