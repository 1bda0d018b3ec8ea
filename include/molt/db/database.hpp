#pragma once
// One API over SQLite and PostgreSQL (DESIGN.md §2, §5). Calls block the calling thread, so
// they belong on a blocking pool (the worker's handler threads, core::BlockingPool); every call
// has a deadline and a cancel token, and stops promptly when either fires.
//
// Errors are core::Error with the protocol's statuses: InvalidInput (bad SQL, wrong parameters,
// a write through query(), writes on a read-only database, max_rows exceeded), Busy (no
// connection free within the pool's wait), Timeout, Cancelled, InternalError.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"
#include "molt/core/status.hpp"
#include "molt/db/listener.hpp"
#include "molt/db/row_view.hpp"
#include "molt/db/rows.hpp"

namespace molt::db {

enum class Backend { Sqlite, Postgres };

struct QueryOptions {
  core::Deadline deadline;  // none: the database's default query timeout applies
  core::CancelToken cancel;
  std::size_t max_rows = 0;  // 0: no limit; otherwise more rows is an InvalidInput error
  // 0: no limit; otherwise a result whose cells add up to more bytes is an InvalidInput
  // error (SQLite: text and bytes as long as they are, 8 for any other cell, counted row by
  // row as it is read; PostgreSQL: each cell as the server sent it, row by row as well).
  // On PostgreSQL either limit reads the rows one at a time and cancels the rest on the
  // server once a limit is crossed.
  std::size_t max_bytes = 0;
};

struct PoolStats {
  std::size_t connections = 0;  // open
  std::size_t in_use = 0;
  std::size_t waiting = 0;  // callers waiting for a connection
};

class Transaction;

// One statement of Database::query_batch().
struct BatchQuery {
  std::string_view sql;
  Params params;
};

// Sees each row of Database::query_batch_each: the statement's position in the batch, then
// the row in place.
using RowVisitor = std::function<void(std::size_t statement, const RowView& row)>;

// Sees a result of Database::query_in_parts a part at a time: the statement's columns and the
// rows read since the last part (at most kRowsPerPart). Valid only during the call.
using PartVisitor = std::function<void(const Rows& part)>;
inline constexpr std::size_t kRowsPerPart = 256;

class Database {
 public:
  virtual ~Database() = default;
  virtual Backend backend() const noexcept = 0;

  // A statement that only reads; one that would write is refused (InvalidInput).
  // (The defaults are bound by the static type: call through Database, as open_*() give it.)
  virtual Rows query(std::string_view sql, const Params& params = {},
                     const QueryOptions& options = {}) = 0;
  // Several reading statements on one connection, one Rows each, in order; the first that
  // fails ends the batch with its error. On PostgreSQL they travel in one round trip (and
  // run in one implicit read-only transaction); SQLite runs them one after another in one
  // read transaction, so that they all see the same snapshot. The deadline and max_rows of
  // `options` apply to the batch and to each statement.
  virtual std::vector<Rows> query_batch(const std::vector<BatchQuery>& queries,
                                        const QueryOptions& options = {}) = 0;
  // query_batch() with each row handed to `visit` as it comes instead of being kept, for
  // callers that build their own result: no cell is copied unless `visit` copies it. Same
  // statements, errors, deadline and max_rows. The default runs query_batch() and visits its
  // rows; a backend overrides it when it can do better.
  virtual void query_batch_each(const std::vector<BatchQuery>& queries, const QueryOptions& options,
                                const RowVisitor& visit);
  // query() with the rows handed to `visit` in parts as they are read, never all kept: for a
  // caller that writes them out (an answer, a file), whatever the result's size, only a
  // part's rows are held at a time. At least one part, also for a result with no rows; a
  // failure after some parts ends the call with its error. Same statement, errors, deadline
  // and limits as query(). The default runs query() and hands its result over as one part.
  virtual void query_in_parts(std::string_view sql, const Params& params,
                              const QueryOptions& options, const PartVisitor& visit);
  // A statement that may write (the database must have been opened for writing).
  virtual ExecResult execute(std::string_view sql, const Params& params = {},
                             const QueryOptions& options = {}) = 0;
  // A transaction on one connection: commit() or it rolls back when destroyed.
  virtual Transaction begin(const QueryOptions& options = {}) = 0;

  virtual PoolStats stats() const = 0;

  // A connection of its own listening on `channels` (PostgreSQL's LISTEN; names of 1 to 63
  // letters, digits and _). InvalidInput on a backend without it (SQLite).
  virtual std::unique_ptr<Listener> listen(const std::vector<std::string>& channels);
};

// The part of a transaction a backend implements.
class TransactionSession {
 public:
  virtual ~TransactionSession() = default;
  virtual Rows query(std::string_view sql, const Params& params, const QueryOptions& options) = 0;
  virtual ExecResult execute(std::string_view sql, const Params& params,
                             const QueryOptions& options) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // Whether the database ended the transaction by itself (SQLite rolls one back on INSERT OR
  // ROLLBACK, RAISE(ROLLBACK) or an interrupted write, and goes on in autocommit).
  virtual bool ended_by_database() const noexcept { return false; }
};

// A transaction on one connection. It ends at its first failed write or stopped statement,
// on every backend: it is rolled back then, each later call is refused and commit() throws,
// so that nothing after a failure can be saved. A query that fails on its SQL leaves it as it
// was. Destroyed, or assigned over, without commit(), it rolls back.
class Transaction {
 public:
  explicit Transaction(std::unique_ptr<TransactionSession> session)
      : session_(std::move(session)) {}
  Transaction(Transaction&&) noexcept = default;
  Transaction& operator=(Transaction&& other) noexcept;
  ~Transaction() { rollback(); }

  Rows query(std::string_view sql, const Params& params = {}, const QueryOptions& options = {});
  ExecResult execute(std::string_view sql, const Params& params = {},
                     const QueryOptions& options = {});
  // Commits and ends the transaction; on failure it is rolled back and the error rethrown.
  void commit();
  void rollback() noexcept;

 private:
  TransactionSession& open_session() const;
  // Ends the transaction after `error`: rolled back, its reason kept for the later refusals.
  void fail(const std::exception& error) noexcept;

  std::unique_ptr<TransactionSession> session_;
  bool failed_ = false;  // ended early by a failure, and rolled back
  std::string failure_;  // why
};

}  // namespace molt::db
