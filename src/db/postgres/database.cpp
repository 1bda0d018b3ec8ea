// molt::db on PostgreSQL through libpq's non-blocking API. Every call runs on a leased
// connection in the calling thread; the only place that blocks is wait_for_socket(), so
// deadlines and cancel tokens stop a call promptly: the wait wakes, a cancel request goes to
// the server, the connection's pending results are drained and the connection goes back to
// the pool (or is closed when it cannot be brought back to a clean state).
//
// Not yet here: prepared-statement caching (every call is parsed by the server anew),
// pipeline mode (a lone write is BEGIN READ WRITE/statement/COMMIT), single-row mode (a result is
// materialised by libpq before max_rows is checked), and COPY.

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../connection_pool.hpp"
#include "molt/db/postgres.hpp"
#include "named_params.hpp"
#include "text_params.hpp"
#include "text_values.hpp"

namespace molt::db {
namespace {

using core::Clock;
using core::StatusCode;
using namespace std::chrono_literals;

// How long a stopped call may spend bringing its connection back to a clean state.
constexpr auto kDrainTime = 1s;

[[noreturn]] void fail(StatusCode code, std::string message) {
  throw core::Error(code, std::move(message));
}

// libpq's messages end with a newline; ours do not.
std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

enum class WaitResult { kReady, kWoken, kTimedOut };

// Waits until `socket` is ready for `events` (poll(2) flags), `wake_fd` becomes readable (a
// cancel token fired; -1 for none) or `until` passes. This is the one place a call blocks:
// an Asio-driven wait (async_wait on the socket and the wake signal) can replace it later
// without touching the protocol code around it.
WaitResult wait_for_socket(int socket, short events, int wake_fd, Clock::time_point until) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= until) return WaitResult::kTimedOut;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    const int timeout = static_cast<int>(std::min<std::int64_t>(left, 60'000));
    pollfd fds[2] = {{socket, events, 0}, {wake_fd, POLLIN, 0}};  // poll skips a negative fd
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return WaitResult::kReady;  // let libpq run into the error and report it
    if (fds[1].revents) return WaitResult::kWoken;
    if (fds[0].revents) return WaitResult::kReady;
  }
}

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

ResultPtr no_result() {
  return ResultPtr(nullptr, &PQclear);
}

// One pool slot: a libpq connection that may be closed (never opened, lost, or discarded
// after a failed clean-up) and is opened again on next use.
class Connection {
 public:
  explicit Connection(const PostgresOptions& options)
      : options_(options), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0)
      fail(StatusCode::InternalError, "eventfd failed: " + std::string(strerror(errno)));
  }
  ~Connection() {
    close();
    ::close(wake_fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* handle() const noexcept { return conn_; }
  bool is_open() const noexcept { return conn_ != nullptr; }
  int wake_fd() const noexcept { return wake_fd_; }

  void close() noexcept {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  // Forgets an earlier wake-up, so that only this call's cancel token can end its waits.
  void clear_wake() const noexcept {
    std::uint64_t value = 0;
    while (::read(wake_fd_, &value, sizeof value) > 0) {
    }
  }
  void wake() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
  }

  // Makes sure the connection is usable, opening it when closed or found dead: the server
  // may have restarted since the last call, which an idle connection only learns by reading
  // the termination message and end of stream waiting on its socket.
  void ensure_open(core::Deadline deadline, const core::CancelToken& cancel) {
    if (conn_ && (PQstatus(conn_) != CONNECTION_OK || !PQconsumeInput(conn_) ||
                  PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE))
      close();
    if (conn_) return;
    connect(deadline.min(core::Deadline::after(options_.connect_timeout)), cancel);
  }

 private:
  void connect(core::Deadline deadline, const core::CancelToken& cancel) {
    clear_wake();
    auto wake = cancel.on_cancel([this] { this->wake(); });
    // Sessions read by default: a statement outside an explicit transaction cannot write,
    // so query() needs no transaction of its own (one round trip); writes say READ WRITE.
    const char* keywords[] = {"dbname", "options", nullptr};
    const char* values[] = {options_.dsn.c_str(), "-c default_transaction_read_only=on", nullptr};
    conn_ = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
    if (!conn_) fail(StatusCode::InternalError, "cannot connect to PostgreSQL: out of memory");
    auto status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
      if (status == PGRES_POLLING_FAILED || PQstatus(conn_) == CONNECTION_BAD) {
        const std::string why = trimmed(PQerrorMessage(conn_));
        close();
        fail(StatusCode::InternalError, "cannot connect to PostgreSQL: " + why);
      }
      const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      const auto waited = wait_for_socket(PQsocket(conn_), events, wake_fd_, deadline.at());
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

  const PostgresOptions& options_;
  PGconn* conn_ = nullptr;
  int wake_fd_;
};

// The status of a server error, chosen by its SQLSTATE.
[[noreturn]] void fail_result(const PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string code = state ? state : "";
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const std::string message = primary ? primary : trimmed(PQresultErrorMessage(result));
  const std::string klass = code.substr(0, 2);
  if (code == "40001" || code == "40P01" || code == "55P03")
    fail(StatusCode::Busy, "database busy: " + message);
  if (code == "57014") fail(StatusCode::Timeout, "the server cancelled the statement: " + message);
  // 08P01 here is the server refusing our bind message: the values do not match the SQL.
  if (klass == "42" || klass == "22" || klass == "23" || klass == "21" || klass == "0A" ||
      klass == "25" || code == "08P01")
    fail(StatusCode::InvalidInput, "SQL error: " + message);
  fail(StatusCode::InternalError, "PostgreSQL error " + code + ": " + message);
}

// One call's use of a connection: sends statements one round trip at a time and collects
// their results, watching the call's deadline and cancel token throughout.
class Call {
 public:
  Call(Connection& connection, core::Deadline deadline, const core::CancelToken& cancel,
       bool in_transaction)
      : c_(connection), deadline_(deadline), cancel_(cancel), in_transaction_(in_transaction) {
    c_.clear_wake();
    registration_ = cancel.on_cancel([&c = c_] { c.wake(); });
  }
  ~Call() { registration_.reset(); }  // waits for a running callback
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  void check() const {
    cancel_.throw_if_cancelled();
    if (deadline_.expired()) fail(StatusCode::Timeout, "query deadline exceeded");
  }
  // Whether the connection can still take statements after this call threw.
  bool usable() const noexcept { return c_.is_open() && !stopped_; }

  // A statement with parameters (extended protocol, text results, one statement only).
  ResultPtr run(const std::string& sql, const std::vector<pg::EncodedParam>& params) {
    std::vector<Oid> types;
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : params) {
      types.push_back(p.oid);
      values.push_back(p.text ? p.text->data() : nullptr);
      lengths.push_back(p.text ? static_cast<int>(p.text->size()) : 0);
      formats.push_back(p.binary ? 1 : 0);
    }
    if (!PQsendQueryParams(c_.handle(), sql.c_str(), static_cast<int>(params.size()), types.data(),
                           values.data(), lengths.data(), formats.data(), 0))
      lost();
    return collect();
  }
  // Fixed SQL of our own without parameters (simple protocol: may hold several statements).
  ResultPtr run(const char* sql) {
    if (!PQsendQuery(c_.handle(), sql)) lost();
    return collect();
  }

 private:
  ResultPtr collect() {
    PGconn* conn = c_.handle();
    for (;;) {
      const int flushed = PQflush(conn);
      if (flushed < 0) lost();
      if (flushed == 0) break;
      wait(POLLIN | POLLOUT);
      if (!PQconsumeInput(conn)) lost();
    }
    ResultPtr last = no_result(), error = no_result();
    for (;;) {
      while (PQisBusy(conn)) {
        wait(POLLIN);
        if (!PQconsumeInput(conn)) lost();
      }
      PGresult* result = PQgetResult(conn);
      if (!result) break;
      const auto status = PQresultStatus(result);
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
        PQclear(result);
        c_.close();  // leaving COPY mode cleanly is not worth it for a statement we refuse
        fail(StatusCode::InvalidInput, "COPY is not supported through molt::db");
      }
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
        if (!error)
          error.reset(result);
        else
          PQclear(result);  // the first error is the cause
      } else {
        last.reset(result);
      }
    }
    if (PQstatus(conn) == CONNECTION_BAD) lost();
    if (error) fail_result(error.get());
    return last;
  }

  void wait(short events) {
    const auto until = deadline_.at();
    if (wait_for_socket(PQsocket(c_.handle()), events, c_.wake_fd(), until) != WaitResult::kReady)
      stop();
  }

  // The deadline passed or the token fired: ask the server to cancel, drain what it still
  // sends, and throw the matching status. The connection stays open only when it is known
  // to be idle again (or, inside a transaction, back to waiting for the next statement).
  [[noreturn]] void stop() {
    stopped_ = true;
    PGconn* conn = c_.handle();
    // PQcancel opens its own short connection and blocks for it; libpq 17's PQcancelStart
    // would make this non-blocking too.
    if (PGcancel* request = PQgetCancel(conn)) {
      char why[256];
      PQcancel(request, why, sizeof why);
      PQfreeCancel(request);
    }
    const auto until = Clock::now() + kDrainTime;
    bool clean = drain(until);
    if (clean && !in_transaction_ && PQtransactionStatus(conn) != PQTRANS_IDLE)
      clean = PQsendQuery(conn, "ROLLBACK") && drain(until) &&
              PQtransactionStatus(conn) == PQTRANS_IDLE;
    if (!clean) c_.close();
    cancel_.throw_if_cancelled();
    fail(StatusCode::Timeout, "query deadline exceeded");
  }

  // Reads and drops every pending result until the connection is idle; false when it did
  // not get there by `until` or the connection broke.
  bool drain(Clock::time_point until) {
    PGconn* conn = c_.handle();
    for (;;) {
      const int flushed = PQflush(conn);
      if (flushed < 0) return false;
      if (flushed == 0) break;
      if (wait_for_socket(PQsocket(conn), POLLIN | POLLOUT, -1, until) != WaitResult::kReady ||
          !PQconsumeInput(conn))
        return false;
    }
    for (;;) {
      while (PQisBusy(conn)) {
        if (wait_for_socket(PQsocket(conn), POLLIN, -1, until) != WaitResult::kReady ||
            !PQconsumeInput(conn))
          return false;
      }
      PGresult* result = PQgetResult(conn);
      if (!result) break;
      const auto status = PQresultStatus(result);
      PQclear(result);
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
        return false;
    }
    return PQstatus(conn) == CONNECTION_OK;
  }

  [[noreturn]] void lost() {
    const std::string why = trimmed(PQerrorMessage(c_.handle()));
    c_.close();
    fail(StatusCode::InternalError, "database connection lost: " + why);
  }

  Connection& c_;
  core::Deadline deadline_;
  const core::CancelToken& cancel_;
  bool in_transaction_;
  bool stopped_ = false;
  core::CancelRegistration registration_;
};

