// molt::db on PostgreSQL through libpq's non-blocking API. Every call runs on a leased
// connection in the calling thread and is one round trip (pg::Call: pipeline mode, callers'
// statements prepared once per connection): a query is its statement, a lone write is
// BEGIN READ WRITE / statement / COMMIT, a batch is its statements. Deadlines and cancel
// tokens stop a call promptly: a cancel request goes to the server, the connection's pending
// results are drained and the connection goes back to the pool (or is closed when it cannot
// be brought back to a clean state).
//
// Not yet here: COPY.

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../connection_pool.hpp"
#include "../result_budget.hpp"
#include "call.hpp"
#include "connection.hpp"
#include "listener.hpp"
#include "molt/db/postgres.hpp"
#include "named_params.hpp"
#include "session_rules.hpp"
#include "text_params.hpp"
#include "text_values.hpp"

namespace molt::db {
namespace {

using core::StatusCode;
using namespace std::chrono_literals;
using pg::Call;
using pg::Connection;
using pg::fail;
using pg::ResultPtr;
using pg::Step;

// How long a transaction's rollback may take when it is destroyed.
constexpr auto kRollbackTime = 1s;

// SQL and parameters as the server takes them: `:name` rewritten to `$k`.
struct Statement {
  std::string sql;
  std::vector<pg::EncodedParam> params;
  bool changes_session = false;  // pg::may_change_session: the connection is not reused after

  Step step() const { return {sql, &params, /*prepared=*/true}; }
};

// What scanning a statement's text tells: its `:name` rewrite, and whether it may change the
// session unseen.
struct ScannedSql {
  pg::RewrittenSql rewritten;
  bool changes_session;
};

// `sql` scanned, remembered per thread: the same few statements come back call after call,
// and looking one up costs far less than scanning it again. Per thread, so no lock; bounded,
// so a stream of distinct SQL cannot grow it without limit.
const ScannedSql& scanned(std::string_view sql) {
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  constexpr std::size_t kRemembered = 64;
  thread_local std::unordered_map<std::string, ScannedSql, Hash, std::equal_to<>> seen;
  if (const auto found = seen.find(sql); found != seen.end()) return found->second;
  ScannedSql fresh{pg::rewrite_named_params(sql),  // may throw: nothing is kept then
                   pg::may_change_session(sql)};
  if (seen.size() >= kRemembered) seen.clear();
  return seen.emplace(std::string(sql), std::move(fresh)).first->second;
}

// What a statement is for: a read runs in a read-only transaction, which no statement of it
// may end (pg::read_refusal).
enum class Access { Read, Write };

// `in_transaction`: the call runs in a transaction of the API (Database::begin()).
constexpr std::size_t kMaxParams = 65535;

Statement bind(std::string_view sql, const Params& params, bool in_transaction, Access access) {
  // libpq takes C strings: the text after a NUL would be dropped, the statement run without it.
  if (sql.find('\0') != std::string_view::npos) throw core::SqlError("the SQL contains a NUL byte");
  if (const char* why = pg::session_statement_refusal(sql, in_transaction))
    throw core::SqlError(why);
  if (access == Access::Read)
    if (const char* why = pg::read_refusal(sql)) throw core::SqlError(why);
  const ScannedSql& scan = scanned(sql);
  const pg::RewrittenSql& r = scan.rewritten;
  Statement s{r.sql, {}, scan.changes_session};
  for (const auto& p : pg::order_named_params(r, params)) s.params.push_back(pg::encode_param(p));
  if (s.params.size() > kMaxParams)  // the protocol's count is 16 bits; libpq would drop us
    throw core::SqlError("PostgreSQL takes at most 65535 values a statement; " +
                         std::to_string(s.params.size()) + " were given");
  return s;
}

// Fixed SQL of our own: sent unnamed, never cached.
constexpr Step fixed(std::string_view sql) {
  return {sql, nullptr, false};
}

// Runs `attempt` once more when a cached prepared statement turned out stale: the server
// refused it before running it, and the connection is back outside any failed transaction.
template <class F>
auto replanned(F&& attempt) -> decltype(attempt()) {
  try {
    return attempt();
  } catch (const pg::StalePlan&) {
    return attempt();
  }
}

// One statement's Rows, built from its whole result or, when the caller limits the rows or
// their bytes, row by row as single-row mode hands them over: libpq then never holds more
// than a row past the limits (a result materialised whole would be checked only once libpq
// held all of it, 50 million rows or a gigabyte of text included).
class RowsBuilder final : public pg::RowSink {
 public:
  // With `parts`, the rows are handed to it kRowsPerPart at a time instead of kept (the
  // caller reads row by row then, and calls hand_over_last() at the end).
  explicit RowsBuilder(const QueryOptions& options, const PartVisitor* parts = nullptr)
      : max_rows_(options.max_rows), budget_(options.max_bytes), parts_(parts) {}

