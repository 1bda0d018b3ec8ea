// molt::db on SQLite: real database files in a temporary folder.

#include "molt/db/sqlite.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <thread>
#include <type_traits>

#include "support/cancel_later.hpp"
#include "support/status_of.hpp"

namespace molt::db {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;

// A query that runs for a long time unless stopped: counts to a billion.
constexpr std::string_view kSlowQuery =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n";

using molt::testing::CancelLater;
using molt::testing::status_of;

class SqliteTest : public ::testing::Test {
 protected:
  SqliteTest() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("molt_sqlite_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "test.db").string();
    auto db = writable();
    db->execute(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, "
        "score REAL, data BLOB)",
        {}, {});
    for (int i = 1; i <= 5; ++i)
      db->execute(
          "INSERT INTO items(user_id, title, score) VALUES (?, ?, ?)",
          Params::positional({{std::int64_t{i % 2}}, {"item " + std::to_string(i)}, {i / 4.0}}),
          {});
  }
  ~SqliteTest() override { std::filesystem::remove_all(dir_); }

  std::shared_ptr<Database> writable(std::size_t readers = 2) {
    SqliteOptions o;
    o.path = path_;
    o.read_write = true;
    o.create = true;
    o.readers = readers;
    return open_sqlite(o);
  }
  std::shared_ptr<Database> read_only(std::size_t readers = 2,
                                      std::chrono::milliseconds wait = 1s) {
    SqliteOptions o;
    o.path = path_;
    o.readers = readers;
    o.pool_wait = wait;
    return open_sqlite(o);
  }
  std::int64_t count(Database& db) {
    return db.query("SELECT count(*) AS n FROM items", {}, {}).get<std::int64_t>(0, "n");
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteTest, QueryReturnsTypedRowsByIndexAndName) {
  auto db = read_only();
  const Rows rows =
      db->query("SELECT id, title, score, data FROM items WHERE user_id = ? ORDER BY id",
                Params::positional({{std::int64_t{1}}}), {});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.columns(), (std::vector<std::string>{"id", "title", "score", "data"}));
  EXPECT_EQ(rows.get<std::int64_t>(0, "id"), 1);
  EXPECT_EQ(rows.get<std::string>(1, "title"), "item 3");
  EXPECT_DOUBLE_EQ(rows.get<double>(2, "score"), 1.25);
  EXPECT_EQ(rows.get<std::optional<std::string>>(0, "data"), std::nullopt);
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(rows.at(0, 3)));
  EXPECT_EQ(status_of([&] { rows.get<std::string>(0, "id"); }), StatusCode::InternalError);
  // By position (a literal 0 went to the name overload as a null pointer: a crash).
  EXPECT_EQ(rows.get<std::int64_t>(0, 0), 1);
  EXPECT_EQ(rows.get<std::string>(1, 1), "item 3");
  std::string why;
  EXPECT_EQ(status_of([&] { rows.get<std::string>(0, 0); }, &why), StatusCode::InternalError);
  EXPECT_NE(why.find("id"), std::string::npos) << why;  // names the column
  EXPECT_EQ(status_of([&] { rows.get<std::int64_t>(0, 4); }), StatusCode::InternalError);
}

TEST_F(SqliteTest, NamedParametersBindByNameInAnyOrder) {
  auto db = read_only();
  Params p{{{std::string("item 2")}, {std::int64_t{0}}}, {"title", "user_id"}};
  const Rows rows =
      db->query("SELECT id FROM items WHERE user_id = :user_id AND title = :title", p, {});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.get<std::int64_t>(0, "id"), 2);
  // Each value beside its name: the same binding.
  const Rows again = db->query(
      "SELECT id FROM items WHERE user_id = :user_id AND title = :title",
      Params::named({{"title", {std::string("item 2")}}, {"user_id", {std::int64_t{0}}}}), {});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again.get<std::int64_t>(0, "id"), 2);
}

TEST_F(SqliteTest, BatchesRunInOrderOnOneConnectionWithTheRulesOfSingleQueries) {
  auto db = read_only(/*readers=*/1);
  EXPECT_TRUE(db->query_batch({}, {}).empty());
  const auto results = db->query_batch(
      {{"SELECT count(*) AS n FROM items", {}},
       {"SELECT id FROM items WHERE user_id = :u ORDER BY id", Params{{{std::int64_t{0}}}, {"u"}}},
       {"SELECT ? * 2 AS twice", Params::positional({{std::int64_t{21}}})}},
      {});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].get<std::int64_t>(0, "n"), 5);
  ASSERT_EQ(results[1].size(), 2u);
  EXPECT_EQ(results[1].get<std::int64_t>(1, "id"), 4);
  EXPECT_EQ(results[2].get<std::int64_t>(0, "twice"), 42);

  std::string why;
  EXPECT_EQ(status_of(
                [&] {
                  db->query_batch({{"SELECT 1", {}}, {"SELEC 2", {}}}, {});
                },
                &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("syntax error"), std::string::npos) << why;
  auto rw = writable(1);
  EXPECT_EQ(status_of([&] {
              rw->query_batch({{"SELECT 1", {}}, {"DELETE FROM items", {}}}, {});
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(count(*rw), 5);
  QueryOptions limited;
  limited.max_rows = 4;
  EXPECT_EQ(status_of([&] {
              db->query_batch({{"SELECT 1", {}}, {"SELECT id FROM items", {}}}, limited);
            }),
            StatusCode::InvalidInput);
  QueryOptions short_deadline;
  short_deadline.deadline = core::Deadline::after(100ms);
  EXPECT_EQ(status_of([&] {
              db->query_batch({{"SELECT 1", {}}, {kSlowQuery, {}}}, short_deadline);
            }),
            StatusCode::Timeout);
  EXPECT_EQ(db->stats().in_use, 0u);
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, TheStatementsOfABatchSeeOneSnapshot) {
  auto db = writable(/*readers=*/1);
  // A write committed while the batch's first statement runs (WAL lets it) is seen by no
  // statement of the batch, and by the next call.
  std::vector<std::int64_t> counts;
  db->query_batch_each({{"SELECT count(*) FROM items", {}}, {"SELECT count(*) FROM items", {}}}, {},
                       [&](std::size_t statement, const RowView& row) {
                         counts.push_back(row.integer(0));
                         if (statement == 0)
                           db->execute("INSERT INTO items(user_id, title) VALUES (9, 'new')", {},
                                       {});
                       });
  EXPECT_EQ(counts, (std::vector<std::int64_t>{5, 5}));
  const auto batch = db->query_batch(
      {{"SELECT count(*) AS n FROM items", {}}, {"SELECT count(*) AS n FROM items", {}}}, {});
  EXPECT_EQ(batch.at(1).get<std::int64_t>(0, "n"), 6);
  // A failed statement ends the read transaction too: the connection reads the newest data.
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELECT 1", {}}, {"SELEC 2", {}}}, {},
                                   [](std::size_t, const RowView&) {});
            }),
            StatusCode::InvalidInput);
  db->execute("INSERT INTO items(user_id, title) VALUES (9, 'newer')", {}, {});
  EXPECT_EQ(count(*db), 7);
}

