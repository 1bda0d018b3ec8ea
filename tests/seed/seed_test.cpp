// molt-seed: the row formulas (against values worked out by hand), then the real binary on
// temporary SQLite files, read back through molt::db.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "demo_rows.hpp"
#include "molt/db/sqlite.hpp"

extern char** environ;

namespace molt::demo {
namespace {

constexpr std::string_view kTableSql =
    "CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, created_at TEXT NOT "
    "NULL, status TEXT NOT NULL, title TEXT NOT NULL, score REAL NOT NULL, unread INTEGER NOT "
    "NULL)";
constexpr std::string_view kIndexSql =
    "CREATE INDEX items_user_id_id ON items(user_id, id, created_at, status, title, score, "
    "unread)";
constexpr std::string_view kStatusIndexSql =
    "CREATE INDEX items_user_id_status ON items(user_id, status)";

struct Expected {
  std::int64_t user, j, items_per_user;
  std::int64_t id;
  std::string_view status, created_at, title;
  double score;
  bool unread;
};

// Worked out by hand from the formulas in demo_rows.hpp.
const Expected kExpected[] = {
    {1, 0, 5, 1, "open", "2026-01-01T00:00:00Z", "Item 1 beta", 0.37, false},
    {2, 1, 5, 7, "closed", "2026-02-02T01:07:13Z", "Item 7 theta", 2.59, false},
    {2, 2, 5, 8, "open", "2026-03-03T02:14:26Z", "Item 8 alpha", 2.96, true},
    {2, 3, 5, 9, "open", "2026-04-04T03:21:39Z", "Item 9 beta", 3.33, false},
    {3, 4, 5, 15, "open", "2026-05-05T04:28:52Z", "Item 15 theta", 5.55, false},
    {1, 199, 200, 200, "open", "2026-08-04T07:13:07Z", "Item 200 alpha", 4.0, true},
    {2, 58, 200, 259, "closed", "2026-11-03T10:46:34Z", "Item 259 delta", 5.83, false},
    {1000, 199, 200, 200000, "open", "2026-08-04T07:13:07Z", "Item 200000 alpha", 0.0, true},
};

TEST(SeedDemoRows, MatchTheFormulas) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE("user " + std::to_string(e.user) + " j " + std::to_string(e.j));
    const DemoRow row = make_demo_row(e.user, e.j, e.items_per_user);
    EXPECT_EQ(row.id, e.id);
    EXPECT_EQ(row.user_id, e.user);
    EXPECT_EQ(row.status, e.status);
    EXPECT_EQ(row.created_at, e.created_at);
    EXPECT_EQ(row.title, e.title);
    EXPECT_DOUBLE_EQ(row.score, e.score);
    EXPECT_EQ(row.unread, e.unread);
  }
}

TEST(SeedDemoRows, VisitEveryRowInIdOrder) {
  std::vector<DemoRow> seen;
  for_each_demo_row(3, 5, [&](const DemoRow& row) { seen.push_back(row); });
  ASSERT_EQ(seen.size(), 15u);
  EXPECT_EQ(demo_row_count(3, 5), 15);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].id, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(seen[i].user_id, static_cast<std::int64_t>(i) / 5 + 1);
  }
  // The reused row does not leak a longer earlier value into a shorter one.
  EXPECT_EQ(seen[9].title, "Item 10 gamma");
  EXPECT_EQ(seen[10].title, "Item 11 delta");

  int visits = 0;
  for_each_demo_row(0, 5, [&](const DemoRow&) { ++visits; });
  for_each_demo_row(3, 0, [&](const DemoRow&) { ++visits; });
  EXPECT_EQ(visits, 0);
  EXPECT_EQ(demo_row_count(0, 5), 0);
  EXPECT_EQ(demo_row_count(-2, 5), 0);
}

struct RunResult {
  int exit_code = -1;
  std::string stderr_text;
};

