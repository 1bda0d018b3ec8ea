#include "molt/db/database.hpp"

namespace molt::db {

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    rollback();  // the open one this replaces, as its destructor would
    session_ = std::move(other.session_);
    failed_ = other.failed_;
    failure_ = std::move(other.failure_);
  }
  return *this;
}

Rows Transaction::query(std::string_view sql, const Params& params, const QueryOptions& options) {
  TransactionSession& session = open_session();
  try {
    return session.query(sql, params, options);
  } catch (const core::Error& e) {
    const bool stopped =
        e.code() == core::StatusCode::Timeout || e.code() == core::StatusCode::Cancelled;
    if (stopped || session.ended_by_database()) fail(e);
    throw;
  }
}

ExecResult Transaction::execute(std::string_view sql, const Params& params,
                                const QueryOptions& options) {
  TransactionSession& session = open_session();
  try {
    return session.execute(sql, params, options);
  } catch (const std::exception& e) {
    fail(e);
    throw;
  }
}

void Transaction::commit() {
  if (failed_)
    throw core::SqlError(
        "the transaction failed earlier and was rolled back instead of committed (" + failure_ +
        ")");
  if (!session_) throw core::SqlError("the transaction has ended (committed or rolled back)");
  auto session = std::move(session_);
  try {
    session->commit();
  } catch (...) {
    session->rollback();
    throw;
  }
}

void Transaction::rollback() noexcept {
  if (auto session = std::move(session_)) session->rollback();
}

TransactionSession& Transaction::open_session() const {
  if (failed_)
    throw core::SqlError("the transaction was rolled back after an earlier failure (" + failure_ +
                         "): begin a new one");
  if (!session_) throw core::SqlError("the transaction has ended (committed or rolled back)");
  return *session_;
}

void Transaction::fail(const std::exception& error) noexcept {
  failed_ = true;
  try {
    failure_ = core::one_line(error.what());
  } catch (...) {  // out of memory: the refusals say less
  }
  rollback();  // and the connection goes back to its pool, its locks released
}

}  // namespace molt::db
