#pragma once
// A throwaway PostgreSQL cluster for tests: initdb into a fresh temporary folder, a server on
// 127.0.0.1 (port picked at run time) and on a unix socket inside that folder, trust auth, and
// a database `molt_test`. Everything goes away with the object, and also when the test
// process dies without running destructors (a watchdog process cleans up after it).
//
// PostgreSQL refuses to run as root. When the tests run as root (CI does), every PostgreSQL
// program runs as an unprivileged system user instead: `postgres` (created by Debian's
// package) or, when that does not exist, `molt-pg` (created on first use). The programs
// come from $MOLT_PG_BINDIR, `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin or
// PATH, in that order.
//
// Starting a cluster takes about a second, so tests share one per process:
//
//   auto& pg = molt::testing::PostgresServer::shared();
//   PGconn* conn = PQconnectdb(pg.dsn().c_str());
//   EXPECT_EQ(pg.psql("select count(*) from pg_stat_activity"
//                     " where application_name = 'my-test'"), "1");

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace molt::testing {

// The OS account that runs PostgreSQL programs: the current one, or an unprivileged one
// when the current one is root.
struct PostgresAccount {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

class PostgresServer {
 public:
  // pg_ctl's shutdown modes: kFast ends sessions cleanly, kImmediate is a crash.
  enum class StopMode { kSmart, kFast, kImmediate };

  struct Options {
    std::string database = "molt_test";  // created after start-up
    std::chrono::seconds start_timeout{30};
    // Extra postgresql.conf lines, applied after the harness's own (later lines win),
    // e.g. "max_connections = 20".
    std::vector<std::string> settings;
  };

  // The application_name of psql()'s own sessions, to leave them out of pg_stat_activity.
  static constexpr const char kPsqlApplicationName[] = "molt-test-psql";

  // Starts the cluster; throws std::runtime_error with the reason (and the server log's
  // tail when the server itself failed).
  PostgresServer();
  explicit PostgresServer(Options options);
  // Stops the server (immediate mode) and removes the folder.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // One server per test process, started on first use and removed at exit.
  static PostgresServer& shared();

  // libpq conninfo for 127.0.0.1:port(), the superuser and `dbname` (default database()).
  std::string dsn() const { return dsn(options_.database); }
  std::string dsn(std::string_view dbname) const;
  // The same through the unix socket.
  std::string socket_dsn() const;
  int port() const noexcept { return port_; }
  const std::string& socket_dir() const noexcept { return dir_; }
  const std::string& data_dir() const noexcept { return data_dir_; }
  const std::string& user() const noexcept { return db_user_; }
  const std::string& database() const noexcept { return options_.database; }
  bool running() const noexcept { return running_; }
  // The postmaster's pid as its pid file names it, or -1 when there is no pid file.
  pid_t postmaster_pid() const;

  // stop/start/restart keep the data and the port; not safe to call concurrently with
  // each other (psql() is).
  void stop(StopMode mode = StopMode::kFast);
  void start();
  void restart(StopMode mode = StopMode::kFast) {
    stop(mode);
    start();
  }

  // Runs `psql -X -q -At -c sql` over the unix socket and returns its stdout without the
  // final newline (rows on lines, columns separated by '|'). Throws with psql's error
  // message when the statement fails.
  std::string psql(std::string_view sql) const { return psql(sql, options_.database); }
  std::string psql(std::string_view sql, std::string_view dbname) const;

  // The last `lines` lines of the server log, for failure messages.
  std::string log_tail(std::size_t lines = 40) const;

 private:
  void start_watchdog();
  void init_cluster();
  void clean_up();
  void write_settings() const;
  std::string tool(std::string_view name) const { return bin_dir_ + "/" + std::string(name); }

  Options options_;
  PostgresAccount account_;
  std::string bin_dir_;
  std::string dir_;       // the temporary folder; also the unix socket directory
  std::string data_dir_;  // dir_/data
  std::string log_file_;  // dir_/server.log
  std::string db_user_ = "postgres";
  int port_ = 0;
  bool running_ = false;
  pid_t owner_pid_ = -1;  // the process that created the cluster (forked children do not own it)
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;  // write end of the watchdog's stdin; closing it means "clean up"
};

}  // namespace molt::testing