class SeedTest : public ::testing::Test {
 protected:
  SeedTest() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("molt_seed_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~SeedTest() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs molt-seed with `args`; stdout and stderr go to a file that is read back.
  RunResult seed(const std::vector<std::string>& args) {
    const std::string log = path("seed.log");
    std::vector<std::string> words = {MOLT_SEED_BINARY};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, MOLT_SEED_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    RunResult result;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << MOLT_SEED_BINARY << " failed: " << rc;
      return result;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream in(log);
    std::ostringstream text;
    text << in.rdbuf();
    result.stderr_text = text.str();
    return result;
  }

  static std::shared_ptr<db::Database> open(const std::string& file, bool write = false) {
    db::SqliteOptions o;
    o.path = file;
    o.read_write = write;
    o.create = write;
    o.readers = 1;
    return db::open_sqlite(o);
  }

  static std::int64_t count(db::Database& d, std::string_view sql) {
    return d.query(sql, {}, {}).get<std::int64_t>(0, "n");
  }

  std::filesystem::path dir_;
};

TEST_F(SeedTest, WritesEveryRowWithTheSchema) {
  const auto file = path("demo.db");
  const RunResult run = seed({"--sqlite", file, "--users", "3", "--items", "5"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("wrote 15 rows"), std::string::npos) << run.stderr_text;
  EXPECT_EQ(std::count(run.stderr_text.begin(), run.stderr_text.end(), '\n'), 1) << run.stderr_text;

  auto d = open(file);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items"), 15);
  EXPECT_EQ(count(*d, "SELECT min(id) AS n FROM items"), 1);
  EXPECT_EQ(count(*d, "SELECT max(id) AS n FROM items"), 15);
  EXPECT_EQ(count(*d, "SELECT count(DISTINCT user_id) AS n FROM items"), 3);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items WHERE user_id = 2"), 5);
  // (u + j) % 3 == 0 for (1,2) (2,1) (2,4) (3,0) (3,3).
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items WHERE status = 'closed'"), 5);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items WHERE unread = 1"), 3);  // 4, 8, 12
  // Stored with the types readers expect (Django reads REAL as float, INTEGER as int).
  EXPECT_EQ(count(*d,
                  "SELECT count(*) AS n FROM items WHERE typeof(id) <> 'integer' OR "
                  "typeof(user_id) <> 'integer' OR typeof(created_at) <> 'text' OR "
                  "typeof(status) <> 'text' OR typeof(title) <> 'text' OR "
                  "typeof(score) <> 'real' OR typeof(unread) <> 'integer'"),
            0);

  for (const Expected& e : kExpected) {
    if (e.items_per_user != 5) continue;
    SCOPED_TRACE("id " + std::to_string(e.id));
    const db::Rows rows = d->query(
        "SELECT id, user_id, created_at, status, title, score, unread FROM items WHERE id = ?",
        db::Params::positional({{e.id}}), {});
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows.get<std::int64_t>(0, "user_id"), e.user);
    EXPECT_EQ(rows.get<std::string>(0, "created_at"), e.created_at);
    EXPECT_EQ(rows.get<std::string>(0, "status"), e.status);
    EXPECT_EQ(rows.get<std::string>(0, "title"), e.title);
    EXPECT_DOUBLE_EQ(rows.get<double>(0, "score"), e.score);
    EXPECT_EQ(rows.get<std::int64_t>(0, "unread"), e.unread ? 1 : 0);
  }

  const db::Rows schema = d->query(
      "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'items' "
      "AND type IN ('table', 'index') ORDER BY type DESC, name",
      {}, {});
  ASSERT_EQ(schema.size(), 3u);
  EXPECT_EQ(schema.get<std::string>(0, "name"), "items");
  EXPECT_EQ(schema.get<std::string>(0, "sql"), kTableSql);
  EXPECT_EQ(schema.get<std::string>(1, "name"), "items_user_id_id");
  EXPECT_EQ(schema.get<std::string>(1, "sql"), kIndexSql);
  EXPECT_EQ(schema.get<std::string>(2, "name"), "items_user_id_status");
  EXPECT_EQ(schema.get<std::string>(2, "sql"), kStatusIndexSql);
  const db::Rows columns =
      d->query("SELECT name FROM pragma_index_info('items_user_id_id') ORDER BY seqno", {}, {});
  // (user_id, id) first, the page's other columns after them (a covering index).
  ASSERT_EQ(columns.size(), 7u);
  EXPECT_EQ(columns.get<std::string>(0, "name"), "user_id");
  EXPECT_EQ(columns.get<std::string>(1, "name"), "id");
  EXPECT_EQ(columns.get<std::string>(6, "name"), "unread");
}