  bool row_by_row() const noexcept { return max_rows_ != 0 || budget_.limited(); }

  void add(const PGresult* result) override {
    const auto status = result ? PQresultStatus(result) : PGRES_COMMAND_OK;
    if (status != PGRES_TUPLES_OK && status != PGRES_SINGLE_TUPLE) return;  // no rows to give
    const int width = PQnfields(result), height = PQntuples(result);
    if (!started_) start(result, width);
    failed_ = true;  // until every cell is taken
    seen_ += static_cast<std::size_t>(height);
    if (max_rows_ && seen_ > max_rows_)
      throw core::SqlError("the statement returns more than max_rows=" + std::to_string(max_rows_) +
                           " rows");
    if (budget_.limited())
      for (int r = 0; r < height; ++r)
        for (int i = 0; i < width; ++i)
          budget_.take(static_cast<std::size_t>(PQgetlength(result, r, i)));  // as text
    if (status == PGRES_TUPLES_OK && !parts_)  // the whole result (or the end of row by row)
      rows_.reserve_cells(static_cast<std::size_t>(width) * seen_);
    for (int r = 0; r < height; ++r)
      for (int i = 0; i < width; ++i) {
        const int length = PQgetlength(result, r, i);
        // Only an empty cell can be NULL: one libpq call per cell saved.
        const bool is_null = length == 0 && PQgetisnull(result, r, i) != 0;
        rows_.append_cell(pg::decode_text_cell(types_[static_cast<std::size_t>(i)],
                                               PQgetvalue(result, r, i), length, is_null));
      }
    failed_ = false;
    if (parts_ && rows_.size() >= kRowsPerPart) {
      (*parts_)(rows_);
      handed_ = true;
      rows_.clear_rows();
    }
  }

  // The rows since the last part; the only part of a result with fewer than kRowsPerPart.
  void hand_over_last() {
    if (!handed_ || !rows_.empty()) (*parts_)(rows_);
  }

  Rows take() { return std::move(rows_); }
  // add() threw: the rows passed max_rows or max_bytes, or a cell could not be read.
  bool failed() const noexcept { return failed_; }

 private:
  void start(const PGresult* result, int width) {
    started_ = true;
    std::vector<std::string> columns;
    for (int i = 0; i < width; ++i) {
      columns.emplace_back(PQfname(result, i));
      types_.push_back(PQftype(result, i));  // asked once per column, not once per cell
    }
    rows_ = Rows(std::move(columns));
  }

