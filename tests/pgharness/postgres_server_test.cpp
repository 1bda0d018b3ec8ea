// The PostgreSQL harness: a libpq client reaches the cluster through dsn(), restart() keeps
// port and data, and nothing (process or folder) outlives the object or a crashed owner.
#include "support/postgres_server.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace molt::testing {
namespace {

using namespace std::chrono_literals;
using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& dsn) {
  return {PQconnectdb(dsn.c_str()), &PQfinish};
}

// The single value of a one-row query, or the error.
std::string value_of(PGconn* conn, const char* sql) {
  PGresult* result = PQexec(conn, sql);
  std::string value = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1
                          ? PQgetvalue(result, 0, 0)
                          : "error: " + std::string(PQerrorMessage(conn));
  PQclear(result);
  return value;
}

// A zombie counts as gone: a daemon's zombie waits for init, holding nothing.
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm;
  char state = '?';
  return (stat >> pid_field >> comm >> state) && state != 'Z';
}

// Live processes whose command line mentions `text` (the postmaster's names its data folder).
std::vector<pid_t> processes_mentioning(const std::string& text) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const pid_t pid = std::atoi(entry.path().filename().c_str());
    if (pid <= 0 || pid == ::getpid() || !alive(pid)) continue;
    std::ifstream file(entry.path() / "cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(file)), {});
    if (cmdline.find(text) != std::string::npos) found.push_back(pid);
  }
  return found;
}

template <class Done>
bool eventually(Done done, std::chrono::milliseconds timeout) {
  for (const auto end = std::chrono::steady_clock::now() + timeout;
       std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(20ms)) {
    if (done()) return true;
  }
  return done();
}

TEST(PostgresServerTest, LibpqConnectsOverLoopbackAndSocket) {
  auto& pg = PostgresServer::shared();
  EXPECT_EQ(pg.dsn(),
            "host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=postgres dbname=molt_test");
  for (const std::string& dsn : {pg.dsn(), pg.socket_dsn()}) {
    Connection conn = connect(dsn);
    ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << dsn << ": " << PQerrorMessage(conn.get());
    EXPECT_EQ(value_of(conn.get(), "select 1"), "1");
    EXPECT_EQ(value_of(conn.get(), "select current_database()"), "molt_test");
  }
}

TEST(PostgresServerTest, ClusterIsSetUpForTests) {
  auto& pg = PostgresServer::shared();
  EXPECT_EQ(pg.psql("show listen_addresses"), "127.0.0.1");
  EXPECT_EQ(pg.psql("show port"), std::to_string(pg.port()));
  EXPECT_EQ(pg.psql("show unix_socket_directories"), pg.socket_dir());
  EXPECT_EQ(pg.psql("show server_encoding"), "UTF8");
  EXPECT_EQ(pg.psql("show fsync"), "off");
  EXPECT_EQ(pg.psql("show timezone"), "UTC");
  EXPECT_EQ(pg.psql("select string_agg(type || ' ' || coalesce(address, '-') || ' ' ||"
                    " auth_method, ', ' order by line_number) from pg_hba_file_rules"),
            "local - trust, host 127.0.0.1 trust");
}

TEST(PostgresServerTest, PsqlReturnsRowsAndThrowsOnErrors) {
  auto& pg = PostgresServer::shared();
  pg.psql("create table harness_rows(id int, name text)");
  pg.psql("insert into harness_rows values (1, 'a'), (2, 'b c')");
  EXPECT_EQ(pg.psql("select id, name from harness_rows order by id"), "1|a\n2|b c");
  EXPECT_EQ(pg.psql("select 'caf\u00e9'"), "caf\u00e9");
  EXPECT_EQ(pg.psql("select current_database()", "postgres"), "postgres");
  EXPECT_EQ(pg.psql("drop table harness_rows"), "");
  try {
    pg.psql("select * from no_such_table");
    ADD_FAILURE() << "psql did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("relation \"no_such_table\" does not exist"),
              std::string::npos)
        << e.what();
  }
}

TEST(PostgresServerTest, PsqlSeesLibpqSessionsInPgStatActivity) {
  auto& pg = PostgresServer::shared();
  const char* count =
      "select count(*) from pg_stat_activity where application_name = 'harness-probe'";
  Connection conn = connect(pg.dsn() + " application_name=harness-probe");
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(pg.psql(count), "1");
  EXPECT_EQ(pg.psql("select host(client_addr) from pg_stat_activity"
                    " where application_name = 'harness-probe'"),
            "127.0.0.1");
  conn.reset();
  // The backend exits shortly after the client closes.
  EXPECT_TRUE(eventually([&] { return pg.psql(count) == "0"; }, 5s));
}

