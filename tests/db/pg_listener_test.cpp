// molt::db's LISTEN (Database::listen) on a real throwaway PostgreSQL server: notifications
// heard, waits that end at their deadline or token, and a connection lost and opened again.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"
#include "support/postgres_server.hpp"
#include "support/status_of.hpp"

namespace molt::db {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;
using molt::testing::PostgresServer;
using molt::testing::status_of;

std::shared_ptr<Database> open(const PostgresServer& server) {
  PostgresOptions o;
  o.dsn = server.dsn() + " application_name=molt-listener-test";
  o.pool_size = 1;
  return open_postgres(o);
}

TEST(PgListenerTest, HearsTheNotificationsOfItsChannelsOnly) {
  auto& pg = PostgresServer::shared();
  auto db = open(pg);
  auto listener = db->listen({"jobs_a", "jobs_b"});
  // The first wait opens the connection and listens; nothing has come.
  auto heard = listener->wait(core::Deadline::after(50ms), {});
  EXPECT_TRUE(heard.notifications.empty());
  EXPECT_FALSE(heard.may_have_missed);

  pg.psql("NOTIFY jobs_a, 'default'; NOTIFY jobs_other, 'x'; NOTIFY jobs_b");
  heard = listener->wait(core::Deadline::after(5s), {});
  ASSERT_EQ(heard.notifications.size(), 2u);
  EXPECT_EQ(heard.notifications[0].channel, "jobs_a");
  EXPECT_EQ(heard.notifications[0].payload, "default");
  EXPECT_EQ(heard.notifications[1].channel, "jobs_b");
  EXPECT_EQ(heard.notifications[1].payload, "");

  // From a transaction of the pool's: heard once it commits, not before.
  auto tx = db->begin();
  tx.execute("SELECT pg_notify('jobs_a', 'mail')");
  EXPECT_TRUE(listener->wait(core::Deadline::after(100ms), {}).notifications.empty());
  tx.commit();
  heard = listener->wait(core::Deadline::after(5s), {});
  ASSERT_EQ(heard.notifications.size(), 1u);
  EXPECT_EQ(heard.notifications[0].payload, "mail");
}

TEST(PgListenerTest, AWaitEndsAtItsTokenAtOnce) {
  auto db = open(PostgresServer::shared());
  auto listener = db->listen({"jobs_cancel"});
  core::CancelSource source;
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    source.cancel();
  });
  const auto started = std::chrono::steady_clock::now();
  const auto heard = listener->wait(core::Deadline::after(30s), source.token());
  canceller.join();
  EXPECT_TRUE(heard.notifications.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(PgListenerTest, RefusesWhatItCannotListenOn) {
  auto db = open(PostgresServer::shared());
  EXPECT_EQ(status_of([&] { db->listen({}); }), StatusCode::InvalidInput);
  std::string message;
  EXPECT_EQ(status_of([&] { db->listen({"jobs; DROP TABLE x"}); }, &message),
            StatusCode::InvalidInput);
  EXPECT_NE(message.find("letters, digits and _"), std::string::npos) << message;
  const auto dir = std::filesystem::path(::testing::TempDir()) / "molt_listener_sqlite.db";
  auto sqlite = open_sqlite({.path = dir.string(), .read_write = true, .create = true});
  EXPECT_EQ(status_of([&] { sqlite->listen({"jobs"}); }, &message), StatusCode::InvalidInput);
  EXPECT_NE(message.find("PostgreSQL"), std::string::npos) << message;
  std::filesystem::remove(dir);
}

TEST(PgListenerTest, ASessionLostIsOpenedAgainAndSaysSomethingMayHaveBeenMissed) {
  PostgresServer server;  // its own: it is restarted
  auto db = open(server);
  auto listener = db->listen({"jobs_r"});
  EXPECT_FALSE(listener->wait(core::Deadline::after(50ms), {}).may_have_missed);
  server.restart();
  // The loss is seen by a wait (said at once), or only when the next opens the connection.
  auto heard = listener->wait(core::Deadline::after(2s), {});
  if (!heard.may_have_missed) heard = listener->wait(core::Deadline::after(2s), {});
  EXPECT_TRUE(heard.may_have_missed);
  EXPECT_TRUE(listener->wait(core::Deadline::after(50ms), {}).notifications.empty());
  server.psql("NOTIFY jobs_r, 'again'");
  heard = listener->wait(core::Deadline::after(5s), {});
  ASSERT_EQ(heard.notifications.size(), 1u);
  EXPECT_EQ(heard.notifications[0].payload, "again");
}

}  // namespace
}  // namespace molt::db