  std::size_t max_rows_;
  detail::ResultBudget budget_;
  bool started_ = false;
  bool failed_ = false;
  const PartVisitor* parts_;
  bool handed_ = false;
  std::size_t seen_ = 0;
  std::vector<Oid> types_;
  Rows rows_;
};

// Reads only: outside a transaction the statements run in the session's default read-only
// transaction; inside one, under a savepoint with transaction_read_only set, which rolling
// back to the savepoint undoes again. Either way a write fails on the server (25006) and
// changes nothing, whatever the SQL looks like. One round trip unless a statement fails
// inside a transaction (then a second one restores the savepoint).
std::vector<Rows> run_queries(Connection& c, const std::vector<Statement>& statements,
                              const QueryOptions& options, core::Deadline deadline,
                              bool in_transaction) {
  for (const Statement& statement : statements)
    if (statement.changes_session) c.mark_session_changed();
  Call call(c, deadline, options.cancel, in_transaction);
  call.check();
  std::vector<Step> steps;
  constexpr std::size_t kOpening = 2;  // the savepoint steps before the statements
  if (in_transaction) {
    steps.push_back(fixed("SAVEPOINT molt_query"));
    steps.push_back(fixed("SET LOCAL transaction_read_only = on"));
  }
  std::vector<RowsBuilder> builders(statements.size(), RowsBuilder(options));
  for (std::size_t i = 0; i < statements.size(); ++i) {
    steps.push_back(statements[i].step());
    if (builders[i].row_by_row()) steps.back().rows = &builders[i];
  }
  const Step closing[] = {fixed("ROLLBACK TO SAVEPOINT molt_query"),
                          fixed("RELEASE SAVEPOINT molt_query")};
  if (in_transaction) steps.insert(steps.end(), std::begin(closing), std::end(closing));
  std::vector<ResultPtr> results;
  try {
    results = call.run(steps);
  } catch (const core::Error&) {
    // A failed statement left the transaction aborted; back to the savepoint (when it was
    // taken) makes it usable again. A result refused for its size may have come after the
    // server had run the whole round, savepoint released: then nothing is aborted.
    if (in_transaction && call.usable() && call.failed_step() != static_cast<std::size_t>(-1) &&
        call.failed_step() >= 1 && PQtransactionStatus(c.handle()) == PQTRANS_INERROR) {
      try {
        call.run(closing);
      } catch (const core::Error&) {
        c.close();  // the statement's error is the one to report
      }
    }
    throw;
  }
  std::vector<Rows> out;
  out.reserve(statements.size());
  const std::size_t first = in_transaction ? kOpening : 0;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (!builders[i].row_by_row()) builders[i].add(results[first + i].get());
    out.push_back(builders[i].take());
  }
  return out;
}

// One reading statement outside a transaction, its rows handed to `visit` in parts as
// single-row mode gives them: libpq holds one row at a time, this a part's worth.
void run_query_in_parts(Connection& c, const Statement& statement, const QueryOptions& options,
                        core::Deadline deadline, const PartVisitor& visit) {
  if (statement.changes_session) c.mark_session_changed();
  Call call(c, deadline, options.cancel, /*in_transaction=*/false);
  call.check();
  RowsBuilder rows(options, &visit);
  Step step = statement.step();
  step.rows = &rows;
  const Step steps[] = {step};
  call.run(steps);
  rows.hand_over_last();
}

// A write, alone or in a transaction of the API. Its rows (a RETURNING clause's, or a
// SELECT's) are held to max_rows and max_bytes row by row; a statement past them is stopped
// and rolled back. Alone, BEGIN READ WRITE / statement / COMMIT go in one round trip, except
// that a statement that may give rows under a limit is committed in a second one, once its
// rows have been read within the limits: a COMMIT already sent could not be taken back.
ExecResult run_execute(Connection& c, const Statement& statement, const QueryOptions& options,
                       core::Deadline deadline, bool in_transaction, bool may_return_rows) {
  if (statement.changes_session) c.mark_session_changed();
  Call call(c, deadline, options.cancel, in_transaction);
  call.check();
  RowsBuilder rows(options);
  Step step = statement.step();
  const bool limited = rows.row_by_row() && (in_transaction || may_return_rows);
  if (limited) step.rows = &rows;
  ResultPtr result = pg::no_result();
  try {
    if (in_transaction) {
      const Step steps[] = {step};
      result = std::move(call.run(steps)[0]);
    } else if (!limited) {
      // Sessions are read-only by default (see Connection::connect): a write on its own gets
      // a READ WRITE transaction of its own, in the same round trip.
      const Step steps[] = {fixed("BEGIN READ WRITE"), step, fixed("COMMIT")};
      auto results = call.run(steps);
      // COMMIT of a transaction that failed answers ROLLBACK, not an error.
      if (!results[2] || std::strcmp(PQcmdStatus(results[2].get()), "COMMIT") != 0)
        throw core::SqlError("the statement was rolled back");
      result = std::move(results[1]);
    } else {
      const Step steps[] = {fixed("BEGIN READ WRITE"), step};
      result = std::move(call.run(steps)[1]);
      call.check();  // a deadline passed by now rolls back rather than commits
      const Step commit[] = {fixed("COMMIT")};
      const auto committed = call.run(commit);
      if (!committed[0] || std::strcmp(PQcmdStatus(committed[0].get()), "COMMIT") != 0)
        throw core::SqlError("the statement was rolled back");
    }
  } catch (const core::Error& e) {
    // A failed statement skipped COMMIT and left the transaction aborted (a stopped call has
    // rolled it back already).
    if (!in_transaction && call.usable() && PQtransactionStatus(c.handle()) != PQTRANS_IDLE) {
      try {
        const Step rollback[] = {fixed("ROLLBACK")};
        call.run(rollback);
      } catch (const core::Error&) {
        c.close();  // the statement's error is the one to report
      }
    }
    if (rows.failed()) throw core::SqlError(std::string(e.what()) + "; nothing was committed");
    throw;
  }
  ExecResult out;  // last_insert_id stays empty: PostgreSQL callers use RETURNING
  if (result) {
    // The rows a write touched; a SELECT's tag counts rows too, but it changed none (0, as on
    // SQLite).
    const char* tuples = PQcmdTuples(result.get());
    const bool selected = std::string_view(PQcmdStatus(result.get())).starts_with("SELECT");
    if (tuples && *tuples && !selected) out.rows_affected = std::stoll(tuples);
    if (!limited) {
      try {
        rows.add(result.get());  // a RETURNING clause's rows, if it had one
      } catch (const core::Error& e) {
        // Read after the statement ran (and, alone, after its COMMIT): say so, or a caller
        // would run it again.
        fail(StatusCode::InternalError,
             std::string(in_transaction ? "the statement ran in a transaction, which is rolled back"
                                        : "the statement ran and was committed") +
                 ", but its RETURNING rows cannot be read: " + e.what());
      }
    }
    out.returned = rows.take();
  }
  return out;
}

// Runs one fixed statement (BEGIN, COMMIT, ROLLBACK) and answers its command tag.
std::string run_fixed(Connection& c, std::string_view sql, core::Deadline deadline,
                      const core::CancelToken& cancel, bool in_transaction) {
  Call call(c, deadline, cancel, in_transaction);
  const Step steps[] = {fixed(sql)};
  const ResultPtr result = std::move(call.run(steps)[0]);
  return result ? PQcmdStatus(result.get()) : "";
}

// A call's statements may have changed the session that the next call would get: turned its
// read-only default off (`SELECT set_config('default_transaction_read_only', 'off', false)`),
// changed the forms values are read in, or (in a DO block) its prepared statements. Such a
// connection is closed when the call ends, however it ends, not handed to the next one.
struct SessionCheck {
  Connection& c;
  ~SessionCheck() { c.close_if_session_changed(); }
};

using ConnectionPool = detail::ConnectionPool<Connection>;

class PostgresTransaction final : public TransactionSession {
 public:
  // `owner` keeps the database (and so the pool the lease returns to) alive for as long as
  // the transaction lives.
  PostgresTransaction(std::shared_ptr<const Database> owner, ConnectionPool::Lease lease,
                      const PostgresOptions& options)
      : owner_(std::move(owner)), lease_(std::move(lease)), options_(options) {}
  ~PostgresTransaction() override { (*lease_).close_if_session_changed(); }

