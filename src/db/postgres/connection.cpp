#include "connection.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace molt::db::pg {

using core::StatusCode;

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

namespace {
// The server options of every session: the caller's own (the connection string's `options`,
// else PGOPTIONS, which libpq would ignore once options are given), then ours, which win:
// - read-only by default: a statement outside an explicit transaction cannot write, so
//   query() needs no transaction of its own (one round trip); writes say READ WRITE;
// - output in the forms the cell decoder reads, whatever the server, database or role set:
//   bytea in hex, floats in their shortest exact form, dates ISO, intervals postgres.
std::string session_options(const std::string& dsn) {
  std::string theirs;
  char* error = nullptr;
  if (PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &error)) {
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o)
      if (std::strcmp(o->keyword, "options") == 0 && o->val != nullptr) theirs = o->val;
    PQconninfoFree(parsed);
  }
  PQfreemem(error);
  if (const char* env = std::getenv("PGOPTIONS"); theirs.empty() && env != nullptr) theirs = env;
  if (!theirs.empty()) theirs += ' ';
  return theirs +
         "-c default_transaction_read_only=on -c bytea_output=hex -c extra_float_digits=3 "
         "-c DateStyle=ISO -c IntervalStyle=postgres";
}
}  // namespace

Connection::Connection(const PostgresOptions& options)
    : options_(options),
      session_options_(session_options(options.dsn)),
      statements_(options.statement_cache) {}

Connection::~Connection() {
  close();
}

void Connection::close() noexcept {
  waiter_.forget();  // before libpq closes the socket
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  statements_.clear();  // prepared statements live and die with the session
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
  connect(deadline.min(core::Deadline::after(options_.connect_timeout)), cancel);
  return true;
}

void Connection::connect(core::Deadline deadline, const core::CancelToken& cancel) {
  clear_wake();
  auto wake = cancel.on_cancel([this] { this->wake(); });
  // The session's options (session_options above), and UTF-8 whatever the database's
  // encoding: the server converts, and text reaches answers (MsgPack str, JSON) that carry
  // nothing else.
  const char* keywords[] = {"dbname", "options", "client_encoding", nullptr};
  const char* values[] = {options_.dsn.c_str(), session_options_.c_str(), "UTF8", nullptr};
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
      fail(StatusCode::Timeout, "deadline passed while connecting to PostgreSQL");
    }
    status = PQconnectPoll(conn_);
  }
  PQsetnonblocking(conn_, 1);
  // Notices ("there is no transaction in progress" and the like) would go to stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

}  // namespace molt::db::pg
