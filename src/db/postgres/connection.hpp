#pragma once
// One pool slot of the PostgreSQL backend: a libpq connection that may be closed (never
// opened, lost, or discarded after a failed clean-up) and is opened again on next use, with
// the prepared statements of its current session and the waiter its calls block in.
// Internal to molt::db.

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"
#include "molt/core/status.hpp"
#include "molt/db/postgres.hpp"
#include "socket_wait.hpp"
#include "statement_cache.hpp"

namespace molt::db::pg {

[[noreturn]] inline void fail(core::StatusCode code, std::string message) {
  throw core::Error(code, std::move(message));
}

// libpq's messages end with a newline; ours do not.
std::string trimmed(const char* text);
// `text` with what it quotes ("...") left out: libpq's complaints about a connection string
// quote the piece they could not read, which may be the password or the whole URI.
std::string without_quoted_parts(std::string_view text);

class Connection {
 public:
  explicit Connection(const PostgresOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* handle() const noexcept { return conn_; }
  bool is_open() const noexcept { return conn_ != nullptr; }
  // The session's prepared statements; emptied whenever the session ends.
  StatementCache& statements() noexcept { return statements_; }

  void close() noexcept;

  // A statement may have changed the session beyond what the server reports (a DO block, a
  // CALL, set_config): the session is ended before it could serve another call. Or a reported
  // setting this library relies on is no longer its own (a set_config() of it).
  void mark_session_changed() noexcept { session_changed_ = true; }
  void close_if_session_changed() noexcept;

  // Forgets an earlier wake-up, so that only this call's cancel token can end its waits.
  void clear_wake() noexcept { waiter_.clear_wake(); }
  // Ends the call's current or next interruptible wait (kWoken); any thread. Callers make
  // sure no wake() of an earlier call is still running when the next call clears (a call's
  // cancel registration is reset, waiting for its callback, as it ends).
  void wake() noexcept { waiter_.wake(); }
  // Waits for the open connection's socket (SocketWaiter::Events), a wake-up when
  // `interruptible`, or `until`.
  WaitResult wait(unsigned events, core::Clock::time_point until, bool interruptible = true) {
    return waiter_.wait(PQsocket(conn_), events, until, interruptible);
  }

  // Makes sure the connection is usable, opening it when closed or found dead: the server
  // may have restarted since the last call, which an idle connection only learns by reading
  // the termination message and end of stream waiting on its socket. True when it opened a
  // new session now, false when the one it had serves on.
  bool ensure_open(core::Deadline deadline, const core::CancelToken& cancel);

  // Runs `sql` (one or more statements, the simple protocol) on the open connection within
  // `deadline`, handing each result to `on_result`; a failure closes the connection and is
  // thrown. For sessions set up by this library (its settings, a listener's LISTEN).
  void run_simple(const std::string& sql, core::Deadline deadline, const core::CancelToken& cancel,
                  const std::function<void(const PGresult*)>& on_result = {});

  // The session's statement_timeout when it started (role, database, server or connection
  // string settings); zero for none. A call cannot change it after (SET is refused).
  std::chrono::milliseconds statement_timeout() const noexcept { return statement_timeout_; }

 private:
  void connect(core::Deadline deadline, const core::CancelToken& cancel);
  void apply_session_settings(core::Deadline deadline, const core::CancelToken& cancel);

  const PostgresOptions& options_;
  PGconn* conn_ = nullptr;
  SocketWaiter waiter_;
  StatementCache statements_;
  std::chrono::milliseconds statement_timeout_{0};
  bool session_changed_ = false;
};

}  // namespace molt::db::pg