TEST(PostgresServerTest, ServerNeverRunsAsRoot) {
  auto& pg = PostgresServer::shared();
  struct stat data {
  }, postmaster{};
  ASSERT_EQ(::stat(pg.data_dir().c_str(), &data), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pg.postmaster_pid())).c_str(), &postmaster), 0);
  EXPECT_NE(postmaster.st_uid, 0u);
  EXPECT_EQ(postmaster.st_uid, data.st_uid);
  if (::geteuid() != 0) {
    EXPECT_EQ(postmaster.st_uid, ::geteuid());
  }
}

TEST(PostgresServerTest, RestartKeepsPortAndDataAndDropsOldConnections) {
  PostgresServer pg;
  pg.psql("create table kept(x int); insert into kept values (42)");
  Connection old = connect(pg.dsn());
  ASSERT_EQ(PQstatus(old.get()), CONNECTION_OK) << PQerrorMessage(old.get());
  const int port = pg.port();
  const pid_t postmaster = pg.postmaster_pid();

  pg.restart();
  EXPECT_TRUE(pg.running());
  EXPECT_EQ(pg.port(), port);
  EXPECT_NE(pg.postmaster_pid(), postmaster);
  EXPECT_NE(value_of(old.get(), "select 1"), "1");
  EXPECT_EQ(PQstatus(old.get()), CONNECTION_BAD);
  Connection fresh = connect(pg.dsn());
  ASSERT_EQ(PQstatus(fresh.get()), CONNECTION_OK) << PQerrorMessage(fresh.get());
  EXPECT_EQ(value_of(fresh.get(), "select x from kept"), "42");

  // A crash-like stop: nothing answers until start(), which recovers the data.
  pg.stop(PostgresServer::StopMode::kImmediate);
  EXPECT_FALSE(pg.running());
  EXPECT_EQ(pg.postmaster_pid(), -1);
  EXPECT_EQ(PQstatus(connect(pg.dsn()).get()), CONNECTION_BAD);
  pg.start();
  EXPECT_EQ(pg.psql("select x from kept"), "42");
}

TEST(PostgresServerTest, DestructorLeavesNoProcessAndNoFolder) {
  std::string dir;
  std::vector<pid_t> pids;
  Connection open_session(nullptr, &PQfinish);
  {
    PostgresServer pg;
    dir = pg.socket_dir();
    open_session = connect(pg.dsn());
    ASSERT_EQ(PQstatus(open_session.get()), CONNECTION_OK);
    pids.push_back(pg.postmaster_pid());
    // Backends and background processes (checkpointer, walwriter, ...).
    std::istringstream listed(pg.psql("select pid from pg_stat_activity"));
    for (pid_t pid; listed >> pid;) pids.push_back(pid);
    ASSERT_GE(pids.size(), 4u);
    EXPECT_FALSE(processes_mentioning(dir).empty());
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  for (const pid_t pid : pids) EXPECT_FALSE(alive(pid)) << "pid " << pid;
  EXPECT_TRUE(processes_mentioning(dir).empty());
  EXPECT_NE(value_of(open_session.get(), "select 1"), "1");
}

// The owner dies without running destructors (as on a crash or a ctest timeout): the
// watchdog still stops the server and removes the folder.
TEST(PostgresServerTest, KilledOwnerStillCleansUp) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    std::string text;
    try {
      PostgresServer pg;
      text = pg.socket_dir() + " " + std::to_string(pg.postmaster_pid());
    } catch (const std::exception& e) {
      text = std::string("error ") + e.what();
    }
    const ssize_t written = ::write(report[1], text.data(), text.size());
    (void)written;
    ::raise(SIGKILL);  // for the error path, the server is already gone
  }
  ::close(report[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  std::string dir;
  pid_t postmaster = -1;
  std::istringstream(text) >> dir >> postmaster;
  ASSERT_GT(postmaster, 0) << text;
  EXPECT_TRUE(eventually([&] { return !alive(postmaster) && !std::filesystem::exists(dir); }, 15s))
      << dir << " or postmaster " << postmaster << " is still there";
  EXPECT_TRUE(processes_mentioning(dir).empty());
}

}  // namespace
}  // namespace molt::testing