TEST_F(SqliteTest, BatchRowsAreVisitedInPlaceByPositionWithTheRulesOfQueryBatch) {
  auto db = writable(/*readers=*/1);
  db->execute("UPDATE items SET data = x'00ff' WHERE id = 2", {}, {});
  struct Seen {
    std::size_t statement;
    std::int64_t id;
    std::string title;
    double score;
    ValueType data;
    std::string bytes;
  };
  std::vector<Seen> seen;
  std::size_t width = 0;
  db->query_batch_each({{"SELECT id, title, score, data FROM items WHERE user_id = :u ORDER BY id",
                         Params{{{std::int64_t{0}}}, {"u"}}},
                        {"SELECT ? * 2, 'x', 1.5, NULL", Params::positional({{std::int64_t{21}}})}},
                       {}, [&](std::size_t statement, const RowView& row) {
                         width = row.width();
                         const CellView data = row.cell(3);
                         seen.push_back({statement, row.integer(0), std::string(row.text(1)),
                                         row.number(2), data.type, std::string(data.text)});
                       });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(width, 4u);
  EXPECT_EQ(seen[0].statement, 0u);
  EXPECT_EQ(seen[0].id, 2);
  EXPECT_EQ(seen[0].title, "item 2");
  EXPECT_DOUBLE_EQ(seen[0].score, 0.5);
  EXPECT_EQ(seen[0].data, ValueType::Bytes);
  EXPECT_EQ(seen[0].bytes, std::string("\x00\xff", 2));
  EXPECT_EQ(seen[1].id, 4);
  EXPECT_EQ(seen[1].data, ValueType::Null);
  EXPECT_EQ(seen[2].statement, 1u);
  EXPECT_EQ(seen[2].id, 42);
  EXPECT_EQ(seen[2].title, "x");
  EXPECT_DOUBLE_EQ(seen[2].score, 1.5);

  // A cell of another type, or past the last column, is InternalError naming the column.
  std::string why;
  EXPECT_EQ(status_of(
                [&] {
                  db->query_batch_each({{"SELECT 'text'", {}}}, {},
                                       [](std::size_t, const RowView& row) { row.integer(0); });
                },
                &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("column 0 holds str, not integer"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELECT NULL", {}}}, {},
                                   [](std::size_t, const RowView& row) { row.text(0); });
            }),
            StatusCode::InternalError);
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELECT 1", {}}}, {},
                                   [](std::size_t, const RowView& row) { row.cell(1); });
            }),
            StatusCode::InternalError);

  // The rules of query_batch: bad SQL, writes, max_rows and the deadline.
  const auto nothing = [](std::size_t, const RowView&) {};
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELEC 2", {}}}, {}, nothing);
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"DELETE FROM items", {}}}, {}, nothing);
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(count(*db), 5);
  QueryOptions limited;
  limited.max_rows = 4;
  std::size_t visited = 0;
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELECT id FROM items", {}}}, limited,
                                   [&](std::size_t, const RowView&) { ++visited; });
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(visited, 4u);
  QueryOptions short_deadline;
  short_deadline.deadline = core::Deadline::after(100ms);
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{kSlowQuery, {}}}, short_deadline, nothing);
            }),
            StatusCode::Timeout);
  EXPECT_EQ(db->stats().in_use, 0u);
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, ParameterMismatchesAreInvalidInputNamingTheProblem) {
  auto db = read_only();
  std::string why;
  EXPECT_EQ(
      status_of([&] { db->query("SELECT ? + ?", Params::positional({{std::int64_t{1}}}), {}); },
                &why),
      StatusCode::InvalidInput);
  EXPECT_NE(why.find("2 placeholders but 1 values"), std::string::npos) << why;
  EXPECT_EQ(status_of(
                [&] {
                  db->query("SELECT :a", Params{{{std::int64_t{1}}}, {"b"}}, {});
                },
                &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("no value given for :a"), std::string::npos) << why;
  EXPECT_EQ(status_of(
                [&] {
                  db->query("SELECT :a",
                            Params{{{std::int64_t{1}}, {std::int64_t{2}}}, {"a", "zzz"}}, {});
                },
                &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("no :zzz"), std::string::npos) << why;
}

TEST_F(SqliteTest, MalformedSqlIsInvalidInputWithSqlitesMessage) {
  auto db = read_only();
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("SELEC id FROM items", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("syntax error"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] { db->query("SELECT 1; SELECT 2", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of([&] { db->query("SELECT 1; -- x\nSELECT 2", {}, {}); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(status_of([&] { db->query("SELECT 1; /* x */ SELECT 2", {}, {}); }),
            StatusCode::InvalidInput);
  // Comments after the statement are not a second one (found by a review of molt-worker).
  for (const char* sql : {"SELECT 1 AS one; -- the end", "SELECT 1 AS one; /* c */ ;\n",
                          "SELECT 1 AS one -- x", "SELECT 1 AS one; /* never closed"})
    EXPECT_EQ(db->query(sql).get<std::int64_t>(0, "one"), 1) << sql;
}

// What the database refuses is an SqlError: InvalidInput for whoever wrote the SQL, which a
// web handler's caller did not (molt::web answers it 500).
TEST_F(SqliteTest, RefusedStatementsAreSqlErrors) {
  auto db = writable();
  EXPECT_THROW(db->execute("INSERT INTO items(id, user_id) VALUES (1, 1)", {}, {}),
               core::SqlError);  // id 1 exists
  EXPECT_THROW(db->query("SELECT nope FROM items", {}, {}), core::SqlError);
  EXPECT_EQ(status_of([&] { db->query("SELECT nope FROM items", {}, {}); }),
            StatusCode::InvalidInput);
  // Found by a review: the rest of what a call gets wrong was a plain InvalidInput, which
  // molt::web answered 400 to a client that wrote no SQL. All of it is the call's: SqlError.
  QueryOptions two;
  two.max_rows = 2;
  EXPECT_THROW(db->query("SELECT id FROM items", {}, two), core::SqlError);
  two.max_rows = 0;
  two.max_bytes = 10;
  EXPECT_THROW(db->query("SELECT 'a longer text than ten bytes'", {}, two), core::SqlError);
  EXPECT_THROW(db->query("SELECT ?", {}, {}), core::SqlError);
  EXPECT_THROW(db->query("DELETE FROM items", {}, {}), core::SqlError);
  EXPECT_THROW(db->query("BEGIN", {}, {}), core::SqlError);
  EXPECT_THROW(db->query("SELECT 1; SELECT 2", {}, {}), core::SqlError);
  // A database opened read-only refuses writes as configured, not as the call's mistake.
  try {
    read_only()->execute("DELETE FROM items", {}, {});
    ADD_FAILURE() << "a read-only database wrote";
  } catch (const core::SqlError&) {
    ADD_FAILURE() << "the read-only refusal is a plain InvalidInput";
  } catch (const core::Error& e) {
    EXPECT_EQ(e.code(), StatusCode::InvalidInput);
  }
}

TEST_F(SqliteTest, QueryRefusesWritesAndChangesNothing) {
  auto db = writable();
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("DELETE FROM items", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("writes"), std::string::npos) << why;
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, ReadOnlyDatabaseRefusesExecute) {
  auto db = read_only();
  std::string why;
  EXPECT_EQ(status_of([&] { db->execute("DELETE FROM items", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("MOLT_DB_SQLITE_READWRITE"), std::string::npos) << why;
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, MissingFileIsInvalidInputNamingThePath) {
  SqliteOptions o;
  o.path = (dir_ / "nope.db").string();
  std::string why;
  EXPECT_EQ(status_of([&] { open_sqlite(o); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("nope.db"), std::string::npos) << why;
}

TEST_F(SqliteTest, ExecuteReportsRowsAffectedAndLastInsertId) {
  auto db = writable();
  const auto insert = db->execute(
      "INSERT INTO items(user_id, title, data) VALUES (?, ?, ?)",
      Params::positional(
          {{std::int64_t{9}}, Param::null(ValueType::Text), {Bytes{std::string("\0\x01\xff", 3)}}}),
      {});
  EXPECT_EQ(insert.rows_affected, 1);
  EXPECT_EQ(insert.last_insert_id, 6);
  const auto update = db->execute("UPDATE items SET score = 0 WHERE user_id = 1", {}, {});
  EXPECT_EQ(update.rows_affected, 3);
  EXPECT_FALSE(update.last_insert_id);
  const Rows rows = db->query("SELECT title, data FROM items WHERE id = 6", {}, {});
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(rows.at(0, "title")));
  EXPECT_EQ(rows.get<Bytes>(0, "data").data, std::string("\0\x01\xff", 3));
  EXPECT_TRUE(insert.returned.empty() && insert.returned.columns().empty());
  // RETURNING: its rows come back with the statement.
  const auto returned =
      db->execute("UPDATE items SET score = 1 WHERE user_id = 1 RETURNING id, score", {}, {});
  EXPECT_EQ(returned.rows_affected, 3);
  ASSERT_EQ(returned.returned.size(), 3u);
  EXPECT_EQ(returned.returned.columns(), (std::vector<std::string>{"id", "score"}));
  EXPECT_EQ(returned.returned.get<double>(2, "score"), 1.0);
  // A new row with the rowid of the last insert is an insert too (it was taken for none).
  db->execute("DELETE FROM items WHERE id = 6", {}, {});
  EXPECT_EQ(db->execute("INSERT INTO items(id, user_id, title) VALUES (6, 9, 'again')", {}, {})
                .last_insert_id,
            6);
  EXPECT_FALSE(db->execute("UPDATE items SET score = 2 WHERE id = 6", {}, {}).last_insert_id);
  // RETURNING rows that cannot be read after the row was written: the error says it was.
  std::string why;
  EXPECT_EQ(status_of(
                [&] {
                  db->execute(
                      "INSERT INTO items(id, user_id, title) VALUES (7, 9, "
                      "CAST(X'FF' AS TEXT)) RETURNING title",
                      {}, {});
                },
                &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("ran and was committed"), std::string::npos) << why;
  EXPECT_EQ(count(*db), 7);
}

// sqlite3_changes64 keeps the last INSERT, UPDATE or DELETE's count: a statement that is none
// of them reported it as its own.
TEST_F(SqliteTest, StatementsThatChangeNoRowReportNone) {
  auto db = writable();
  EXPECT_EQ(db->execute("UPDATE items SET score = 1 WHERE user_id = 1", {}, {}).rows_affected, 3);
  const auto created = db->execute("CREATE TABLE other(x INTEGER)", {}, {});
  EXPECT_EQ(created.rows_affected, 0);
  EXPECT_FALSE(created.last_insert_id);
  const auto none = db->execute("UPDATE items SET score = 2 WHERE user_id = 99", {}, {});
  EXPECT_EQ(none.rows_affected, 0);
  const auto inserted = db->execute("INSERT INTO other(x) VALUES (1), (2)", {}, {});
  EXPECT_EQ(inserted.rows_affected, 2);
  EXPECT_EQ(inserted.last_insert_id, 2);
}

// A caller's statement may not change the connection that later calls share, nor reach
// SQLite's internals: each refusal says why, and the connections stay as they were.
TEST_F(SqliteTest, StatementsThatWouldOutliveTheirCallAreRefused) {
  auto db = writable(1);
  const auto refused = [&](std::string_view sql, bool execute, std::string_view why) {
    SCOPED_TRACE(sql);
    std::string message;
    EXPECT_EQ(status_of(
                  [&] {
                    if (execute)
                      db->execute(sql, {}, {});
                    else
                      db->query(sql, {}, {});
                  },
                  &message),
              StatusCode::InvalidInput);
    EXPECT_NE(message.find(why), std::string::npos) << message;
  };
  for (const bool execute : {true, false}) {
    refused("BEGIN", execute, "each call is a transaction of its own");
    refused("COMMIT", execute, "each call is a transaction of its own");
    refused("SAVEPOINT s", execute, "each call is a transaction of its own");
    refused("ATTACH '" + (dir_ / "other.db").string() + "' AS other", execute, "ATTACH");
    refused("PRAGMA case_sensitive_like = 1", execute, "PRAGMA that sets a value");
    refused("PRAGMA query_only = 0", execute, "PRAGMA that sets a value");
    refused("SELECT fts3_tokenizer('simple')", execute, "function is not accepted");
  }
  // The writer is still in autocommit: what it inserts is there for a new connection.
  db->execute("INSERT INTO items(user_id) VALUES (7)", {}, {});
  EXPECT_EQ(count(*read_only()), 6);
  // LIKE is still case-insensitive on the one reader.
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM items WHERE title LIKE 'ITEM%'", {}, {})
                .get<std::int64_t>(0, "n"),
            5);
  // Reading a pragma, or describing the schema, is allowed.
  EXPECT_EQ(db->query("PRAGMA table_info(items)", {}, {}).size(), 5u);
  EXPECT_EQ(db->query("PRAGMA user_version", {}, {}).size(), 1u);
  // A pragma that changes the file, not the connection (a migration's version), is too.
  db->execute("PRAGMA user_version = 3", {}, {});
  EXPECT_EQ(db->query("PRAGMA user_version", {}, {}).get<std::int64_t>(0, "user_version"), 3);
  // The API's own transactions still work, and do not open the way for a caller's BEGIN.
  {
    auto tx = db->begin({});
    tx.execute("DELETE FROM items WHERE user_id = 7");
    tx.commit();
  }
  refused("BEGIN IMMEDIATE", true, "each call is a transaction of its own");
  EXPECT_EQ(count(*db), 5);
}

// SQLite keeps any bytes as TEXT; an answer can carry only UTF-8. Such a cell is refused by
// every way of reading it, naming the column and how to read it instead.
TEST_F(SqliteTest, TextThatIsNotUtf8IsRefusedNamingItsColumn) {
  auto db = writable(1);
  db->execute("UPDATE items SET title = CAST(x'41fffe' AS TEXT) WHERE id = 3", {}, {});
  const auto refused = [](const std::function<void()>& read) {
    std::string why;
    EXPECT_EQ(status_of(read, &why), StatusCode::InvalidInput);
    EXPECT_NE(why.find("column 'title' holds text that is not UTF-8"), std::string::npos) << why;
    EXPECT_NE(why.find("CAST(... AS BLOB)"), std::string::npos) << why;
  };
  refused([&] { db->query("SELECT id, title FROM items WHERE id = 3", {}, {}); });
  refused([&] {
    db->query_batch_each({{"SELECT title FROM items WHERE id = 3", {}}}, {},
                         [](std::size_t, const RowView& row) { (void)row.text(0); });
  });
  refused([&] {
    db->query_batch_each({{"SELECT title FROM items WHERE id = 3", {}}}, {},
                         [](std::size_t, const RowView& row) { (void)row.cell(0); });
  });
  EXPECT_THROW(db->query("SELECT title FROM items", {}, {}), core::SqlError);
  // As bytes it reads, and the other rows read as before.
  const Rows raw = db->query("SELECT CAST(title AS BLOB) AS t FROM items WHERE id = 3", {}, {});
  EXPECT_EQ(raw.get<Bytes>(0, "t").data, "A\xff\xfe");
  EXPECT_EQ(db->query("SELECT title FROM items WHERE id = 2", {}, {}).get<std::string>(0, "title"),
            "item 2");
}

// A result past max_bytes stops at the row that crosses it, before it is read whole.
TEST_F(SqliteTest, MaxBytesStopsAResultAsItGrows) {
  auto db = read_only();
  QueryOptions o;
  o.max_bytes = 2500;  // two rows of a 1000-byte blob and an id, not three
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("SELECT id, zeroblob(1000) FROM items", {}, o); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("larger than 2500 bytes"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] {
              db->query_batch_each({{"SELECT id, zeroblob(1000) FROM items", {}}}, o,
                                   [](std::size_t, const RowView&) {});
            }),
            StatusCode::InvalidInput);
  o.max_bytes = 5 * 1008;
  EXPECT_EQ(db->query("SELECT id, zeroblob(1000) FROM items", {}, o).size(), 5u);
}

TEST_F(SqliteTest, MaxRowsIsStrict) {
  auto db = read_only();
  QueryOptions o;
  o.max_rows = 5;
  EXPECT_EQ(db->query("SELECT id FROM items", {}, o).size(), 5u);
  o.max_rows = 4;
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("SELECT id FROM items", {}, o); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("max_rows=4"), std::string::npos) << why;
}

// execute() keeps a statement's rows to max_rows and max_bytes too: a SELECT is refused, and a
// write whose RETURNING rows pass them is rolled back rather than committed and then failed.
TEST_F(SqliteTest, ExecuteHoldsItsRowsToTheLimits) {
  auto db = writable();
  QueryOptions o;
  o.max_rows = 2;
  std::string why;
  EXPECT_EQ(status_of([&] { db->execute("SELECT id FROM items", {}, o); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("max_rows=2"), std::string::npos) << why;
  EXPECT_EQ(
      status_of(
          [&] { db->execute("UPDATE items SET score = 9 WHERE user_id = 1 RETURNING id", {}, o); },
          &why),
      StatusCode::InvalidInput);
  EXPECT_NE(why.find("rolled back"), std::string::npos) << why;
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM items WHERE score = 9", {}, {})
                .get<std::int64_t>(0, "n"),
            0);
  // The connection is out of the savepoint's transaction: the next write is committed, and
  // a reader sees it.
  EXPECT_EQ(db->execute("UPDATE items SET score = 9 WHERE id = 1", {}, o).rows_affected, 1);
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM items WHERE score = 9", {}, {})
                .get<std::int64_t>(0, "n"),
            1);
  o.max_rows = 3;
  EXPECT_EQ(db->execute("UPDATE items SET score = 8 WHERE user_id = 1 RETURNING id", {}, o)
                .returned.size(),
            3u);
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM items WHERE score = 8", {}, {})
                .get<std::int64_t>(0, "n"),
            3);
  QueryOptions small;
  small.max_bytes = 1000;
  EXPECT_EQ(status_of([&] {
              db->execute("INSERT INTO items(user_id, title) VALUES (9, ?) RETURNING title",
                          Params::positional({{std::string(2000, 't')}}), small);
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(count(*db), 5);
  // RETURNING rows that cannot be read under a limit: the write is undone.
  EXPECT_EQ(status_of(
                [&] {
                  db->execute(
                      "INSERT INTO items(user_id, title) VALUES (9, CAST(X'FF' AS TEXT)) "
                      "RETURNING title",
                      {}, o);
                },
                &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("rolled back"), std::string::npos) << why;
  EXPECT_EQ(count(*db), 5);
  // In a transaction the refusal ends it, as any failed write does.
  auto tx = db->begin();
  tx.execute("INSERT INTO items(user_id, title) VALUES (9, 'kept?')");
  EXPECT_EQ(status_of([&] { tx.execute("UPDATE items SET score = 7 RETURNING id", {}, o); }),
            StatusCode::InvalidInput);
  EXPECT_THROW(tx.commit(), core::SqlError);
  EXPECT_EQ(count(*db), 5);
}

// query_in_parts hands a result over kRowsPerPart rows at a time, each part with the columns,
// and at least one part; its limits and a visitor's exception end it, the connection unharmed.
TEST_F(SqliteTest, QueryInPartsHandsTheRowsOverAPartAtATime) {
  auto db = read_only(/*readers=*/1);
  constexpr std::string_view kCount =
      "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :last) "
      "SELECT x, 'row ' || x AS label FROM n";
  std::vector<std::size_t> sizes;
  std::int64_t next = 1;
  db->query_in_parts(kCount, Params{{{std::int64_t{600}}}, {"last"}}, {}, [&](const Rows& part) {
    sizes.push_back(part.size());
    EXPECT_EQ(part.columns(), (std::vector<std::string>{"x", "label"}));
    for (std::size_t r = 0; r < part.size(); ++r, ++next) {
      EXPECT_EQ(part.get<std::int64_t>(r, "x"), next);
      EXPECT_EQ(part.get<std::string>(r, "label"), "row " + std::to_string(next));
    }
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{kRowsPerPart, kRowsPerPart, 600 - 2 * kRowsPerPart}));
  EXPECT_EQ(next, 601);
  sizes.clear();
  db->query_in_parts("SELECT id FROM items WHERE id < 0", {}, {}, [&](const Rows& part) {
    sizes.push_back(part.size());
    EXPECT_EQ(part.columns(), (std::vector<std::string>{"id"}));
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{0}));
  QueryOptions limited;
  limited.max_rows = 500;
  std::size_t seen = 0;
  EXPECT_EQ(status_of([&] {
              db->query_in_parts(kCount, Params{{{std::int64_t{600}}}, {"last"}}, limited,
                                 [&](const Rows& part) { seen += part.size(); });
            }),
            StatusCode::InvalidInput);
  EXPECT_EQ(seen, kRowsPerPart);  // the whole parts before the limit was crossed
  EXPECT_THROW(
      db->query_in_parts(kCount, Params{{{std::int64_t{600}}}, {"last"}}, {},
                         [](const Rows&) { throw std::runtime_error("the sink is full"); }),
      std::runtime_error);
  EXPECT_EQ(status_of([&] { db->query_in_parts("DELETE FROM items", {}, {}, [](const Rows&) {}); }),
            StatusCode::InvalidInput);
  EXPECT_EQ(count(*db), 5);  // the one reader is free and well
}

TEST_F(SqliteTest, DeadlineInterruptsARunningQueryAndTheConnectionStaysHealthy) {
  auto db = read_only(/*readers=*/1);
  QueryOptions o;
  o.deadline = core::Deadline::after(100ms);
  const auto start = std::chrono::steady_clock::now();
  std::string why;
  EXPECT_EQ(status_of([&] { db->query(kSlowQuery, {}, o); }, &why), StatusCode::Timeout) << why;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(count(*db), 5);  // the same (only) connection answers the next query
  EXPECT_EQ(db->stats().in_use, 0u);
}

// A connection's first statement reads the schema; a deadline that passes while it does is a
// Timeout, as it is while a statement steps (not a cancellation nobody asked for).
TEST_F(SqliteTest, ADeadlineThatPassesWhileTheSchemaLoadsIsATimeout) {
  {
    auto db = writable();
    auto tx = db->begin({});
    for (int i = 0; i < 4000; ++i)
      tx.execute("CREATE TABLE t" + std::to_string(i) + "(a INTEGER, b TEXT, c REAL, d BLOB)", {},
                 {});
    tx.commit();
  }
  auto db = read_only(/*readers=*/1);
  QueryOptions o;
  o.deadline = core::Deadline::after(1ms);
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("SELECT count(*) AS n FROM items", {}, o); }, &why),
            StatusCode::Timeout)
      << why;
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, CancelFromAnotherThreadInterruptsARunningQuery) {
  auto db = read_only(1);
  CancelLater leaving(100ms);
  QueryOptions o;
  o.cancel = leaving.token();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(status_of([&] { db->query(kSlowQuery, {}, o); }), StatusCode::Cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(count(*db), 5);
}

// Found by a review: a wait for another process's write lock slept through a cancel (two
// seconds, SQLite's busy timeout) and was Busy when the deadline ended it.
TEST_F(SqliteTest, AWaitForTheFileLockEndsAtTheTokenTheDeadlineOrTheBusyTimeout) {
  auto holder = writable();  // another Database on the file: another process, for SQLite
  auto db = writable();
  Transaction held = holder->begin({});  // BEGIN IMMEDIATE: the write lock
  held.execute("DELETE FROM items WHERE id = 1");
  CancelLater leaving(100ms);
  QueryOptions cancellable;
  cancellable.cancel = leaving.token();
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(status_of([&] { db->execute("DELETE FROM items", {}, cancellable); }),
            StatusCode::Cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  QueryOptions short_deadline;
  short_deadline.deadline = core::Deadline::after(300ms);
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(status_of([&] { db->execute("DELETE FROM items", {}, short_deadline); }),
            StatusCode::Timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  std::string why;
  EXPECT_EQ(status_of([&] { db->begin({}); }, &why), StatusCode::Busy);  // the busy timeout
  EXPECT_NE(why.find("locked"), std::string::npos) << why;
  held.rollback();
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, ExhaustedPoolAnswersBusyAfterItsWait) {
  auto db = read_only(/*readers=*/1, /*wait=*/100ms);
  Transaction held = db->begin({});  // holds the only reader
  const auto start = std::chrono::steady_clock::now();
  std::string why;
  EXPECT_EQ(status_of([&] { count(*db); }, &why), StatusCode::Busy);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  EXPECT_NE(why.find("no database connection free"), std::string::npos) << why;
  held.rollback();
  EXPECT_EQ(count(*db), 5);
}

TEST_F(SqliteTest, TransactionCommitsOrRollsBack) {
  auto db = writable();
  {
    Transaction tx = db->begin({});
    tx.execute("DELETE FROM items WHERE id = 1");
    EXPECT_EQ(tx.query("SELECT count(*) AS n FROM items").get<std::int64_t>(0, "n"), 4);
  }  // destroyed without commit: rolled back
  EXPECT_EQ(count(*db), 5);
  {
    Transaction tx = db->begin({});
    tx.execute("DELETE FROM items WHERE id = 1");
    tx.commit();
  }
  EXPECT_EQ(count(*db), 4);
}

TEST_F(SqliteTest, CancellationInsideATransactionLeavesNoOpenTransaction) {
  auto db = writable();
  {
    Transaction tx = db->begin({});
    tx.execute("DELETE FROM items");
    CancelLater leaving(100ms);
    QueryOptions o;
    o.cancel = leaving.token();
    EXPECT_EQ(status_of([&] { tx.query(kSlowQuery, {}, o); }), StatusCode::Cancelled);
  }
  EXPECT_EQ(count(*db), 5);  // the delete was rolled back
  QueryOptions quick;
  quick.deadline = core::Deadline::after(1s);
  Transaction next = db->begin(quick);  // the writer is free and not inside a transaction
  next.execute("DELETE FROM items WHERE id = 2");
  next.commit();
  EXPECT_EQ(count(*db), 4);
}

// Found by a review: after SQLite rolled a transaction back on its own (INSERT OR ROLLBACK,
// RAISE(ROLLBACK), an interrupted write), the Transaction ran its next statements in
// autocommit, each saved at once, and only commit() failed. As on PostgreSQL now, the first
// failed write or stopped statement ends it: rolled back, every later call refused.
TEST_F(SqliteTest, ATransactionEndsAtItsFirstFailedWriteAndNothingAfterIsSaved) {
  auto db = writable();
  db->execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", {}, {});
  db->execute("INSERT INTO t VALUES (1, 'kept')", {}, {});
  const auto rows_of_t = [&] {
    return db->query("SELECT count(*) AS n FROM t", {}, {}).get<std::int64_t>(0, "n");
  };
  for (const char* failing : {"INSERT OR ROLLBACK INTO t VALUES (1, 'dup')",  // SQLite rolls back
                              "INSERT INTO t VALUES (1, 'dup')"}) {  // SQLite undoes the statement
    Transaction tx = db->begin({});
    tx.execute("INSERT INTO t VALUES (100, 'in-tx')");
    EXPECT_EQ(status_of([&] { tx.execute(failing); }), StatusCode::InvalidInput) << failing;
    std::string why;
    EXPECT_EQ(status_of([&] { tx.execute("INSERT INTO t VALUES (101, 'after')"); }, &why),
              StatusCode::InvalidInput);
    EXPECT_NE(why.find("rolled back after an earlier failure"), std::string::npos) << why;
    EXPECT_EQ(status_of([&] { tx.query("SELECT 1 AS one"); }), StatusCode::InvalidInput);
    EXPECT_EQ(status_of([&] { tx.commit(); }, &why), StatusCode::InvalidInput);
    EXPECT_NE(why.find("rolled back instead of committed"), std::string::npos) << why;
    EXPECT_EQ(rows_of_t(), 1) << failing;  // neither 100 nor 101
  }
  {
    // A read that fails on its SQL leaves the transaction as it was.
    Transaction tx = db->begin({});
    tx.execute("INSERT INTO t VALUES (200, 'in-tx')");
    EXPECT_EQ(status_of([&] { tx.query("SELEC 1"); }), StatusCode::InvalidInput);
    tx.execute("INSERT INTO t VALUES (201, 'after')");
    tx.commit();
  }
  EXPECT_EQ(rows_of_t(), 3);
  // Assigned over, an open transaction rolls back, as when destroyed: it used to keep its
  // reader in the transaction, reading an old snapshot from then on.
  auto reader = read_only(2);
  const auto count_in = [](Transaction& tx) {
    return tx.query("SELECT count(*) AS n FROM t").get<std::int64_t>(0, "n");
  };
  {
    Transaction tx = reader->begin({});
    count_in(tx);
    tx = reader->begin({});
  }
  db->execute("INSERT INTO t VALUES (300, 'new')", {}, {});
  Transaction one = reader->begin({}), other = reader->begin({});  // both readers at once
  EXPECT_EQ(count_in(one), 4);
  EXPECT_EQ(count_in(other), 4);
  // A transaction used after it ended is refused, not a crash.
  Transaction done = db->begin({});
  done.commit();
  std::string why;
  EXPECT_EQ(status_of([&] { done.execute("SELECT 1"); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("has ended"), std::string::npos) << why;
  EXPECT_EQ(status_of([&] { done.commit(); }), StatusCode::InvalidInput);
}

TEST_F(SqliteTest, ValuesAndTextSqliteWouldMangleAreRefused) {
  auto db = writable();
  std::string why;
  // A NUL ended the statement's text for SQLite; a NaN would be stored as NULL.
  EXPECT_EQ(status_of([&] { db->query(std::string("SELECT 1\0 AS one", 16), {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("NUL byte"), std::string::npos) << why;
  EXPECT_EQ(status_of(
                [&] {
                  db->execute("UPDATE items SET score = ?",
                              Params::positional({{std::numeric_limits<double>::quiet_NaN()}}), {});
                },
                &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("NaN"), std::string::npos) << why;
  EXPECT_EQ(db->query("SELECT count(*) AS n FROM items WHERE score IS NULL", {}, {})
                .get<std::int64_t>(0, "n"),
            0);
  // Params built by hand with names and values out of step, or a name twice: no crash.
  Params uneven;
  uneven.values = {{std::int64_t{1}}, {std::int64_t{2}}};
  uneven.names = {"a"};
  EXPECT_EQ(status_of([&] { db->query("SELECT :a AS a", uneven, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("2 values given for 1 names"), std::string::npos) << why;
  EXPECT_EQ(status_of(
                [&] {
                  db->query("SELECT :a AS a",
                            Params::named({{"a", {std::int64_t{1}}}, {"a", {std::int64_t{2}}}}),
                            {});
                },
                &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("given twice"), std::string::npos) << why;
  // Foreign keys are enforced (SQLite's default is not to, and a call may not set it).
  db->execute("CREATE TABLE parents(id INTEGER PRIMARY KEY)", {}, {});
  db->execute("CREATE TABLE children(parent INTEGER REFERENCES parents(id))", {}, {});
  EXPECT_EQ(status_of([&] { db->execute("INSERT INTO children VALUES (42)", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("FOREIGN KEY"), std::string::npos) << why;
  // VACUUM INTO wrote a copy of the database wherever the process may write.
  const std::string copy = (dir_ / "copy.db").string();
  for (const std::string& sql :
       {"VACUUM INTO '" + copy + "'", "/* x */ vacuum main\n INTO '" + copy + "'"}) {
    EXPECT_EQ(status_of([&] { db->execute(sql, {}, {}); }, &why), StatusCode::InvalidInput) << sql;
    EXPECT_NE(why.find("VACUUM INTO"), std::string::npos) << why;
  }
  EXPECT_FALSE(std::filesystem::exists(copy));
  db->execute("VACUUM", {}, {});  // in place: allowed
  // One connection's :memory: database would not be the next one's.
  SqliteOptions memory;
  memory.path = ":memory:";
  EXPECT_EQ(status_of([&] { open_sqlite(memory); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("give a file path"), std::string::npos) << why;
}

// Found by a review following docs/db.md: its first example opened a missing file without
// `create` and met SQLite's bare "unable to open database file"; `create` alone was ignored.
TEST_F(SqliteTest, AMissingFileSaysHowToMakeIt) {
  std::string why;
  SqliteOptions missing;
  missing.path = (dir_ / "missing.db").string();
  missing.read_write = true;
  EXPECT_EQ(status_of([&] { open_sqlite(missing); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("no such file: set create"), std::string::npos) << why;
  missing.read_write = false;
  missing.create = true;
  EXPECT_EQ(status_of([&] { open_sqlite(missing); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("create needs read_write"), std::string::npos) << why;
  EXPECT_FALSE(std::filesystem::exists(missing.path));
  missing.read_write = true;
  missing.path = (dir_ / "no-such-folder" / "new.db").string();
  EXPECT_EQ(status_of([&] { open_sqlite(missing); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("its folder does not exist"), std::string::npos) << why;
}

// Found by a review: a std::size_t or a std::string_view did not compile as a parameter.
TEST_F(SqliteTest, ParametersTakeTheTypesCallersHaveAtHand) {
  auto db = read_only();
  const std::size_t count = 3;
  const std::string_view title = "item 1";
  const unsigned short small = 7;
  const Rows rows = db->query("SELECT ? AS n, ? AS t, ? AS s, ? AS c",
                              Params::positional({count, title, small, "text"}));
  EXPECT_EQ(db->query("SELECT 1 AS one").get<std::int64_t>(0, "one"), 1);  // no params
  EXPECT_EQ(rows.get<std::int64_t>(0, "n"), 3);
  EXPECT_EQ(rows.get<std::string>(0, "t"), "item 1");
  EXPECT_EQ(rows.get<std::int64_t>(0, "s"), 7);
  EXPECT_EQ(rows.get<std::string>(0, "c"), "text");
  static_assert(!std::is_constructible_v<Param, char>);  // 'a' would have bound 97
  std::string why;
  EXPECT_EQ(status_of([&] { Param{std::numeric_limits<std::uint64_t>::max()}; }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("past the 64-bit signed integers"), std::string::npos) << why;
  // An optional is its value, or a null of the type it stands for (a review wrote the ternary).
  const std::optional<std::int64_t> some = 5;
  const std::optional<std::string> none;
  const Rows optional = db->query("SELECT ? AS some, ? AS none, typeof(?) AS kind",
                                  Params::positional({some, none, none}));
  EXPECT_EQ(optional.get<std::int64_t>(0, "some"), 5);
  EXPECT_EQ(optional.get<std::optional<std::string>>(0, "none"), std::nullopt);
  EXPECT_EQ(optional.get<std::string>(0, "kind"), "null");
  EXPECT_EQ(Param(none).null_type, ValueType::Text);
  EXPECT_EQ(Param(std::optional<double>()).null_type, ValueType::Float);
  EXPECT_EQ(Param(std::optional<bool>()).null_type, ValueType::Bool);
  EXPECT_EQ(Param(std::optional<unsigned>()).null_type, ValueType::Int);
  EXPECT_EQ(Param(std::optional<std::uint64_t>(9)).value, Value(std::int64_t{9}));
  static_assert(!std::is_constructible_v<Param, std::optional<char>>);
}

TEST_F(SqliteTest, TypedReadsRefuseValuesTheirTypeCannotHold) {
  auto db = read_only();
  const Rows rows = db->query("SELECT 1099511627776 AS big, -1 AS neg, 1e300 AS huge", {}, {});
  EXPECT_EQ(status_of([&] { rows.get<int>(0, "big"); }), StatusCode::InternalError);
  EXPECT_EQ(status_of([&] { rows.get<std::uint64_t>(0, "neg"); }), StatusCode::InternalError);
  EXPECT_EQ(status_of([&] { rows.get<float>(0, "huge"); }), StatusCode::InternalError);
  EXPECT_EQ(rows.get<std::int64_t>(0, "big"), 1099511627776);
  EXPECT_EQ(rows.get<double>(0, "huge"), 1e300);
  // The one-byte integers (a character type does not compile: see Rows::get).
  EXPECT_EQ(rows.get<std::int8_t>(0, "neg"), -1);
  EXPECT_EQ(status_of([&] { rows.get<std::uint8_t>(0, "neg"); }), StatusCode::InternalError);
}

TEST_F(SqliteTest, ManyDistinctStatementsOutgrowTheCacheSafely) {
  auto db = read_only(1);
  for (int i = 0; i < 300; ++i) {
    const std::string sql = "SELECT " + std::to_string(i) + " AS v";
    EXPECT_EQ(db->query(sql, {}, {}).get<std::int64_t>(0, "v"), i);
  }
}

}  // namespace
}  // namespace molt::db

namespace molt::db {
namespace {
TEST_F(SqliteTest, ATransactionKeepsItsDatabaseAlive) {
  auto db = writable();
  Transaction tx = db->begin({});
  db.reset();  // the last handle the caller had
  tx.execute("DELETE FROM items WHERE id = 1");
  tx.commit();
  EXPECT_EQ(count(*read_only()), 4);
}

// Found by a review: CREATE TEMP TABLE stayed on the shared writer connection, and a later
// caller's INSERT went to it (answered Ok, never in the file); a TEMP trigger acted on every
// later caller's writes.
TEST_F(SqliteTest, TempObjectsAreRefused) {
  auto db = writable(1);
  for (const char* sql :
       {"CREATE TEMP TABLE items(id INTEGER PRIMARY KEY, title TEXT)",
        "CREATE TABLE temp.shadow(x)", "CREATE TEMP VIEW v AS SELECT 1",
        "CREATE TEMP TRIGGER wipe AFTER INSERT ON items BEGIN DELETE FROM items; END",
        "CREATE VIRTUAL TABLE temp.words USING fts5(w)"}) {
    std::string why;
    EXPECT_EQ(status_of([&] { db->execute(sql, {}, {}); }, &why), StatusCode::InvalidInput) << sql;
    EXPECT_NE(why.find("TEMP tables"), std::string::npos) << sql << ": " << why;
  }
  db->execute("INSERT INTO items(title) VALUES ('kept')", {}, {});
  EXPECT_EQ(count(*read_only()), 6);
}

// Found by a review: after the file was deleted (or another renamed over it), writes went on
// into the old, unlinked file and answered Ok.
TEST_F(SqliteTest, AWriteToAFileDeletedOrReplacedWhileOpenIsRefused) {
  auto db = writable(1);
  std::filesystem::remove(path_);
  std::string why;
  EXPECT_EQ(
      status_of([&] { db->execute("INSERT INTO items(title) VALUES ('lost')", {}, {}); }, &why),
      StatusCode::InternalError);
  EXPECT_NE(why.find("moved, replaced or deleted"), std::string::npos) << why;
  // A backup restored over it: the same.
  auto other = writable(1);  // a new file at the path
  db = nullptr;
  other->execute("CREATE TABLE t(x)", {}, {});
  const std::string restored = (dir_ / "restored.db").string();
  std::filesystem::copy_file(path_, restored);
  std::filesystem::rename(restored, path_);
  EXPECT_EQ(status_of([&] { other->execute("INSERT INTO t VALUES (1)", {}, {}); }, &why),
            StatusCode::InternalError);
  EXPECT_NE(why.find("moved, replaced or deleted"), std::string::npos) << why;
}

// Found by a review: with reads mapped, a file truncated under a scan killed the process
// (SIGBUS) where a read error fails only its call.
TEST_F(SqliteTest, ReadsAreNotMemoryMapped) {
  EXPECT_EQ(read_only()->query("PRAGMA mmap_size", {}, {}).get<std::int64_t>(0, 0), 0);
  EXPECT_EQ(writable()->query("PRAGMA mmap_size", {}, {}).get<std::int64_t>(0, 0), 0);
}

TEST_F(SqliteTest, AFolderIsNotADatabase) {
  SqliteOptions folder;
  folder.path = dir_.string();
  std::string why;
  EXPECT_EQ(status_of([&] { open_sqlite(folder); }, &why), StatusCode::InvalidInput);
  EXPECT_NE(why.find("it is a folder"), std::string::npos) << why;
}

// Found by a review: switching a new file to WAL needs its lock alone, and a worker that
// opened it while another process held the lock (four started at once) exited at once.
TEST_F(SqliteTest, OpeningWaitsForALockHeldByAnotherProcess) {
  const std::string fresh = (dir_ / "fresh.db").string();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(fresh.c_str(), &other), SQLITE_OK);  // a rollback journal, as Django's
  ASSERT_EQ(sqlite3_exec(other, "CREATE TABLE t(x); BEGIN EXCLUSIVE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::thread releaser([other] {
    std::this_thread::sleep_for(300ms);
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  SqliteOptions options;
  options.path = fresh;
  options.read_write = true;
  std::string why;
  EXPECT_EQ(
      status_of([&] { open_sqlite(options)->execute("INSERT INTO t VALUES (1)", {}, {}); }, &why),
      StatusCode::Ok)
      << why;
  releaser.join();
  sqlite3_close(other);
}

// Found by a review: one SQL function runs to its end whatever the deadline; printf() of 900
// million characters went on for seconds after the call's Timeout.
TEST_F(SqliteTest, AValuePastMaxValueBytesFailsAtOnce) {
  SqliteOptions options;
  options.path = path_;
  options.max_value_bytes = 1 << 20;
  auto db = open_sqlite(options);
  std::string why;
  EXPECT_EQ(status_of([&] { db->query("SELECT length(zeroblob(2000000))", {}, {}); }, &why),
            StatusCode::InvalidInput);
  EXPECT_NE(why.find("too big"), std::string::npos) << why;
  // printf() stops there too, and gives NULL.
  const Rows rows = db->query(
      "SELECT length(printf('%.*c', 2000000, 'x')) AS over, "
      "length(printf('%.*c', 1000000, 'x')) AS under",
      {}, {});
  EXPECT_EQ(rows.get<std::optional<std::int64_t>>(0, "over"), std::nullopt);
  EXPECT_EQ(rows.get<std::int64_t>(0, "under"), 1000000);
}

// Runs `check` as a user whom file permissions stop (root is not stopped): in a child process
// as nobody when the tests run as root. Its result is `check`'s, or 90 and up when it could
// not run.
int as_unprivileged(const std::function<int()>& check) {
  if (::geteuid() != 0) return check();
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
    ::_exit(check());
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 91;
  return WEXITSTATUS(status);
}

// Found by a review: a WAL database in a folder the process cannot write (no -shm beside it
// yet) failed its reads as "the database is read-only here (open it for writing...)", the
// caller's fault and the wrong advice: the folder is the deployment's to fix.
TEST_F(SqliteTest, AFolderThatCannotHoldTheWalFilesIsSaidSo) {
  ASSERT_FALSE(std::filesystem::exists(path_ + "-shm"));  // the last connection removed it
  ::chmod(path_.c_str(), 0644);
  ::chmod(dir_.c_str(), 0555);
  const std::string path = path_;
  const int read_result = as_unprivileged([&path] {
    SqliteOptions options;
    options.path = path;
    std::string why;
    try {
      if (status_of([&] { open_sqlite(options)->query("SELECT count(*) FROM items", {}, {}); },
                    &why) != StatusCode::InternalError)
        return 1;
    } catch (...) {
      return 2;
    }
    return why.find("-wal and -shm files cannot be made") != std::string::npos ? 0 : 3;
  });
  const int write_result = as_unprivileged([&path] {
    SqliteOptions options;
    options.path = path;
    options.read_write = true;
    std::string why;
    if (status_of([&] { open_sqlite(options); }, &why) != StatusCode::InvalidInput) return 1;
    return why.find("-wal and -shm files cannot be made") != std::string::npos ? 0 : 3;
  });
  ::chmod(dir_.c_str(), 0755);
  EXPECT_EQ(read_result, 0);
  EXPECT_EQ(write_result, 0);
}
}  // namespace
}  // namespace molt::db