// "<user><status><n> ..." in user and status order: item_counts against counting the rows.
std::string counts_text(db::Database& d, std::string_view counts_sql) {
  return d
      .query("SELECT coalesce(group_concat(user_id || status || n, ' '), '') AS s FROM (" +
                 std::string(counts_sql) + " ORDER BY user_id, status)",
             {}, {})
      .get<std::string>(0, "s");
}
std::string counts_by_table(db::Database& d) {
  return counts_text(d, "SELECT user_id, status, n FROM item_counts WHERE n > 0");
}
std::string counts_by_rows(db::Database& d) {
  return counts_text(d,
                     "SELECT user_id, status, count(*) AS n FROM items GROUP BY user_id, status");
}

TEST_F(SeedTest, ItemCountsFollowEveryWrite) {
  const auto file = path("demo.db");
  ASSERT_EQ(seed({"--sqlite", file, "--users", "3", "--items", "5"}).exit_code, 0);
  auto d = open(file, true);
  // (u + j) % 3 == 0 is closed: user 1 has 1 closed, user 2 two, user 3 two.
  EXPECT_EQ(counts_by_table(*d), "1closed1 1open4 2closed2 2open3 3closed2 3open3");
  const std::string_view writes[] = {
      "INSERT INTO items VALUES (100, 2, '2026-05-01T00:00:00Z', 'closed', 'new', 0.5, 0)",
      "INSERT INTO items VALUES (101, 9, '2026-05-01T00:00:00Z', 'open', 'new user', 0.5, 0)",
      "INSERT INTO items VALUES (102, 1, '2026-05-01T00:00:00Z', 'archived', 'other', 0, 0)",
      "DELETE FROM items WHERE id = 1",
      "UPDATE items SET status = 'closed' WHERE user_id = 3",
      "UPDATE items SET user_id = 1 WHERE id = 100",
      "UPDATE items SET title = 'renamed', status = status WHERE id = 2",
      "DELETE FROM items WHERE user_id = 9",
  };
  for (std::string_view sql : writes) {
    SCOPED_TRACE(sql);
    d->execute(sql, {}, {});
    EXPECT_EQ(counts_by_table(*d), counts_by_rows(*d));
  }
  EXPECT_EQ(counts_by_table(*d), "1archived1 1closed2 1open3 2closed2 2open3 3closed5");
  // A rolled-back write leaves the counts as they were.
  {
    db::Transaction tx = d->begin({});
    tx.execute("DELETE FROM items WHERE user_id = 2");
    tx.rollback();
  }
  EXPECT_EQ(counts_by_table(*d), counts_by_rows(*d));
}

TEST_F(SeedTest, EveryRowIsTheGeneratorsRow) {
  const auto file = path("demo.db");
  ASSERT_EQ(seed({"--sqlite", file, "--users", "4", "--items", "7"}).exit_code, 0);
  auto d = open(file);
  const db::Rows rows = d->query(
      "SELECT id, user_id, created_at, status, title, score, unread FROM items ORDER BY id", {},
      {});
  std::size_t i = 0;
  for_each_demo_row(4, 7, [&](const DemoRow& row) {
    ASSERT_LT(i, rows.size());
    EXPECT_EQ(rows.get<std::int64_t>(i, "id"), row.id);
    EXPECT_EQ(rows.get<std::int64_t>(i, "user_id"), row.user_id);
    EXPECT_EQ(rows.get<std::string>(i, "created_at"), row.created_at);
    EXPECT_EQ(rows.get<std::string>(i, "status"), row.status);
    EXPECT_EQ(rows.get<std::string>(i, "title"), row.title);
    EXPECT_EQ(rows.get<double>(i, "score"), row.score);
    EXPECT_EQ(rows.get<bool>(i, "unread"), row.unread);
    ++i;
  });
  EXPECT_EQ(i, rows.size());
  EXPECT_EQ(i, 28u);
}