  Rows query(std::string_view sql, const Params& params, const QueryOptions& o) override {
    const std::vector<Statement> statements{bind(sql, params, true, Access::Read)};
    // Safe to repeat: a failed statement was undone by rolling back to its savepoint.
    return std::move(
        replanned([&] { return run_queries(connection(), statements, o, deadline(o), true); })[0]);
  }
  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    try {
      return run_execute(connection(), bind(sql, params, true, Access::Write), o, deadline(o), true,
                         pg::may_return_rows(sql));
    } catch (const pg::StalePlan& stale) {
      // The refusal aborted the transaction, and a savepoint per write to retry from would
      // cost every transaction subtransactions (as asyncpg, the caller retries instead). The
      // statement is forgotten: the transaction's next attempt prepares it afresh.
      fail(StatusCode::Busy, std::string(stale.what()) +
                                 "; the transaction is aborted: roll it back and run it again");
    }
  }
  void commit() override {
    // COMMIT of a transaction that already failed answers ROLLBACK, not an error.
    if (run_fixed(connection(), "COMMIT", deadline({}), {}, true) != "COMMIT")
      throw core::SqlError(
          "the transaction failed earlier and was rolled back instead of committed");
  }
  void rollback() noexcept override {
    Connection& c = *lease_;
    if (!c.is_open() || PQtransactionStatus(c.handle()) == PQTRANS_IDLE) return;
    try {
      run_fixed(c, "ROLLBACK", core::Deadline::after(kRollbackTime), {}, false);
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
    const std::vector<Statement> statements{bind(sql, params, false, Access::Read)};
    return std::move(run(statements, o)[0]);
  }

  void query_in_parts(std::string_view sql, const Params& params, const QueryOptions& o,
                      const PartVisitor& visit) override {
    const Statement statement = bind(sql, params, false, Access::Read);
    reading(
        o, [&](Connection& c, core::Deadline d) { run_query_in_parts(c, statement, o, d, visit); });
  }

  std::vector<Rows> query_batch(const std::vector<BatchQuery>& queries,
                                const QueryOptions& o) override {
    std::vector<Statement> statements;
    statements.reserve(queries.size());
    for (const auto& q : queries) statements.push_back(bind(q.sql, q.params, false, Access::Read));
    if (statements.empty()) return {};
    return run(statements, o);
  }

  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    const Statement statement = bind(sql, params, false, Access::Write);
    const bool rows = pg::may_return_rows(sql);
    const auto d = deadline(o);
    auto lease = lease_open(d, o.cancel);
    const SessionCheck check{*lease};
    // Safe to repeat: the failed statement's transaction was rolled back.
    return replanned(
        [&] { return run_execute(reopened(*lease, d, o.cancel), statement, o, d, false, rows); });
  }