// SQL and parameters as the server takes them: `:name` rewritten to `$k`.
struct Statement {
  std::string sql;
  std::vector<pg::EncodedParam> params;
};

Statement prepare(std::string_view sql, const Params& params) {
  auto rewritten = pg::rewrite_named_params(sql);
  Statement s{std::move(rewritten.sql), {}};
  for (const auto& p : pg::order_named_params(rewritten, params))
    s.params.push_back(pg::encode_param(p));
  return s;
}

Rows to_rows(const PGresult* result, std::size_t max_rows) {
  if (!result || PQresultStatus(result) != PGRES_TUPLES_OK) return Rows();
  const int width = PQnfields(result), height = PQntuples(result);
  if (max_rows && static_cast<std::size_t>(height) > max_rows)
    fail(StatusCode::InvalidInput,
         "the query returns more than max_rows=" + std::to_string(max_rows) + " rows");
  std::vector<std::string> columns;
  for (int i = 0; i < width; ++i) columns.emplace_back(PQfname(result, i));
  Rows rows(std::move(columns));
  for (int r = 0; r < height; ++r)
    for (int i = 0; i < width; ++i)
      rows.append_cell(pg::decode_text_cell(PQftype(result, i), PQgetvalue(result, r, i),
                                            PQgetlength(result, r, i),
                                            PQgetisnull(result, r, i) != 0));
  return rows;
}

