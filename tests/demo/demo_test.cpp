// molt-demo's routes in-process, on a freshly seeded SQLite file: the /items answers are the
// same bytes as molt-worker's list_items on that file, and the other routes keep their word.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "demo_seed.hpp"
#include "list_items_query.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "reports.hpp"
#include "routes.hpp"
#include "support/eventually.hpp"
#include "support/postgres_server.hpp"
#include "support/worker_process.hpp"

namespace {

namespace fs = std::filesystem;
using molt::web::TestClient;

class DemoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new fs::path(fs::temp_directory_path() /
                         ("molt-demo-test-" + std::to_string(::getpid()) + ".sqlite3"));
    fs::remove(*path_);
    pool_ = new molt::core::BlockingPool(2, 64);
    services_ =
        new molt_demo::Services{molt_demo::ItemsStore::open_sqlite(path_->string()), *pool_};
    app_ = new molt::web::App;
    app_->use(molt::web::request_id());
    molt_demo::add_routes(*app_, *services_);
  }
  static void TearDownTestSuite() {
    delete app_;
    delete services_;
    pool_->close();
    delete pool_;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_->string() + suffix);
    delete path_;
  }
  static fs::path* path_;
  static molt::core::BlockingPool* pool_;
  static molt_demo::Services* services_;
  static molt::web::App* app_;
};
fs::path* DemoTest::path_ = nullptr;
molt::core::BlockingPool* DemoTest::pool_ = nullptr;
molt_demo::Services* DemoTest::services_ = nullptr;
molt::web::App* DemoTest::app_ = nullptr;

struct Query {
  std::string http;     // the query string
  std::string payload;  // the same request for list_items, as msgpack
};

