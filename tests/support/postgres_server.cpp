#include "support/postgres_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

extern char** environ;

namespace molt::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kMadeUser = "molt-pg";  // created when root and no `postgres` user exists

[[noreturn]] void fail(const std::string& message) {
  throw std::runtime_error("PostgresServer: " + message);
}

[[noreturn]] void fail_errno(const std::string& what) {
  fail(what + ": " + std::strerror(errno));
}

std::string trim(std::string text) {
  const auto end = text.find_last_not_of(" \t\r\n");
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Files the harness writes into the data folder belong to the server's account, like the
// rest of it.
void write_text(const std::string& path, const std::string& text, const PostgresAccount& account,
                std::ios::openmode mode = std::ios::trunc) {
  std::ofstream out(path, std::ios::binary | mode);
  out << text;
  out.close();
  if (!out) fail("cannot write " + path);
  if (account.switch_user && ::chown(path.c_str(), account.uid, account.gid) != 0) {
    fail_errno("chown " + path);
  }
}

// Alive and not a zombie: a daemon's zombie waits for init to reap it, but it no longer holds
// a port, a socket or shared memory.
bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm;
  char state = '?';
  if (stat >> pid_field >> comm >> state) return state != 'Z';
  return true;
}

// ---- child processes ----

struct Result {
  int status = -1;  // exit code, or 128 + signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

struct ChildSetup {
  int in = -1;
  int out = -1;
  int err = -1;
  const PostgresAccount* account = nullptr;  // switch to it when switch_user
  bool new_session = false;
};

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

[[noreturn]] void child_exit(const char* what) {
  // Only async-signal-safe calls between fork and exec: the test may have threads.
  const ssize_t ignored = ::write(STDERR_FILENO, what, std::strlen(what));
  (void)ignored;
  ::_exit(127);
}

pid_t spawn(std::vector<std::string> argv, std::vector<std::string> env, const ChildSetup& setup) {
  std::vector<char*> args = c_strings(argv);
  std::vector<char*> envp = c_strings(env);
  const pid_t pid = ::fork();
  if (pid != 0) return pid;

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(setup.in, STDIN_FILENO) < 0 || ::dup2(setup.out, STDOUT_FILENO) < 0 ||
      ::dup2(setup.err, STDERR_FILENO) < 0) {
    ::_exit(127);
  }
  if (setup.new_session) ::setsid();
  if (setup.account && setup.account->switch_user) {
    const gid_t gid = setup.account->gid;
    const uid_t uid = setup.account->uid;
    if (::setgroups(1, &gid) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      child_exit("PostgresServer: cannot switch to the unprivileged user\n");
    }
  }
  if (::chdir("/") != 0) child_exit("PostgresServer: chdir / failed\n");
  ::execve(args[0], args.data(), envp.data());
  child_exit("PostgresServer: exec failed\n");
}

// The environment of PostgreSQL programs: ours without PG* variables (a developer's PGHOST or
// PGDATABASE must not redirect the harness) and in the C locale (English messages).
std::vector<std::string> child_env(const PostgresAccount& account, const std::string& home,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (v.starts_with("PG") || v.starts_with("LC_") || v.starts_with("LANG")) continue;
    if (account.switch_user &&
        (v.starts_with("HOME=") || v.starts_with("USER=") || v.starts_with("LOGNAME="))) {
      continue;
    }
    env.emplace_back(v);
  }
  env.emplace_back("LC_ALL=C");
  if (account.switch_user) {
    env.push_back("HOME=" + home);
    env.push_back("USER=" + account.name);
    env.push_back("LOGNAME=" + account.name);
  }
  for (auto& e : extra) env.push_back(std::move(e));
  return env;
}

// Runs a program to completion with its stdout and stderr captured; kills it at the timeout.
Result run(const std::vector<std::string>& argv, std::vector<std::string> env,
           const PostgresAccount& account, milliseconds timeout) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) fail_errno("pipe2");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    fail_errno("pipe2");
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = spawn(argv, std::move(env),
                          {.in = null_fd, .out = out[1], .err = err[1], .account = &account});
  const int spawn_errno = errno;
  ::close(null_fd);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    errno = spawn_errno;
    fail_errno("fork");
  }

  Result result;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// A PostgreSQL program run as the server's account, with `home` as its HOME.
Result run_as(const PostgresAccount& account, const std::string& home,
              const std::vector<std::string>& argv, std::vector<std::string> extra_env,
              milliseconds timeout) {
  return run(argv, child_env(account, home, std::move(extra_env)), account, timeout);
}

std::string describe(const std::vector<std::string>& argv, const Result& result) {
  std::string text = "`";
  for (const auto& arg : argv) text += (text.size() > 1 ? " " : "") + arg;
  text += result.timed_out ? "` timed out" : "` exited with " + std::to_string(result.status);
  const std::string output = trim(result.err + result.out);
  if (!output.empty()) text += ":\n" + output;
  return text;
}