// Reads only: outside a transaction the statement runs in the session's default read-only
// transaction; inside one, under a savepoint with transaction_read_only set, which rolling
// back to the savepoint undoes again. Either way a write fails on the server (25006) and
// changes nothing, whatever the SQL looks like.
Rows run_query(Connection& c, std::string_view sql, const Params& params,
               const QueryOptions& options, core::Deadline deadline, bool in_transaction) {
  const Statement statement = prepare(sql, params);
  Call call(c, deadline, options.cancel, in_transaction);
  call.check();
  if (!in_transaction) {  // the session's default read-only transaction does the guarding
    ResultPtr result = call.run(statement.sql, statement.params);
    return to_rows(result.get(), options.max_rows);
  }
  call.run("SAVEPOINT molt_query; SET LOCAL transaction_read_only = on");
  const char* end = "ROLLBACK TO SAVEPOINT molt_query; RELEASE SAVEPOINT molt_query";
  ResultPtr result = no_result();
  try {
    result = call.run(statement.sql, statement.params);
  } catch (const core::Error&) {
    if (call.usable()) {
      try {
        call.run(end);
      } catch (const core::Error&) {
        c.close();  // the statement's error is the one to report
      }
    }
    throw;
  }
  call.run(end);
  return to_rows(result.get(), options.max_rows);
}