TEST_F(SeedTest, TwoRunsWriteTheSameContent) {
  const auto a = path("a.db"), b = path("b.db");
  ASSERT_EQ(seed({"--sqlite", a, "--users", "5", "--items", "9"}).exit_code, 0);
  ASSERT_EQ(seed({"--sqlite", b, "--users", "5", "--items", "9"}).exit_code, 0);
  for (std::string_view sql :
       {"SELECT * FROM items ORDER BY id",
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"}) {
    SCOPED_TRACE(sql);
    const db::Rows ra = open(a)->query(sql, {}, {});
    const db::Rows rb = open(b)->query(sql, {}, {});
    ASSERT_EQ(ra.columns(), rb.columns());
    ASSERT_EQ(ra.size(), rb.size());
    ASSERT_FALSE(ra.empty());
    for (std::size_t r = 0; r < ra.size(); ++r)
      for (std::size_t c = 0; c < ra.columns().size(); ++c)
        EXPECT_EQ(ra.at(r, c), rb.at(r, c)) << "row " << r << " column " << ra.columns()[c];
  }
}

TEST_F(SeedTest, RefusesToReplaceRowsWithoutForce) {
  const auto file = path("demo.db");
  ASSERT_EQ(seed({"--sqlite", file, "--users", "3", "--items", "5"}).exit_code, 0);
  const RunResult again = seed({"--sqlite", file, "--users", "2", "--items", "4"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.stderr_text.find("molt-seed: error:"), std::string::npos) << again.stderr_text;
  EXPECT_NE(again.stderr_text.find("15 rows"), std::string::npos) << again.stderr_text;
  EXPECT_NE(again.stderr_text.find("--force"), std::string::npos) << again.stderr_text;
  auto d = open(file);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items"), 15);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items WHERE title = 'Item 15 theta'"), 1);
}

TEST_F(SeedTest, ForceReplacesTheTable) {
  const auto file = path("demo.db");
  ASSERT_EQ(seed({"--sqlite", file, "--users", "3", "--items", "5"}).exit_code, 0);
  const RunResult forced = seed({"--sqlite", file, "--users", "2", "--items", "4", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.stderr_text;
  EXPECT_NE(forced.stderr_text.find("wrote 8 rows"), std::string::npos) << forced.stderr_text;
  auto d = open(file);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items"), 8);
  // Item 3 of user 2 with 4 items per user.
  const db::Rows row = d->query("SELECT * FROM items WHERE id = 8", {}, {});
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row.get<std::int64_t>(0, "user_id"), 2);
  EXPECT_EQ(row.get<std::string>(0, "created_at"), "2026-04-04T03:21:39Z");
  EXPECT_EQ(row.get<std::string>(0, "status"), "open");
  EXPECT_EQ(row.get<std::string>(0, "title"), "Item 8 alpha");
  EXPECT_DOUBLE_EQ(row.get<double>(0, "score"), 2.96);
  EXPECT_EQ(row.get<std::int64_t>(0, "unread"), 1);
  EXPECT_EQ(count(*d,
                  "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND "
                  "name = 'items_user_id_id'"),
            1);
}

TEST_F(SeedTest, ReplacesAnEmptyTableAndKeepsOtherTables) {
  const auto file = path("demo.db");
  {
    auto d = open(file, true);
    d->execute("CREATE TABLE items(id INTEGER PRIMARY KEY, note TEXT)", {}, {});
    d->execute("CREATE TABLE other(x INTEGER)", {}, {});
    d->execute("INSERT INTO other(x) VALUES (42)", {}, {});
  }
  const RunResult run = seed({"--sqlite", file, "--users", "2", "--items", "3"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  auto d = open(file);
  EXPECT_EQ(count(*d, "SELECT count(*) AS n FROM items"), 6);
  EXPECT_EQ(d->query("SELECT sql FROM sqlite_master WHERE name = 'items'", {}, {})
                .get<std::string>(0, "sql"),
            kTableSql);
  EXPECT_EQ(count(*d, "SELECT x AS n FROM other"), 42);
}

TEST_F(SeedTest, RejectsBadArguments) {
  const auto file = path("demo.db");
  EXPECT_NE(seed({"--users", "2"}).exit_code, 0);  // no --sqlite
  EXPECT_NE(seed({"--sqlite", file, "--users", "0"}).exit_code, 0);
  EXPECT_NE(seed({"--sqlite", file, "--items", "-3"}).exit_code, 0);
  EXPECT_NE(seed({"--sqlite", file, "--users", "many"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(file));

  const RunResult missing_dir = seed({"--sqlite", path("no/such/dir/demo.db"), "--users", "1"});
  EXPECT_EQ(missing_dir.exit_code, 1);
  EXPECT_NE(missing_dir.stderr_text.find("molt-seed: error:"), std::string::npos)
      << missing_dir.stderr_text;
  EXPECT_NE(missing_dir.stderr_text.find("no/such/dir/demo.db"), std::string::npos)
      << missing_dir.stderr_text;
}

}  // namespace
}  // namespace molt::demo