TEST_F(DemoTest, ItemsAreTheWorkersBytesAndTheRoutesKeepTheirWord) {
  TestClient client(*app_);

  // 1. /items == molt-worker's list_items on the same file, for a grid of inputs.
  molt::testing::WorkerProcess worker(MOLT_WORKER_BINARY, {},
                                      {"MOLT_DB_SQLITE_PATH=" + path_->string()});
  const struct {
    std::string query;
    std::string payload_json;
  } grid[] = {
      {"user_id=7", R"({"user_id":7})"},
      {"user_id=7&limit=3", R"({"user_id":7,"limit":3})"},
      {"user_id=1000&limit=500", R"({"user_id":1000,"limit":500})"},
      {"user_id=3&status=closed&limit=5", R"({"user_id":3,"status":"closed","limit":5})"},
      {"user_id=3&q=beta&limit=4", R"({"user_id":3,"q":"beta","limit":4})"},
      {"user_id=3&q=Item%20601&status=open", R"({"user_id":3,"q":"Item 601","status":"open"})"},
      {"user_id=2&cursor=250&limit=10", R"({"user_id":2,"cursor":"250","limit":10})"},
      {"user_id=2&limit=0", R"({"user_id":2,"limit":0})"},
      {"user_id=99999", R"({"user_id":99999})"},
      {"user_id=5&q=%25_", R"({"user_id":5,"q":"%_"})"},
  };
  std::uint64_t id = 1;
  for (const auto& row : grid) {
    const auto web = client.get("/items?" + row.query);
    ASSERT_EQ(web.status, 200) << row.query << ": " << web.body;
    worker.send(molt::testing::make_request(id, "list_items", molt::ipc::Codec::MsgPack,
                                            molt::testing::msgpack_of(row.payload_json)));
    const auto answer = worker.receive();
    ASSERT_TRUE(answer.has_value());
    ASSERT_EQ(answer->status, molt::core::StatusCode::Ok) << answer->error;
    EXPECT_EQ(web.body, answer->payload) << row.query;
    // The MsgPack answer (Accept) is the same page, through the typed path.
    const auto packed = client.get("/items?" + row.query, {{"Accept", "application/msgpack"}});
    ASSERT_EQ(packed.status, 200) << row.query;
    EXPECT_EQ(packed.header("Content-Type"), "application/msgpack");
    EXPECT_EQ(packed.header("Vary"), "Accept");
    EXPECT_EQ(web.header("Vary"), "Accept");
    std::string repacked;
    molt::codec::write_json(
        repacked, molt::codec::decode_msgpack<molt_worker::ListItemsResponse>(packed.body));
    EXPECT_EQ(repacked, web.body) << row.query;
    ++id;
  }

  // 2. Bad input is a 400 that says what is wrong.
  EXPECT_EQ(
      client.get("/items").body,
      R"({"error":{"code":"invalid_input","message":"query parameter 'user_id' is required"}})");
  EXPECT_EQ(client.get("/items?user_id=x").status, 400);
  EXPECT_EQ(client.get("/items?user_id=1&cursor=abc").status, 400);

  // 3. POST /items validates, stores, and the item is then listed.
  const auto bad = client.request("POST", "/items", R"({"user_id":4,"title":"","score":3})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(R"("field":"body.title")"), std::string::npos) << bad.body;
  EXPECT_EQ(client.request("POST", "/items", R"({"user_id":4,"title":"x","status":"done"})").status,
            400);
  EXPECT_EQ(client.request("POST", "/items", R"({"user_id":4,"title":"x","score":11})").status,
            400);
  const auto nul = client.request("POST", "/items", R"({"user_id":4,"title":"a\u0000b"})");
  EXPECT_EQ(nul.status, 400);
  EXPECT_NE(nul.body.find("NUL"), std::string::npos) << nul.body;
  const auto created =
      client.request("POST", "/items", R"({"user_id":4,"title":"fresh item","score":2.5})",
                     {{"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_NE(created.body.find(R"("title":"fresh item","score":2.5,"unread":true})"),
            std::string::npos);
  EXPECT_NE(client.get("/items?user_id=4&q=fresh").body.find("fresh item"), std::string::npos);

  // 4. The export streams every item of the user, one JSON line each.
  const auto exported = client.get("/items/export?user_id=9");
  EXPECT_EQ(exported.status, 200);
  EXPECT_EQ(exported.header("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(std::count(exported.body.begin(), exported.body.end(), '\n'), 200);
  EXPECT_EQ(exported.body.rfind(R"({"id":1601,)", 0), 0u);

  // 5. The small ones.
  EXPECT_EQ(client.get("/json").body, R"({"message":"Hello, World!"})");
  EXPECT_EQ(client.get("/plaintext").body, "Hello, World!");
  const auto health = client.get("/health");
  EXPECT_EQ(health.body.rfind(R"({"ok":true,"version":"0.1.0","uptime_s":)", 0), 0u);
  EXPECT_TRUE(health.header("X-Request-Id").has_value());
}

// A page that does not fit the I/O thread's budget is read again on the pool: the same bytes.
TEST_F(DemoTest, AnItemsPageOverItsInlineBudgetIsReadAgainOnThePool) {
  molt_demo::Services tight{.items = molt_demo::ItemsStore::open_sqlite(path_->string()),
                            .pool = *pool_,
                            .item_pages = molt::web::InlineBudget(std::chrono::microseconds(0))};
  molt::web::App app;
  molt_demo::add_routes(app, tight);
  TestClient tight_client(app), client(*app_);
  const auto expected = client.get("/items?user_id=7&limit=20");
  ASSERT_EQ(expected.status, 200);
  const auto page = tight_client.get("/items?user_id=7&limit=20");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, expected.body);
  EXPECT_EQ(tight.item_pages.overruns(), 1u);
  // The next pages go straight to the pool, without another attempt.
  EXPECT_EQ(tight_client.get("/items?user_id=8").status, 200);
  EXPECT_EQ(tight.item_pages.overruns(), 1u);
}

// From PostgreSQL a page is a network round trip, which a budget cannot stop on time: it is
// read on the pool, never tried on the I/O thread, and gives SQLite's bytes.
TEST_F(DemoTest, ItemsFromPostgresAreReadOnThePoolWithSqlitesBytes) {
  auto& pg = molt::testing::PostgresServer::shared();
  {
    molt::db::PostgresOptions options;
    options.dsn = pg.dsn();
    auto db = molt::db::open_postgres(options);
    molt::demo::write_demo_items(*db, {.force = true}, "the test server");
  }
  molt_demo::Services remote{.items = molt_demo::ItemsStore::open_postgres(pg.dsn()),
                             .pool = *pool_,
                             .item_pages = molt::web::InlineBudget(std::chrono::microseconds(0))};
  molt::web::App app;
  molt_demo::add_routes(app, remote);
  TestClient remote_client(app), client(*app_);
  for (const char* query : {"/items?user_id=7&limit=20", "/items?user_id=3&status=closed"}) {
    const auto expected = client.get(query);
    ASSERT_EQ(expected.status, 200);
    const auto page = remote_client.get(query);
    EXPECT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.body, expected.body) << query;
  }
  EXPECT_EQ(remote.item_pages.overruns(), 0u);  // a zero budget would have overrun at once
}

TEST_F(DemoTest, ItemsImportStoresNdjsonLinesAsTheyArrive) {
  TestClient client(*app_);
  client.set_read_size(16);  // the body reaches the handler in many small pieces
  const auto imported = client.request(
      "POST", "/items/import?user_id=5",
      "{\"title\":\"imported one\",\"score\":1.5}\r\n\n"
      "{\"title\":\"imported two\",\"status\":\"closed\"}\n{\"title\":\"imported three\"}",
      {{"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(imported.status, 201) << imported.body;
  EXPECT_EQ(imported.body, R"({"imported":3})");
  const auto listed = client.get("/items?user_id=5&q=imported");
  EXPECT_NE(listed.body.find("imported one"), std::string::npos);
  EXPECT_NE(listed.body.find(R"("status":"closed","title":"imported two")"), std::string::npos);
  EXPECT_NE(listed.body.find("imported three"), std::string::npos);

  // A bad line stops the import: the answer names it, and what came before it is stored.
  const auto bad = client.request("POST", "/items/import?user_id=6",
                                  "{\"title\":\"kept a\"}\n{\"title\":\"kept b\"}\n"
                                  "{\"title\":\"x\",\"score\":11}\n{\"title\":\"never\"}\n");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(
      bad.body.find("line 3: item.score: expected a number from 0 to 10, got 11.0 (items imported "
                    "before it: 2)"),
      std::string::npos)
      << bad.body;
  EXPECT_NE(client.get("/items?user_id=6&q=kept").body.find("kept b"), std::string::npos);
  EXPECT_EQ(client.get("/items?user_id=6&q=never").body.find("never"), std::string::npos);
  const auto not_json =
      client.request("POST", "/items/import?user_id=6", "{\"title\":\"fine\"}\n{oops}\n");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_NE(not_json.body.find("line 2: invalid JSON"), std::string::npos) << not_json.body;
  EXPECT_NE(client.request("POST", "/items/import?user_id=6", "{\"score\":1}")
                .body.find("line 1: item.title"),
            std::string::npos);
  EXPECT_EQ(client.request("POST", "/items/import", "{\"title\":\"t\"}").status, 400);

  // An export imports back: user 9's 200 items, copied to user 11.
  const auto exported = client.get("/items/export?user_id=9");
  client.set_read_size(4096);
  const auto copied = client.request("POST", "/items/import?user_id=11", exported.body);
  ASSERT_EQ(copied.status, 201) << copied.body;
  EXPECT_EQ(copied.body, R"({"imported":200})");
  const auto again = client.get("/items/export?user_id=11");
  EXPECT_EQ(std::count(again.body.begin(), again.body.end(), '\n'), 400);
}

// Found by a review: a bad cursor answered 200 and then reset the connection, since the
// first page was read once the head was out; and the NUL that SQLite's LIKE stops at.
TEST_F(DemoTest, AnExportRefusesBadInputBeforeItsAnswerStarts) {
  TestClient client(*app_);
  const auto bad_cursor = client.get("/items/export?user_id=7&cursor=abc");
  EXPECT_EQ(bad_cursor.status, 400);
  EXPECT_NE(bad_cursor.body.find("invalid_input"), std::string::npos) << bad_cursor.body;
  EXPECT_EQ(client.get("/items?user_id=7&q=%00").status, 400);
  EXPECT_EQ(client.get("/items/export?user_id=7&q=a%00").status, 400);
}

// An export is of the items there were when it began: items added while it runs (here,
// once its first pages are out and the rest waits for a client that reads slowly) are not in
// it, so an import fed by the export of the same user cannot feed that export in turn.
TEST_F(DemoTest, AnExportIsASnapshotOfWhenItBegan) {
  const auto deadline = [] { return molt::core::Deadline::after(std::chrono::seconds(30)); };
  services_->items.create_all(std::vector<molt_demo::NewItem>(6000, {12, "bulk"}), deadline());
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  molt::web::Server server(*app_, options);
  server.start();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;  // the answer waits in the server, not in this socket
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string ask =
      "GET /items/export?user_id=12 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, ask.data(), ask.size(), MSG_NOSIGNAL), static_cast<ssize_t>(ask.size()));
  std::string answer;
  char chunk[4096];
  const auto read_some = [&] {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) answer.append(chunk, static_cast<std::size_t>(n));
    return n > 0;
  };
  while (answer.size() < 16384 && read_some()) {
  }
  services_->items.create_all(std::vector<molt_demo::NewItem>(10, {12, "later"}), deadline());
  while (read_some()) {
  }
  ::close(fd);
  server.stop();
  std::size_t lines = 0;
  for (auto at = answer.find("{\"id\":"); at != std::string::npos;
       at = answer.find("{\"id\":", at + 1))
    ++lines;
  EXPECT_EQ(lines, 6200u);
  EXPECT_EQ(answer.find("\"later\""), std::string::npos);
  EXPECT_NE(answer.find("\r\n0\r\n\r\n"), std::string::npos) << "the export ended whole";
}

}  // namespace

namespace {

TEST_F(DemoTest, AFileSeededBeforeItemCountsGetsThemOnOpen) {
  std::int64_t closed = 0;
  {
    molt::db::SqliteOptions o;
    o.path = path_->string();
    o.read_write = true;
    auto db = molt::db::open_sqlite(o);
    closed =
        db->query("SELECT count(*) AS n FROM items WHERE user_id = 7 AND status = 'closed'", {}, {})
            .get<std::int64_t>(0, "n");
    for (std::string_view sql :
         {"DROP TABLE item_counts", "DROP TRIGGER items_count_insert",
          "DROP TRIGGER items_count_delete", "DROP TRIGGER items_count_update"})
      db->execute(sql, {}, {});
  }
  const auto store = molt_demo::ItemsStore::open_sqlite(path_->string());
  molt_worker::ListItemsRequest request;
  request.user_id = 7;
  const auto page = store.list(request, molt::core::Deadline::after_ms(5000), {});
  EXPECT_GT(closed, 0);
  EXPECT_EQ(page.counts.closed, closed);
  EXPECT_EQ(page.counts.open, 200 - closed);
}

}  // namespace

namespace {

// The direct JSON writer (what /items and the worker send) against write_json of the typed
// page, on rows chosen to be awkward: escapes, control bytes, UTF-8, long texts, and scores
// in every notation Python uses.
TEST(ListItemsJsonTest, TheDirectWriterGivesTheBytesOfTheTypedPageOnAwkwardRows) {
  const fs::path path =
      fs::temp_directory_path() / ("molt-list-json-" + std::to_string(::getpid()) + ".sqlite3");
  fs::remove(path);
  molt::db::SqliteOptions options;
  options.path = path.string();
  options.read_write = true;
  options.create = true;
  auto db = molt::db::open_sqlite(options);
  molt::demo::write_demo_items(*db, {.users = 1, .items = 2}, path.string());
  const std::string long_title(190, 'x');
  const struct {
    std::string title;
    double score;
  } awkward[] = {
      {"say \"hi\" \\ bye", 0.1},
      {std::string("tab\there\nnew line\x01\x1f") + '\0' + "end", 1e-05},
      {"caf\xc3\xa9 \xe2\x82\xac", 1e16},
      {long_title + "\"", 123456789.123},
      {"plain", -0.0},
      {long_title, 2.5e-300},
  };
  std::int64_t id = 1000;
  for (const auto& row : awkward) {
    db->execute(
        "INSERT INTO items(id, user_id, created_at, status, title, score, unread) "
        "VALUES (?, 1, '2026-01-02T03:04:05Z', 'open', ?, ?, ?)",
        molt::db::Params::positional({{id}, {row.title}, {row.score}, {id % 2}}), {});
    ++id;
  }
  for (const std::optional<std::int64_t> limit : {std::optional<std::int64_t>{}, {3}, {1}}) {
    molt_worker::ListItemsRequest request;
    request.user_id = 1;
    request.limit = limit;
    std::string direct;
    const std::size_t written = molt_worker::write_list_items_json(direct, *db, request, {});
    std::string typed;
    const auto page = molt_worker::query_list_items(*db, request, {});
    molt::codec::write_json(typed, page);
    EXPECT_EQ(written, page.items.size());
    EXPECT_EQ(direct, typed) << "limit " << limit.value_or(0);
  }
  db.reset();
  fs::remove(path);
}

}  // namespace

namespace {

TEST_F(DemoTest, TheLiveSocketAnswersPagesAsGetItemsDoesAndSaysWhatIsWrong) {
  TestClient client(*app_);
  molt::web::TestWebSocket socket = client.websocket_connect("/ws/items");
  for (const auto& [query, message] : {std::pair{"user_id=7&limit=3", R"({"user_id":7,"limit":3})"},
                                       std::pair{"user_id=3&status=closed&limit=5",
                                                 R"({"user_id":3,"status":"closed","limit":5})"}}) {
    socket.send_text(message);
    EXPECT_EQ(socket.receive_text(), client.get(std::string("/items?") + query).body) << message;
  }
  socket.send_text(R"({"user_id":"seven"})");
  auto error = socket.receive_json();
  EXPECT_EQ(error.at("error").at("field"), "message.user_id") << error;
  socket.send_text(R"({"user_id":7,"cursor":"abc"})");
  error = socket.receive_json();
  EXPECT_NE(std::string(error.at("error").at("message").as_string()).find("cursor"),
            std::string::npos)
      << error;
  socket.send_text(R"({"user_id":7,"limit":1})");  // still open after both
  EXPECT_EQ(socket.receive_json().at("items").as_array().size(), 1u);
}

}  // namespace

namespace {

using molt::testing::eventually;

TEST_F(DemoTest, ReportsAreDurableJobsAskedForAndReadBackOverHttp) {
  molt::jobs::JobStore jobs(services_->items.database(), {.table = "report_jobs_test"});
  jobs.install();
  molt::web::App app;
  molt_demo::add_report_routes(app, *services_, jobs);
  TestClient client(app);

  // Asked for while no runner runs: queued, and the same job for a repeated key.
  auto made =
      client.post_json("/reports", molt_demo::ReportRequest{7}, {{"Idempotency-Key", "r7"}});
  ASSERT_EQ(made.status, 202) << made.body;
  const auto job = made.json<molt_demo::ReportJob>();
  EXPECT_EQ(job.state, "queued");
  EXPECT_EQ(made.header("Location"), "/reports/" + std::to_string(job.id));
  auto again =
      client.post_json("/reports", molt_demo::ReportRequest{7}, {{"Idempotency-Key", "r7"}});
  EXPECT_EQ(again.status, 202);
  EXPECT_EQ(again.json<molt_demo::ReportJob>().id, job.id);

  // Another, cancelled before it ran.
  const auto other =
      client.post_json("/reports", molt_demo::ReportRequest{8}).json<molt_demo::ReportJob>();
  EXPECT_NE(other.id, job.id);
  const auto cancelled = client.request("DELETE", "/reports/" + std::to_string(other.id));
  EXPECT_EQ(cancelled.status, 202);
  EXPECT_EQ(cancelled.json<molt_demo::ReportJob>().state, "cancelled");
  EXPECT_EQ(client.request("DELETE", "/reports/" + std::to_string(other.id)).status, 409);

  // A runner takes the first; the report is the user's items summed up.
  molt::jobs::JobRunner runner(jobs, {.threads = 1});
  molt_demo::handle_report_jobs(runner, services_->items);
  runner.start();
  molt_demo::ReportJob done;
  ASSERT_TRUE(eventually([&] {
    done = client.get("/reports/" + std::to_string(job.id)).json<molt_demo::ReportJob>();
    return done.state == "succeeded";
  }));
  ASSERT_TRUE(done.report);
  const auto counts = services_->items.database()->query(
      "SELECT count(*) AS n, sum(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS n_open "
      "FROM items WHERE user_id = 7");
  EXPECT_EQ(done.report->user_id, 7);
  EXPECT_EQ(done.report->items, counts.get<std::int64_t>(0, "n"));
  EXPECT_EQ(done.report->open, counts.get<std::int64_t>(0, "n_open"));
  EXPECT_EQ(done.report->open + done.report->closed, done.report->items);
  EXPECT_GT(done.report->mean_score, 0);
  EXPECT_EQ(done.attempts, 1);
  runner.stop();
  EXPECT_EQ(jobs.find(other.id)->state, molt::jobs::JobState::Cancelled) << "never ran";

  // What is wrong is said.
  EXPECT_EQ(client.get("/reports/999999").status, 404);
  const auto bad = client.post_json("/reports", molt_demo::ReportRequest{0});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("body.user_id"), std::string::npos) << bad.body;
  EXPECT_EQ(client
                .post_json("/reports", molt_demo::ReportRequest{7},
                           {{"Idempotency-Key", std::string(201, 'k')}})
                .status,
            400);
}

TEST_F(DemoTest, AFullReportQueueAnswers503WithRetryAfter) {
  molt::jobs::JobStore jobs(services_->items.database(),
                            {.table = "report_jobs_full", .max_pending = 1});
  jobs.install();
  molt::web::App app;
  molt_demo::add_report_routes(app, *services_, jobs);
  TestClient client(app);
  EXPECT_EQ(client.post_json("/reports", molt_demo::ReportRequest{1}).status, 202);
  const auto full = client.post_json("/reports", molt_demo::ReportRequest{2});
  EXPECT_EQ(full.status, 503);
  EXPECT_EQ(full.header("Retry-After"), "5");
  EXPECT_NE(full.body.find("queue_full"), std::string::npos) << full.body;
  EXPECT_EQ(jobs.counts("default").queued, 1) << "the refused one was not kept";
}

}  // namespace
