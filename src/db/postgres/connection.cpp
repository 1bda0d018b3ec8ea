#include "connection.hpp"

namespace molt::db::pg {

using core::StatusCode;

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

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
}

void Connection::ensure_open(core::Deadline deadline, const core::CancelToken& cancel) {
  if (conn_ && (PQstatus(conn_) != CONNECTION_OK || !PQconsumeInput(conn_) ||
                PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE))
    close();
  if (conn_) return;
  connect(deadline.min(core::Deadline::after(options_.connect_timeout)), cancel);
}

void Connection::connect(core::Deadline deadline, const core::CancelToken& cancel) {
  clear_wake();
  auto wake = cancel.on_cancel([this] { this->wake(); });
  // Sessions read by default: a statement outside an explicit transaction cannot write,
  // so query() needs no transaction of its own (one round trip); writes say READ WRITE.
  // UTF-8 whatever the database's encoding: the server converts, and text reaches answers
  // (MsgPack str, JSON) that carry nothing else.
  const char* keywords[] = {"dbname", "options", "client_encoding", nullptr};
  const char* values[] = {options_.dsn.c_str(), "-c default_transaction_read_only=on", "UTF8",
                          nullptr};
  conn_ = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (!conn_) fail(StatusCode::InternalError, "cannot connect to PostgreSQL: out of memory");
  auto status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED || PQstatus(conn_) == CONNECTION_BAD) {
      const std::string why = trimmed(PQerrorMessage(conn_));
      close();
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