  Transaction begin(const QueryOptions& o) override {
    const auto d = deadline(o);
    auto lease = lease_open(d, o.cancel);
    // Sessions read by default; an explicit transaction may write.
    run_fixed(*lease, "BEGIN READ WRITE", d, o.cancel, /*in_transaction=*/true);
    return Transaction(
        std::make_unique<PostgresTransaction>(shared_from_this(), std::move(lease), options_));
  }

  PoolStats stats() const override { return pool_.stats(); }

  std::unique_ptr<Listener> listen(const std::vector<std::string>& channels) override {
    return pg::make_listener(options_, channels);
  }

 private:
  std::vector<Rows> run(const std::vector<Statement>& statements, const QueryOptions& o) {
    return reading(o, [&](Connection& c, core::Deadline d) {
      return run_queries(c, statements, o, d, false);
    });
  }
  // Runs `read(connection, deadline)`, statements that only read, on a pooled connection.
  template <class Read>
  auto reading(const QueryOptions& o, Read&& read)
      -> decltype(read(std::declval<Connection&>(), core::Deadline{})) {
    const auto d = deadline(o);
    auto lease = pool_.acquire(d, o.cancel, options_.pool_wait);
    const bool reused = !(*lease).ensure_open(d, o.cancel);
    const SessionCheck check{*lease};
    // Safe to repeat: the statements ran in one implicit transaction, which the failure
    // rolled back, and a stale plan or a session found gone came before any result (so no
    // part of a query_in_parts() was handed over yet).
    const auto attempt = [&] {
      return replanned([&] { return read(reopened(*lease, d, o.cancel), d); });
    };
    try {
      return attempt();
    } catch (const pg::ConnectionLost& lost) {
      // A session that served earlier calls can have been gone before this one began, with
      // no word of it yet on its socket (a server killed, a network reset): nothing came
      // back, and these statements only read, so once more on a new session. Not when the
      // server said something (an administrator ending a runaway query), nor on a new
      // session, which breaking too is the server's state.
      if (!reused || !lost.before_any_result()) throw;
      return attempt();
    }
  }
  // The connection again, for a second attempt after a stale plan whose clean-up closed it.
  static Connection& reopened(Connection& c, core::Deadline d, const core::CancelToken& cancel) {
    if (!c.is_open()) c.ensure_open(d, cancel);
    return c;
  }
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

// What makes a parsed connection string one that can never connect, said without its
// values: a URI password with '@' or '/' not percent-encoded is split into the host or the
// port, and libpq's connect error would quote those pieces of it in every log line.
std::string connection_string_mistake(std::string_view keyword, std::string_view value) {
  constexpr std::string_view kEncode =
      " (in a URI, a password or user name with '@', '/', ':' or '?' must be percent-encoded: "
      "%40, %2F, %3A, %3F)";
  // A host starting with '@' is a socket in Linux's abstract namespace, and one starting with
  // '/' a socket's folder: only a name or address holding an '@' is a split password.
  for (std::string_view hosts = value;
       (keyword == "host" || keyword == "hostaddr") && !hosts.empty();) {
    const std::size_t comma = hosts.find(',');
    const std::string_view host = hosts.substr(0, comma);
    hosts = comma == hosts.npos ? std::string_view{} : hosts.substr(comma + 1);
    if (!host.starts_with('@') && !host.starts_with('/') && host.find('@') != host.npos)
      return "the connection string's host holds an '@'" + std::string(kEncode);
  }
  if (keyword == "port" && value.find_first_not_of("0123456789,") != value.npos)
    return "the connection string's port is not a number" + std::string(kEncode);
  constexpr std::string_view kModes[] = {"disable", "allow",     "prefer",
                                         "require", "verify-ca", "verify-full"};
  if (keyword == "sslmode" && !value.empty() &&
      std::find(std::begin(kModes), std::end(kModes), value) == std::end(kModes))
    return "the connection string's sslmode is none of disable, allow, prefer, require, "
           "verify-ca, verify-full";
  return {};
}

}  // namespace

std::shared_ptr<Database> open_postgres(const PostgresOptions& options) {
  if (options.pool_size == 0) fail(StatusCode::InvalidInput, "PostgreSQL: pool_size must be > 0");
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &error);
  if (!parsed) {
    const std::string why = error ? pg::without_quoted_parts(pg::trimmed(error)) : "out of memory";
    PQfreemem(error);
    fail(StatusCode::InvalidInput, "PostgreSQL: cannot parse the connection string: " + why);
  }
  std::string mistake;
  for (const PQconninfoOption* option = parsed; option->keyword && mistake.empty(); ++option)
    mistake = connection_string_mistake(option->keyword, option->val ? option->val : "");
  PQconninfoFree(parsed);
  if (!mistake.empty()) fail(StatusCode::InvalidInput, "PostgreSQL: " + mistake);
  return std::make_shared<PostgresDatabase>(options);
}

}  // namespace molt::db
