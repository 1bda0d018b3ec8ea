#pragma once
// One call's use of a PostgreSQL connection: its statements go to the server in one round
// trip (libpq pipeline mode, one Sync), callers' statements prepared once per session and
// reused by name, while the call's deadline and cancel token are watched throughout. A call
// that is stopped sends the server a cancel request, drains what is still coming and leaves
// the connection idle, or closes it. Internal to molt::db.

#include <libpq-fe.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "connection.hpp"
#include "text_params.hpp"

namespace molt::db::pg {

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

inline ResultPtr no_result() {
  return ResultPtr(nullptr, &PQclear);
}

// Takes a step's rows as libpq's single-row mode hands them over, one PGresult per row,
// instead of the whole result once libpq holds all of it: a result past a caller's limits
// stops at the row that crosses them. `add` throws (core::Error) to stop; the call then
// cancels the statement on the server. The last, empty result (its command tag) is the
// step's result in Call::run's answer as well.
class RowSink {
 public:
  virtual void add(const PGresult* rows) = 0;

 protected:
  ~RowSink() = default;
};

// One statement of a round trip. `sql` must be NUL-terminated (libpq takes C strings).
struct Step {
  std::string_view sql;
  const std::vector<EncodedParam>* params = nullptr;  // none: our own fixed SQL
  bool prepared = false;    // prepare once per session and run by name (callers' statements)
  RowSink* rows = nullptr;  // none: the step's result is returned whole
};

// The server no longer has a prepared statement the cache named (DEALLOCATE ALL, DISCARD
// ALL) or its plan no longer fits (a table's columns changed under `SELECT *`). The
// statement did not run and the cache has forgotten it: the same steps can run once more
// once the connection is back outside any failed transaction.
class StalePlan : public core::Error {
 public:
  explicit StalePlan(std::string message)
      : core::Error(core::StatusCode::InternalError, std::move(message)) {}
};

// The connection broke during the call (it is closed now). `before_any_result`: the server
// sent nothing for this call, not even an error (a session that was gone before the call
// began; one ended while it ran says so, FATAL 57P01, and its statement is not run again).
class ConnectionLost : public core::Error {
 public:
  ConnectionLost(std::string message, bool before_any_result)
      : core::Error(core::StatusCode::InternalError, std::move(message)),
        before_any_result_(before_any_result) {}
  bool before_any_result() const noexcept { return before_any_result_; }

 private:
  bool before_any_result_;
};

class Call {
 public:
  Call(Connection& connection, core::Deadline deadline, const core::CancelToken& cancel,
       bool in_transaction);
  ~Call();
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  void check() const;
  // Whether the connection can still take statements after this call threw.
  bool usable() const noexcept { return c_.is_open() && !stopped_; }

  // Sends `steps` in one round trip and returns one result per step (nullptr when a step
  // has none, or gave its rows to its sink). When a step fails the server skips the later
  // ones up to the Sync; the call reads everything up to it, then throws: StalePlan (see
  // above) or core::Error with the status of the SQLSTATE. When a sink throws, the call
  // cancels the rest and throws that. failed_step() then says which step failed.
  std::vector<ResultPtr> run(std::span<const Step> steps);
  std::size_t failed_step() const noexcept { return failed_step_; }

 private:
  enum class Expect { kIgnore, kPrepare, kStep, kSync };
  struct Expected {
    Expect kind;
    std::size_t step = 0;
  };

  void send(std::span<const Step> steps, std::vector<Expected>& expected);
  void receive(std::span<const Step> steps, const std::vector<Expected>& expected,
               std::vector<ResultPtr>& results);
  void flush();
  ResultPtr next_result();
  void wait(unsigned events);
  [[noreturn]] void stop();
  bool cut_short();
  bool note_commit(PGresult* result) noexcept;
  bool drain(core::Clock::time_point until);
  [[noreturn]] void lost();
  [[noreturn]] void fail_step(const PGresult* error);

  Connection& c_;
  core::Deadline deadline_;
  core::CancelToken cancel_;  // a copy: callers may pass a temporary
  bool in_transaction_;
  core::Clock::time_point started_;
  std::size_t callers_statements_ = 0;  // in the round being run (steps with params)
  bool stopped_ = false;
  bool committed_ = false;                                  // a COMMIT of this round succeeded
  std::size_t commit_step_ = static_cast<std::size_t>(-1);  // the step it was, when a step
  bool heard_from_server_ = false;  // a result (an error included) came for this call
  std::size_t failed_step_ = static_cast<std::size_t>(-1);
  // Per step of the running round: the cache key and whether it ran a cached statement
  // that this round did not prepare (only those can be stale).
  std::vector<std::string> keys_;
  std::vector<bool> reused_;
  std::vector<std::string> unconfirmed_;  // keys prepared this round, Parse not yet answered
  core::CancelRegistration registration_;
};

}  // namespace molt::db::pg