// ---- finding things ----

std::string find_in_path(const std::string& name, std::string path = {}) {
  if (path.empty()) {
    const char* env = std::getenv("PATH");
    path = env ? env : "/usr/bin:/bin";
  }
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

bool has_server_tools(const fs::path& dir) {
  for (const char* tool : {"initdb", "pg_ctl", "psql", "postgres"}) {
    if (::access((dir / tool).c_str(), X_OK) != 0) return false;
  }
  return true;
}

std::string find_bin_dir() {
  if (const char* env = std::getenv("MOLT_PG_BINDIR"); env && *env) {
    if (has_server_tools(env)) return env;
    fail(std::string("MOLT_PG_BINDIR=") + env + " has no initdb, pg_ctl, psql and postgres");
  }
  // pg_config knows where the programs of its installation are.
  if (const std::string pg_config = find_in_path("pg_config"); !pg_config.empty()) {
    const Result r = run({pg_config, "--bindir"}, child_env({}, {}), {}, seconds(10));
    if (r.status == 0 && has_server_tools(trim(r.out))) return trim(r.out);
  }
  // Debian keeps each major version in /usr/lib/postgresql/<version>/bin: take the newest.
  std::error_code ec;
  fs::path best;
  double best_version = -1;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const double version = std::strtod(entry.path().filename().c_str(), nullptr);
    if (version > best_version && has_server_tools(entry.path() / "bin")) {
      best_version = version;
      best = entry.path() / "bin";
    }
  }
  if (!best.empty()) return best.string();
  // Elsewhere initdb may be on PATH (possibly as a link into the real folder).
  if (const std::string initdb = find_in_path("initdb"); !initdb.empty()) {
    const fs::path dir = fs::weakly_canonical(initdb, ec).parent_path();
    if (!ec && has_server_tools(dir)) return dir.string();
  }
  fail(
      "PostgreSQL's server programs (initdb, pg_ctl, psql, postgres) were not found: install "
      "Debian's `postgresql` package (scripts/setup does) or set MOLT_PG_BINDIR");
}

bool lookup_user(const char* name, PostgresAccount& account) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name, &entry, buffer.data(), buffer.size(), &found) != 0 || !found ||
      found->pw_uid == 0) {
    return false;
  }
  account = {.switch_user = true, .uid = found->pw_uid, .gid = found->pw_gid, .name = name};
  return true;
}

PostgresAccount choose_account() {
  PostgresAccount account{.uid = ::geteuid(), .gid = ::getegid()};
  if (account.uid != 0) return account;
  // PostgreSQL refuses to run as root: use Debian's `postgres` account, else our own.
  if (lookup_user("postgres", account) || lookup_user(kMadeUser, account)) return account;
  std::string useradd = find_in_path("useradd");
  if (useradd.empty()) useradd = find_in_path("useradd", "/usr/sbin:/sbin");
  if (useradd.empty()) fail(std::string("running as root, no useradd to create ") + kMadeUser);
  const std::vector<std::string> argv = {
      useradd,        "--system", "--user-group",      "--no-create-home", "--home-dir",
      "/nonexistent", "--shell",  "/usr/sbin/nologin", kMadeUser};
  const Result r = run(argv, child_env(account, {}), account, seconds(30));
  // A test process running in parallel may have created it first: look again either way.
  if (lookup_user(kMadeUser, account)) return account;
  fail("running as root and cannot create the unprivileged user " + std::string(kMadeUser) + ": " +
       describe(argv, r));
}

// Every folder on the way must let the unprivileged account through.
bool reachable_by_others(const fs::path& dir) {
  for (fs::path p = dir;; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (p == p.parent_path()) return true;
  }
}

std::string make_temp_dir(const PostgresAccount& account) {
  std::vector<std::string> bases;
  if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) bases.emplace_back(tmp);
  bases.emplace_back("/tmp");
  std::string why = "no usable folder";
  for (const auto& base_text : bases) {
    std::error_code ec;
    const fs::path base = fs::absolute(base_text, ec);
    // The unix socket lives in the folder and its path must fit in sockaddr_un (108 bytes).
    if (ec || base.string().size() + sizeof("/molt-pg-XXXXXX/.s.PGSQL.65535") > 100) {
      why = base_text + ": path too long for a unix socket";
      continue;
    }
    if (account.switch_user && !reachable_by_others(base)) {
      why = base_text + ": not reachable by user " + account.name;
      continue;
    }
    std::string dir = (base / "molt-pg-XXXXXX").string();
    if (!::mkdtemp(dir.data())) {
      why = base_text + ": " + std::strerror(errno);
      continue;
    }
    if (account.switch_user && ::chown(dir.c_str(), account.uid, account.gid) != 0) {
      const std::string error = std::strerror(errno);
      ::rmdir(dir.c_str());
      fail("chown " + dir + ": " + error);
    }
    return dir;
  }
  fail("cannot create a temporary folder (" + why + ")");
}