ExecResult run_execute(Connection& c, std::string_view sql, const Params& params,
                       const QueryOptions& options, core::Deadline deadline, bool in_transaction) {
  const Statement statement = prepare(sql, params);
  Call call(c, deadline, options.cancel, in_transaction);
  call.check();
  // Sessions are read-only by default (see Connection::connect): a write on its own gets a
  // READ WRITE transaction of its own.
  if (!in_transaction) call.run("BEGIN READ WRITE");
  ResultPtr result = no_result();
  try {
    result = call.run(statement.sql, statement.params);
  } catch (const core::Error&) {
    if (!in_transaction && call.usable()) {
      try {
        call.run("ROLLBACK");
      } catch (const core::Error&) {
        c.close();  // the statement's error is the one to report
      }
    }
    throw;
  }
  if (!in_transaction) {
    ResultPtr committed = call.run("COMMIT");
    // COMMIT of a transaction that failed answers ROLLBACK, not an error.
    if (!committed || std::strcmp(PQcmdStatus(committed.get()), "COMMIT") != 0)
      fail(StatusCode::InvalidInput, "the statement was rolled back");
  }
  ExecResult out;  // last_insert_id stays empty: PostgreSQL callers use RETURNING
  if (result) {
    const char* tuples = PQcmdTuples(result.get());
    if (tuples && *tuples) out.rows_affected = std::stoll(tuples);
  }
  return out;
}

using ConnectionPool = detail::ConnectionPool<Connection>;

class PostgresTransaction final : public TransactionSession {
 public:
  // `owner` keeps the database (and so the pool the lease returns to) alive for as long as
  // the transaction lives.
  PostgresTransaction(std::shared_ptr<const Database> owner, ConnectionPool::Lease lease,
                      const PostgresOptions& options)
      : owner_(std::move(owner)), lease_(std::move(lease)), options_(options) {}

