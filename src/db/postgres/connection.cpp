#include "connection.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <string_view>

namespace molt::db::pg {

using core::StatusCode;

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string without_quoted_parts(std::string_view text) {
  std::string out;
  bool quoted = false;
  for (const char c : text) {
    if (c == '"') {
      out += quoted ? "...\"" : "\"";
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  return out;
}

namespace {
// Every session's settings, over whatever the server, the database, the role, the connection
// string's options, a service file or PGOPTIONS set (all of which still apply otherwise: a
// TimeZone, say):
// - read-only by default: a statement outside an explicit transaction cannot write, so
//   query() needs no transaction of its own (one round trip); writes say READ WRITE;
// - output in the forms the cell decoder reads: bytea in hex, floats in their shortest exact
//   form, dates ISO, intervals postgres, and a backslash in a literal is itself (as the
//   `:name` rewrite reads literals).
// They are set by one query, then the statement_timeout in force (in milliseconds) is read,
// which tells a server's timeout from an administrator's cancel (both are SQLSTATE 57014).
struct SessionSetting {
  const char* name;
  std::string_view value;
  // How the server reports it (GUC_REPORT) while it is as set: a set_config() of it by a
  // caller shows there. Empty: not reported (set_config in a statement's text marks the
  // session changed instead). A prefix for DateStyle, reported with its order ("ISO, MDY").
  std::string_view reported;
  bool reported_prefix = false;
};
constexpr SessionSetting kSessionSettings[] = {
    {"default_transaction_read_only", "on", "on"},
    {"bytea_output", "hex", ""},
    {"extra_float_digits", "3", ""},
    {"DateStyle", "ISO", "ISO, ", true},
    {"IntervalStyle", "postgres", "postgres"},
    {"standard_conforming_strings", "on", "on"},
};

std::string session_setup_sql() {
  std::string sql;
  for (const SessionSetting& setting : kSessionSettings)
    sql.append("SET ").append(setting.name).append(" = ").append(setting.value).append("; ");
  return sql.append(
      "SELECT (extract(epoch FROM current_setting('statement_timeout')::interval) * 1000)::bigint");
}
}  // namespace

Connection::Connection(const PostgresOptions& options)
    : options_(options), statements_(options.statement_cache) {}

Connection::~Connection() {
  close();
}

void Connection::close() noexcept {
  waiter_.forget();  // before libpq closes the socket
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  statements_.clear();  // prepared statements live and die with the session
  session_changed_ = false;
}

void Connection::close_if_session_changed() noexcept {
  if (!conn_) return;
  bool changed = session_changed_;
  for (const SessionSetting& setting : kSessionSettings) {
    if (setting.reported.empty()) continue;
    const char* value = PQparameterStatus(conn_, setting.name);
    if (value == nullptr) continue;  // an older server that does not report it
    const std::string_view now(value);
    changed = changed || !(setting.reported_prefix ? now.starts_with(setting.reported)
                                                   : now == setting.reported);
  }
  if (changed) close();
}

namespace {
// An idle session is sent nothing, unless it is being ended: a server that restarts, an
// administrator's pg_terminate_backend or an idle_session_timeout sends a FATAL message and
// closes. libpq would read that message as a notice and still call the connection OK, so
// the socket is asked directly: anything waiting on it, or its end, means the session is gone.
// (A configuration reload's ParameterStatus reads the same way: a reconnect is cheap.)
bool idle_socket_is_quiet(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}
}  // namespace

bool Connection::ensure_open(core::Deadline deadline, const core::CancelToken& cancel) {
  if (conn_ && (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE ||
                !idle_socket_is_quiet(PQsocket(conn_))))
    close();
  if (conn_) return false;
  connect(deadline, cancel);
  return true;
}

void Connection::connect(core::Deadline call_deadline, const core::CancelToken& cancel) {
  const core::Deadline deadline =
      call_deadline.min(core::Deadline::after(options_.connect_timeout));
  clear_wake();
  auto wake = cancel.on_cancel([this] { this->wake(); });
  // UTF-8 whatever the database's encoding: the server converts, and text reaches answers
  // (MsgPack str, JSON) that carry nothing else.
  const char* keywords[] = {"dbname", "client_encoding", nullptr};
  const char* values[] = {options_.dsn.c_str(), "UTF8", nullptr};
  conn_ = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (!conn_) fail(StatusCode::InternalError, "cannot connect to PostgreSQL: out of memory");
  auto status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED || PQstatus(conn_) == CONNECTION_BAD) {
      const std::string why = trimmed(PQerrorMessage(conn_));
      close();
      // "too many clients" (SQLSTATE class 53, which libpq 15 does not expose while
      // connecting): the server is full for now, as when the pool has no connection free.
      if (why.find("too many clients") != std::string::npos ||
          why.find("remaining connection slots are reserved") != std::string::npos)
        fail(StatusCode::Busy, "PostgreSQL has no connection free: " + why);
      // 57P03, a server starting up, shutting down or recovering: worth trying again soon.
      if (why.find("the database system is") != std::string::npos)
        fail(StatusCode::Busy, "PostgreSQL is not taking connections now: " + why);
      fail(StatusCode::InternalError, "cannot connect to PostgreSQL: " + why);
    }
    const unsigned events =
        status == PGRES_POLLING_READING ? SocketWaiter::kRead : SocketWaiter::kWrite;
    // libpq may have moved on to another address, on a new socket.
    const auto waited = waiter_.wait(PQsocket(conn_), events, deadline.at(), /*interruptible=*/true,
                                     /*socket_changed=*/true);
    if (waited != WaitResult::kReady) {
      close();
      cancel.throw_if_cancelled();
      // Said apart: a server that does not answer is not a caller's deadline too short.
      if (!call_deadline.expired())
        fail(StatusCode::Timeout, "no connection to PostgreSQL within connect_timeout (" +
                                      std::to_string(options_.connect_timeout.count()) + " ms)");
      fail(StatusCode::Timeout, "deadline passed while connecting to PostgreSQL");
    }
    status = PQconnectPoll(conn_);
  }
  PQsetnonblocking(conn_, 1);
  // Notices ("there is no transaction in progress" and the like) would go to stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  apply_session_settings(deadline, cancel);
}

// kSessionSettings, in the same deadline as the connect: one more round trip per session.
void Connection::apply_session_settings(core::Deadline deadline, const core::CancelToken& cancel) {
  static const std::string setup = session_setup_sql();
  run_simple(setup, deadline, cancel, [this](const PGresult* result) {
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1) return;
    const std::string_view ms = PQgetvalue(result, 0, 0);
    std::int64_t value = 0;
    if (std::from_chars(ms.data(), ms.data() + ms.size(), value).ec == std::errc{})
      statement_timeout_ = std::chrono::milliseconds(value);
  });
}