// A port that was free a moment ago; the server may lose a race for it (start retries).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved_errno = errno;
  ::close(fd);
  errno = saved_errno;
  if (!ok) fail_errno("cannot pick a port on 127.0.0.1");
  return ntohs(address.sin_port);
}

// postgresql.conf string values are single-quoted with '' for a quote.
std::string conf_string(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

// libpq conninfo values are quoted when they contain spaces, quotes or backslashes.
std::string conninfo_value(std::string_view value) {
  if (!value.empty() && value.find_first_of(" '\\") == std::string_view::npos) {
    return std::string(value);
  }
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

std::string sql_identifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

const char* mode_name(PostgresServer::StopMode mode) {
  switch (mode) {
    case PostgresServer::StopMode::kSmart:
      return "smart";
    case PostgresServer::StopMode::kFast:
      return "fast";
    case PostgresServer::StopMode::kImmediate:
      return "immediate";
  }
  return "fast";
}

// Cleans up after a test process that died without running destructors (crash, SIGKILL, a
// ctest timeout): it waits for end-of-file on its stdin, a pipe whose write end only the test
// process holds, then stops the postmaster named in the pid file (SIGQUIT is pg_ctl's
// immediate mode) and removes the folder. It has its own session and ignores the usual
// signals so that a Ctrl-C on the test does not kill it before it has done its job.
constexpr const char* kWatchdogScript = R"sh(
trap '' HUP INT QUIT TERM
cat >/dev/null
dir=$1
if read -r pid <"$dir/data/postmaster.pid" 2>/dev/null &&
   [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
  kill -QUIT "$pid" 2>/dev/null
  tries=0
  while [ $tries -lt 100 ] && read -r _ _ state _ <"/proc/$pid/stat" 2>/dev/null &&
        [ "$state" != Z ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  [ $tries -lt 100 ] || kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$dir"
)sh";

}  // namespace

PostgresServer::PostgresServer() : PostgresServer(Options{}) {}

PostgresServer::PostgresServer(Options options)
    : options_(std::move(options)), owner_pid_(::getpid()) {
  account_ = choose_account();
  bin_dir_ = find_bin_dir();
  dir_ = make_temp_dir(account_);
  data_dir_ = dir_ + "/data";
  log_file_ = dir_ + "/server.log";
  try {
    start_watchdog();
    init_cluster();
    for (int attempt = 1;; ++attempt) {
      port_ = free_loopback_port();
      write_settings();
      try {
        start();
        break;
      } catch (const std::runtime_error& e) {
        // Another process may have taken the port between our probe and the server's bind.
        const bool port_taken =
            std::string_view(e.what()).find("Address already in use") != std::string_view::npos;
        if (!port_taken || attempt == 3) throw;
      }
    }
    psql("CREATE DATABASE " + sql_identifier(options_.database), "postgres");
  } catch (...) {
    clean_up();
    throw;
  }
}

PostgresServer::~PostgresServer() {
  clean_up();
}

PostgresServer& PostgresServer::shared() {
  // Destroyed at exit like any static; the watchdog covers exits that skip destructors.
  static PostgresServer server;
  return server;
}

void PostgresServer::start_watchdog() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("pipe2");
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  // Runs as the test's own account: as root it can signal the server and remove the folder.
  const PostgresAccount self{};
  watchdog_pid_ =
      spawn({"/bin/sh", "-c", kWatchdogScript, "molt-pg-watchdog", dir_}, child_env(self, {}),
            {.in = fds[0], .out = null_fd, .err = null_fd, .new_session = true});
  const int spawn_errno = errno;
  ::close(fds[0]);
  ::close(null_fd);
  if (watchdog_pid_ < 0) {
    ::close(fds[1]);
    errno = spawn_errno;
    fail_errno("fork");
  }
  watchdog_fd_ = fds[1];
}

void PostgresServer::clean_up() {
  // A fork()ed copy of the test process (a death test, say) must not stop its parent's server.
  if (::getpid() != owner_pid_) return;
  if (running_) {
    try {
      stop(StopMode::kImmediate);
    } catch (const std::exception&) {
      // The watchdog kills whatever the pid file still names.
    }
  }
  if (watchdog_fd_ >= 0) {
    ::close(watchdog_fd_);
    watchdog_fd_ = -1;
    while (::waitpid(watchdog_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PostgresServer::init_cluster() {
  const std::vector<std::string> argv = {tool("initdb"), "-D",         data_dir_,  "-U",
                                         db_user_,       "-A",         "trust",    "-E",
                                         "UTF8",         "--locale=C", "--no-sync"};
  const Result r = run_as(account_, dir_, argv, {}, seconds(120));
  if (r.status != 0) fail("initdb failed: " + describe(argv, r));
  // No passwords, and nothing but the socket and loopback.
  write_text(data_dir_ + "/pg_hba.conf",
             "local all all trust\n"
             "host all all 127.0.0.1/32 trust\n",
             account_);
  // Our settings live in their own file so that they can be rewritten (a new port).
  write_text(data_dir_ + "/postgresql.conf", "\ninclude = 'molt_test.conf'\n", account_,
             std::ios::app);
}

void PostgresServer::write_settings() const {
  std::string conf = "# Written by the Molt test harness (tests/support/postgres_server.cpp).\n";
  conf += "listen_addresses = '127.0.0.1'\n";
  conf += "port = " + std::to_string(port_) + "\n";
  conf += "unix_socket_directories = " + conf_string(dir_) + "\n";
  // A throwaway cluster: durability buys nothing and costs time.
  conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  conf += "shared_buffers = 16MB\n";
  // Timestamps print the same on every machine.
  conf += "timezone = 'UTC'\nlog_timezone = 'UTC'\n";
  for (const auto& line : options_.settings) conf += line + "\n";
  write_text(data_dir_ + "/molt_test.conf", conf, account_);
}

void PostgresServer::start() {
  if (running_) return;
  const std::vector<std::string> argv = {
      tool("pg_ctl"), "start", "-D", data_dir_, "-l",
      log_file_,      "-w",    "-s", "-t",      std::to_string(options_.start_timeout.count())};
  const Result r = run_as(account_, dir_, argv, {}, options_.start_timeout + seconds(15));
  if (r.status != 0) {
    // A server that is merely slow would come up later with nobody to stop it.
    run_as(account_, dir_, {tool("pg_ctl"), "stop", "-D", data_dir_, "-m", "immediate", "-s"}, {},
           seconds(30));
    fail("the server did not start: " + describe(argv, r) + "\n--- " + log_file_ +
         " (last lines) ---\n" + log_tail());
  }
  running_ = true;
}

void PostgresServer::stop(StopMode mode) {
  if (!running_) return;
  const pid_t pid = postmaster_pid();
  const std::vector<std::string> argv = {tool("pg_ctl"),  "stop", "-D", data_dir_, "-m",
                                         mode_name(mode), "-w",   "-s", "-t",      "60"};
  const Result r = run_as(account_, dir_, argv, {}, seconds(90));
  if (r.status != 0 && process_alive(pid)) fail("the server did not stop: " + describe(argv, r));
  // After a crash (a test killed the postmaster) the pid file stays behind; a zombie
  // postmaster not yet reaped by init would make the next start refuse it.
  if (pid > 0 && !process_alive(pid)) ::unlink((data_dir_ + "/postmaster.pid").c_str());
  running_ = false;
}

pid_t PostgresServer::postmaster_pid() const {
  std::ifstream file(data_dir_ + "/postmaster.pid");
  long pid = -1;
  if (!(file >> pid)) return -1;
  return static_cast<pid_t>(pid);
}

std::string PostgresServer::dsn(std::string_view dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + conninfo_value(db_user_) +
         " dbname=" + conninfo_value(dbname);
}

std::string PostgresServer::socket_dsn() const {
  return "host=" + conninfo_value(dir_) + " port=" + std::to_string(port_) +
         " user=" + conninfo_value(db_user_) + " dbname=" + conninfo_value(options_.database);
}

std::string PostgresServer::psql(std::string_view sql, std::string_view dbname) const {
  std::vector<std::string> argv = {tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"};
  argv.insert(argv.end(), {"-h", dir_, "-p", std::to_string(port_), "-U", db_user_});
  argv.insert(argv.end(), {"-d", std::string(dbname), "-c", std::string(sql)});
  const Result r = run_as(account_, dir_, argv,
                          {std::string("PGAPPNAME=") + kPsqlApplicationName, "PGCONNECT_TIMEOUT=10",
                           "PGCLIENTENCODING=UTF8"},
                          seconds(60));
  if (r.status != 0 || r.timed_out) {
    fail("psql failed on `" + std::string(sql) + "`: " + trim(r.err.empty() ? r.out : r.err));
  }
  std::string out = r.out;
  if (out.ends_with('\n')) out.pop_back();
  return out;
}

std::string PostgresServer::log_tail(std::size_t lines) const {
  const std::string text = trim(read_text(log_file_));
  if (text.empty()) return "(the server log is empty)";
  std::size_t start = text.size();
  for (std::size_t seen = 0; seen < lines && start > 0; ++seen) {
    start = text.rfind('\n', start - 1);
    if (start == std::string::npos) return text;
  }
  return text.substr(start == 0 ? 0 : start + 1);
}

}  // namespace molt::testing