  Rows query(std::string_view sql, const Params& params, const QueryOptions& o) override {
    return run_query(connection(), sql, params, o, deadline(o), true);
  }
  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    return run_execute(connection(), sql, params, o, deadline(o), true);
  }
  void commit() override {
    Call call(connection(), deadline({}), {}, true);
    ResultPtr result = call.run("COMMIT");
    // COMMIT of a transaction that already failed answers ROLLBACK, not an error.
    if (!result || std::strcmp(PQcmdStatus(result.get()), "COMMIT") != 0)
      fail(StatusCode::InvalidInput,
           "the transaction failed earlier and was rolled back instead of committed");
  }
  void rollback() noexcept override {
    Connection& c = *lease_;
    if (!c.is_open() || PQtransactionStatus(c.handle()) == PQTRANS_IDLE) return;
    try {
      Call call(c, core::Deadline::after(kDrainTime), {}, false);
      call.run("ROLLBACK");
    } catch (...) {
      c.close();  // a connection in an unknown transaction state must not be reused
    }
  }

 private:
  Connection& connection() {
    Connection& c = *lease_;
    if (!c.is_open())
      fail(StatusCode::InternalError, "database connection lost during the transaction");
    return c;
  }
  core::Deadline deadline(const QueryOptions& o) const {
    return o.deadline.is_set() ? o.deadline : core::Deadline::after(options_.query_timeout);
  }

  std::shared_ptr<const Database> owner_;
  ConnectionPool::Lease lease_;
  const PostgresOptions& options_;
};

class PostgresDatabase final : public Database,
                               public std::enable_shared_from_this<PostgresDatabase> {
 public:
  explicit PostgresDatabase(PostgresOptions options) : options_(std::move(options)) {
    for (std::size_t i = 0; i < options_.pool_size; ++i)
      pool_.add(std::make_unique<Connection>(options_));
  }

  Backend backend() const noexcept override { return Backend::Postgres; }

  Rows query(std::string_view sql, const Params& params, const QueryOptions& o) override {
    const auto d = deadline(o);
    auto lease = lease_open(d, o.cancel);
    return run_query(*lease, sql, params, o, d, false);
  }

  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    const auto d = deadline(o);
    auto lease = lease_open(d, o.cancel);
    return run_execute(*lease, sql, params, o, d, false);
  }

  Transaction begin(const QueryOptions& o) override {
    const auto d = deadline(o);
    auto lease = lease_open(d, o.cancel);
    // Sessions read by default; an explicit transaction may write.
    run_execute(*lease, "BEGIN READ WRITE", {}, o, d, /*in_transaction=*/true);
    return Transaction(
        std::make_unique<PostgresTransaction>(shared_from_this(), std::move(lease), options_));
  }

  PoolStats stats() const override { return pool_.stats(); }

 private:
  ConnectionPool::Lease lease_open(core::Deadline d, const core::CancelToken& cancel) {
    auto lease = pool_.acquire(d, cancel, options_.pool_wait);
    (*lease).ensure_open(d, cancel);
    return lease;
  }
  core::Deadline deadline(const QueryOptions& o) const {
    return o.deadline.is_set() ? o.deadline : core::Deadline::after(options_.query_timeout);
  }

  PostgresOptions options_;
  ConnectionPool pool_;
};

}  // namespace

std::shared_ptr<Database> open_postgres(const PostgresOptions& options) {
  if (options.pool_size == 0) fail(StatusCode::InvalidInput, "PostgreSQL: pool_size must be > 0");
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &error);
  if (!parsed) {
    const std::string why = error ? trimmed(error) : "out of memory";
    PQfreemem(error);
    fail(StatusCode::InvalidInput, "PostgreSQL: cannot parse the connection string: " + why);
  }
  PQconninfoFree(parsed);
  return std::make_shared<PostgresDatabase>(options);
}

}  // namespace molt::db
