// A small molt::web service that checks itself through the TestClient: typed body in (with a
// default), SQLite through molt::db, JSON out; and a durable job through molt::jobs. Exits 0
// when every answer is the expected one.
#include <boost/describe.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "molt/db/sqlite.hpp"
#include "molt/jobs/job_runner.hpp"
#include "molt/jobs/job_store.hpp"
#include "molt/web/test_client.hpp"
#include "molt/web/typed.hpp"

namespace {

struct NewReview {
  std::string text;
  int stars = 3;
};
BOOST_DESCRIBE_STRUCT(NewReview, (), (text, stars))
MOLT_DEFAULTS(NewReview, stars)

struct Review {
  std::int64_t id;
  std::string text;
  int stars;
};
BOOST_DESCRIBE_STRUCT(Review, (), (id, text, stars))

bool expect(const molt::web::TestResponse& got, int status, const std::string& body) {
  if (got.status == status && got.body == body) return true;
  std::fprintf(stderr, "reviews: expected %d %s, got %d %s\n", status, body.c_str(), got.status,
               got.body.c_str());
  return false;
}

// molt::jobs on the same file: a job enqueued, run by a JobRunner, its result kept.
bool thanks_are_sent(const std::shared_ptr<molt::db::Database>& db) {
  molt::jobs::JobStore jobs(db);
  jobs.install();
  const auto made = jobs.enqueue({.kind = "thank", .payload = R"({"review":1})"});
  {
    molt::jobs::JobRunner runner(jobs, {.threads = 1, .log = [](std::string_view) {}});
    runner.handle("thank", [](molt::jobs::JobContext& job) { job.result = "sent"; });
    runner.start();
    for (int i = 0; i < 1000 && jobs.find(made.id)->state != molt::jobs::JobState::Succeeded; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto done = jobs.find(made.id);
  const bool ok = done && done->state == molt::jobs::JobState::Succeeded && done->result == "sent";
  std::puts(ok ? "jobs: ok" : "jobs: FAILED");
  return ok;
}

}  // namespace

int main() {
  const std::string path = "reviews.sqlite3";  // in the working folder, made afresh
  std::filesystem::remove(path);
  auto db = molt::db::open_sqlite({.path = path, .read_write = true, .create = true});
  db->execute("CREATE TABLE reviews(id INTEGER PRIMARY KEY, text TEXT, stars INTEGER)", {}, {});

  molt::web::App app;
  app.post("/reviews",
           [db](const molt::web::Request& request,
                molt::web::Ctx&) -> boost::asio::awaitable<molt::web::Response> {
             const auto review = molt::web::body_as<NewReview>(request);
             const auto stored =
                 db->execute("INSERT INTO reviews(text, stars) VALUES (?, ?)",
                             molt::db::Params::positional({{review.text}, {review.stars}}), {});
             co_return molt::web::json(
                 Review{stored.last_insert_id.value_or(0), review.text, review.stars}, 201);
           });

  molt::web::TestClient client(app);
  const molt::web::TestClient::Headers json{{"Content-Type", "application/json"}};
  const bool ok = expect(client.request("POST", "/reviews", R"({"text":"fine"})", json), 201,
                         R"({"id":1,"text":"fine","stars":3})") &&
                  expect(client.request("POST", "/reviews", R"({"text":"great","stars":5})", json),
                         201, R"({"id":2,"text":"great","stars":5})") &&
                  client.request("POST", "/reviews", R"({"stars":5})", json).status == 400 &&
                  client.get("/nowhere").status == 404;
  std::puts(ok ? "reviews: ok" : "reviews: FAILED");
  return ok && thanks_are_sent(db) ? 0 : 1;
}