void Connection::run_simple(const std::string& sql, core::Deadline deadline,
                            const core::CancelToken& cancel,
                            const std::function<void(const PGresult*)>& on_result) {
  const auto failed = [&](const std::string& why) {
    close();
    fail(StatusCode::InternalError, "cannot set up the PostgreSQL session: " + why);
  };
  const auto ready = [&](unsigned events) {
    if (wait(events, deadline.at()) == WaitResult::kReady) return;
    close();
    cancel.throw_if_cancelled();
    fail(StatusCode::Timeout, "deadline passed while setting up a PostgreSQL session");
  };
  clear_wake();
  auto wake = cancel.on_cancel([this] { this->wake(); });
  if (!PQsendQuery(conn_, sql.c_str())) failed(trimmed(PQerrorMessage(conn_)));
  for (int flushed = PQflush(conn_); flushed != 0; flushed = PQflush(conn_)) {
    if (flushed < 0) failed(trimmed(PQerrorMessage(conn_)));
    ready(SocketWaiter::kRead | SocketWaiter::kWrite);
    if (!PQconsumeInput(conn_)) failed(trimmed(PQerrorMessage(conn_)));
  }
  for (;;) {
    while (PQisBusy(conn_)) {
      ready(SocketWaiter::kRead);
      if (!PQconsumeInput(conn_)) failed(trimmed(PQerrorMessage(conn_)));
    }
    PGresult* result = PQgetResult(conn_);
    if (result == nullptr) return;
    const auto status = PQresultStatus(result);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (ok && on_result) on_result(result);
    const std::string why = ok ? "" : trimmed(PQresultErrorMessage(result));
    PQclear(result);
    if (!ok) failed(why);
  }
}

}  // namespace molt::db::pg
