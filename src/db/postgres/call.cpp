#include "call.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <system_error>
#include <thread>

namespace molt::db::pg {
namespace {

using core::Clock;
using core::StatusCode;
using namespace std::chrono_literals;

// How long a stopped call may spend bringing its connection back to a clean state.
constexpr auto kDrainTime = 1s;

bool is_copy(ExecStatusType status) {
  return status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH;
}

std::string error_field(const PGresult* result, int field) {
  const char* text = PQresultErrorField(result, field);
  return text ? text : "";
}

// The status of a server error, chosen by its SQLSTATE.
[[noreturn]] void fail_result(const PGresult* result) {
  const std::string code = error_field(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const std::string message = primary ? primary : trimmed(PQresultErrorMessage(result));
  const std::string klass = code.substr(0, 2);
  if (code == "40001" || code == "40P01" || code == "55P03" || code == "53300")
    fail(StatusCode::Busy, "database busy: " + message);
  if (code == "57014")
    fail(
        StatusCode::Timeout,
        "the server cancelled the statement (statement_timeout, or pg_cancel_backend): " + message);
  // What the server or its machine went through (a connection, resources, an operator, the
  // system, a configuration file, an internal error) is no fault of the SQL; everything else
  // is what the SQL asked: syntax, constraints (44: WITH CHECK OPTION), a missing schema,
  // program limits, the caller's own RAISE, with whatever code it chose. 08P01 here is the
  // server refusing our bind message: the values do not match the SQL.
  // No SQLSTATE at all: libpq's own error (a bad response, out of memory).
  const bool servers = code.empty() || klass == "08" || klass == "53" || klass == "57" ||
                       klass == "58" || klass == "72" || klass == "XX" || klass == "F0" ||
                       code == "40003";
  if (!servers || code == "08P01") throw core::SqlError("SQL error: " + message);
  fail(StatusCode::InternalError, "PostgreSQL error " + code + ": " + message);
}

// The parameter arrays libpq takes, for one step.
struct ParamArrays {
  std::vector<::Oid> types;  // libpq's Oid, not pg::Oid (the enum of known types)
  std::vector<const char*> values;
  std::vector<int> lengths, formats;

  explicit ParamArrays(const std::vector<EncodedParam>* params) {
    if (!params) return;
    for (const auto& p : *params) {
      types.push_back(p.oid);
      values.push_back(p.text ? p.text->data() : nullptr);
      lengths.push_back(p.text ? static_cast<int>(p.text->size()) : 0);
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  int count() const { return static_cast<int>(types.size()); }
};

// Cancel requests whose thread is still waiting for the server; past the bound no more start
// (their calls close the connection instead), so a server that stopped answering cannot
// collect threads without limit.
std::atomic<int> cancels_in_flight{0};
constexpr int kMaxCancelsInFlight = 16;

// Asks the server to cancel what `conn` runs, waiting until `until` at most for the request
// to be delivered; true when it was. PQcancel opens a connection of its own and waits for
// the server to close it, with no bound (libpq 15 has no PQcancelStart): a server that
// accepts connections but does not answer (stopped, overloaded) would hold the call past its
// deadline. So it runs on a thread of its own, which finishes alone if it outlives the wait.
bool send_cancel_request(PGconn* conn, Clock::time_point until) {
  PGcancel* request = PQgetCancel(conn);  // a copy of the address and key: outlives `conn`
  if (!request) return false;
  if (cancels_in_flight.fetch_add(1) >= kMaxCancelsInFlight) {
    cancels_in_flight.fetch_sub(1);
    PQfreeCancel(request);
    return false;
  }
  std::promise<bool> delivered;
  std::future<bool> answer = delivered.get_future();
  try {
    std::thread([request, delivered = std::move(delivered)]() mutable {
      char why[256];
      const bool sent = PQcancel(request, why, sizeof why) != 0;
      PQfreeCancel(request);
      cancels_in_flight.fetch_sub(1);
      delivered.set_value(sent);
    }).detach();
  } catch (const std::system_error&) {  // no thread to be had: the call closes its connection
    cancels_in_flight.fetch_sub(1);
    PQfreeCancel(request);
    return false;
  }
  return answer.wait_until(until) == std::future_status::ready && answer.get();
}

}  // namespace

Call::Call(Connection& connection, core::Deadline deadline, const core::CancelToken& cancel,
           bool in_transaction)
    : c_(connection),
      deadline_(deadline),
      cancel_(cancel),
      in_transaction_(in_transaction),
      started_(Clock::now()) {
  c_.clear_wake();
  registration_ = cancel.on_cancel([&c = c_] { c.wake(); });
}

Call::~Call() {
  registration_.reset();  // waits for a running callback
}

void Call::check() const {
  cancel_.throw_if_cancelled();
  if (deadline_.expired()) fail(StatusCode::Timeout, "query deadline exceeded");
}

std::vector<ResultPtr> Call::run(std::span<const Step> steps) {
  PGconn* conn = c_.handle();
  callers_statements_ = static_cast<std::size_t>(
      std::count_if(steps.begin(), steps.end(), [](const Step& s) { return s.params != nullptr; }));
  failed_step_ = commit_step_ = static_cast<std::size_t>(-1);
  if (!PQenterPipelineMode(conn)) lost();
  std::vector<Expected> expected;
  send(steps, expected);
  flush();

  std::vector<ResultPtr> results;
  results.reserve(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) results.push_back(no_result());
  try {
    receive(steps, expected, results);
  } catch (const ConnectionLost&) {
    // The server confirmed the COMMIT, and what came before it, and then the session ended
    // (pg_terminate_backend, a restart): the writes stand, and the call is done. Reported
    // lost, a caller would write them again. The connection is closed; the pool reopens it.
    if (!committed_ || commit_step_ + 1 != steps.size()) throw;
  }
  return results;
}

void Call::receive(std::span<const Step> steps, const std::vector<Expected>& expected,
                   std::vector<ResultPtr>& results) {
  PGconn* conn = c_.handle();
  StatementCache& cache = c_.statements();
  ResultPtr error = no_result();
  for (const Expected& e : expected) {
    if (e.kind == Expect::kSync) {
      ResultPtr sync = next_result();
      if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) lost();
      continue;
    }
    RowSink* sink = e.kind == Expect::kStep ? steps[e.step].rows : nullptr;
    // In a pipeline, single-row mode is chosen per statement, before its first result.
    if (sink) PQsetSingleRowMode(conn);
    bool parsed = false;
    for (ResultPtr r = next_result(); r; r = next_result()) {
      const auto status = PQresultStatus(r.get());
      if (is_copy(status)) {
        c_.close();  // leaving COPY mode cleanly is not worth it for a statement we refuse
        fail(StatusCode::InvalidInput, "COPY is not supported through molt::db");
      }
      const bool failed = status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE;
      if (e.kind == Expect::kPrepare) parsed = status == PGRES_COMMAND_OK;
      if (note_commit(r.get()) && e.kind == Expect::kStep && !error) commit_step_ = e.step;
      if (e.kind == Expect::kIgnore) continue;
      // The session ended after the COMMIT (FATAL, then the connection closes): lost, not a
      // statement's error. The round is not read further.
      if (failed && committed_ && commit_step_ + 1 == steps.size()) lost();
      if (failed && !error) {  // the first error is the cause; later steps were skipped
        error = std::move(r);
        failed_step_ = e.step;
      } else if (sink && !error && (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK)) {
        try {
          sink->add(r.get());
        } catch (...) {  // past a limit, or out of memory: the rest is not wanted either way
          failed_step_ = e.step;
          cut_short();  // a connection it could not bring back is closed: usable() says so
          throw;
        }
        // The end of the rows (no rows itself) carries the command tag: kept for the caller.
        if (status == PGRES_TUPLES_OK && e.kind == Expect::kStep) results[e.step] = std::move(r);
      } else if (e.kind == Expect::kStep && !failed && status != PGRES_PIPELINE_ABORTED) {
        results[e.step] = std::move(r);
      }
    }
    if (e.kind == Expect::kPrepare) {
      // Answered either way now; a statement the server did not create leaves the cache.
      std::erase(unconfirmed_, keys_[e.step]);
      if (!parsed) cache.forget(keys_[e.step], false);
    }
  }
  if (!PQexitPipelineMode(conn) || PQstatus(conn) == CONNECTION_BAD) lost();
  if (error) fail_step(error.get());
}

void Call::send(std::span<const Step> steps, std::vector<Expected>& expected) {
  PGconn* conn = c_.handle();
  StatementCache& cache = c_.statements();
  cache.begin_round();
  keys_.assign(steps.size(), {});
  reused_.assign(steps.size(), false);
  unconfirmed_.clear();
  std::vector<std::uint32_t> oids;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].prepared || cache.capacity() == 0) continue;
    oids.clear();
    if (steps[i].params)
      for (const auto& p : *steps[i].params) oids.push_back(p.oid);
    keys_[i] = StatementCache::key_of(steps[i].sql, oids);
    cache.use(keys_[i]);
  }
  cache.trim();
  // Statements the cache let go, each in a Sync group (an implicit transaction) of its own so
  // that one the server no longer has fails alone. Only outside explicit transactions, which
  // such a failure would abort: inside one they wait for a later call. The names are ours
  // (molt_<n>), never caller text.
  const bool can_deallocate = PQtransactionStatus(conn) == PQTRANS_IDLE;
  for (const std::string& name :
       can_deallocate ? cache.take_evicted() : std::vector<std::string>{}) {
    const std::string sql = "DEALLOCATE " + name;
    if (!PQsendQueryParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) ||
        !PQpipelineSync(conn))
      lost();
    expected.push_back({Expect::kIgnore});
    expected.push_back({Expect::kSync});
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const ParamArrays p(step.params);
    StatementCache::Entry* entry = keys_[i].empty() ? nullptr : cache.find(keys_[i]);
    if (entry && !entry->prepared) {
      if (!PQsendPrepare(conn, entry->name.c_str(), step.sql.data(), p.count(), p.types.data()))
        lost();
      entry->prepared = true;  // a second step with the same key in this round runs it too
      unconfirmed_.push_back(keys_[i]);
      expected.push_back({Expect::kPrepare, i});
    } else if (entry) {
      reused_[i] = true;
    }
    const int sent =
        entry ? PQsendQueryPrepared(conn, entry->name.c_str(), p.count(), p.values.data(),
                                    p.lengths.data(), p.formats.data(), 0)
              : PQsendQueryParams(conn, step.sql.data(), p.count(), p.types.data(), p.values.data(),
                                  p.lengths.data(), p.formats.data(), 0);
    if (!sent) lost();
    expected.push_back({Expect::kStep, i});
  }
  if (!PQpipelineSync(conn)) lost();
  expected.push_back({Expect::kSync});
}

void Call::flush() {
  PGconn* conn = c_.handle();
  for (;;) {
    const int flushed = PQflush(conn);
    if (flushed < 0) lost();
    if (flushed == 0) return;
    wait(SocketWaiter::kRead | SocketWaiter::kWrite);
    if (!PQconsumeInput(conn)) lost();
  }
}

ResultPtr Call::next_result() {
  PGconn* conn = c_.handle();
  while (PQisBusy(conn)) {
    wait(SocketWaiter::kRead);
    if (!PQconsumeInput(conn)) lost();
  }
  ResultPtr result(PQgetResult(conn), &PQclear);
  heard_from_server_ |= result != nullptr;
  return result;
}

void Call::wait(unsigned events) {
  if (c_.wait(events, deadline_.at()) != WaitResult::kReady) stop();
}

void Call::fail_step(const PGresult* error) {
  const std::string code = error_field(error, PG_DIAG_SQLSTATE);
  const std::string message = error_field(error, PG_DIAG_MESSAGE_PRIMARY);
  const bool reused = failed_step_ < reused_.size() && reused_[failed_step_];
  if (reused && code == "26000") {
    // Someone dropped the session's statements (DEALLOCATE ALL, DISCARD ALL): start afresh.
    c_.statements().forget_all();
    throw StalePlan("prepared statement lost: " + message);
  }
  if (reused && code == "0A000" && message.starts_with("cached plan must not change")) {
    c_.statements().forget(keys_[failed_step_], true);
    throw StalePlan("prepared statement outdated: " + message);
  }
  // A statement the server cancelled (this call's own cancels are read by cut_short, never
  // here): its statement_timeout, or an administrator's pg_cancel_backend. For a lone
  // statement outside a transaction the session's statement_timeout is the one read when it
  // began (a transaction's or a batch's earlier statement may have set another: SET LOCAL),
  // so a call ended before that long is the administrator's.
  if (code == "57014" && !in_transaction_ && callers_statements_ == 1) {
    const auto limit = c_.statement_timeout();
    if (limit == limit.zero() || Clock::now() - started_ < limit)
      fail(StatusCode::InternalError,
           "the statement was cancelled on the server, not by its deadline (pg_cancel_backend?): " +
               message);
  }
  fail_result(error);
}

// A COMMIT of this call's round succeeded: a call stopped after it says so.
bool Call::note_commit(PGresult* result) noexcept {
  if (PQresultStatus(result) != PGRES_COMMAND_OK || std::strcmp(PQcmdStatus(result), "COMMIT") != 0)
    return false;
  committed_ = true;
  return true;
}

// The deadline passed or the token fired: cut the round short and throw the matching
// status. The connection stays open only when it is known to be idle again (or, inside a
// transaction, back to waiting for the next statement).
void Call::stop() {
  stopped_ = true;
  cut_short();
  // Stopped too late to undo: the COMMIT sent in the round had succeeded. Said, so that a
  // caller does not write again what was written.
  const std::string_view outcome =
      committed_ ? "; the statement had been committed before it could be stopped" : "";
  try {
    cancel_.throw_if_cancelled();
  } catch (const core::Error& e) {
    fail(e.code(), e.what() + std::string(outcome));
  }
  fail(StatusCode::Timeout, "query deadline exceeded" + std::string(outcome));
}

// Ends the round early: the server is asked to cancel what still runs, and what it still
// sends is read and dropped. True when the connection is clean again; it is closed if not.
bool Call::cut_short() {
  PGconn* conn = c_.handle();
  // Whether the server created them is unknown now: forget them, and deallocate next time.
  for (const std::string& key : std::exchange(unconfirmed_, {})) c_.statements().forget(key, true);
  const auto until = Clock::now() + kDrainTime;
  // A cancel request still on its way could stop the connection's next statement instead:
  // without word that it arrived, the connection is not reused.
  bool clean = send_cancel_request(conn, until) && drain(until);
  if (clean && !in_transaction_ && PQtransactionStatus(conn) != PQTRANS_IDLE)
    clean =
        PQsendQuery(conn, "ROLLBACK") && drain(until) && PQtransactionStatus(conn) == PQTRANS_IDLE;
  if (!clean) c_.close();
  return clean;
}

// Reads and drops every pending result until the connection is idle and out of pipeline
// mode; false when it did not get there by `until` or the connection broke.
bool Call::drain(Clock::time_point until) {
  PGconn* conn = c_.handle();
  for (;;) {
    const int flushed = PQflush(conn);
    if (flushed < 0) return false;
    if (flushed == 0) break;
    if (c_.wait(SocketWaiter::kRead | SocketWaiter::kWrite, until, /*interruptible=*/false) !=
            WaitResult::kReady ||
        !PQconsumeInput(conn))
      return false;
  }
  for (;;) {
    while (PQisBusy(conn)) {
      if (c_.wait(SocketWaiter::kRead, until, /*interruptible=*/false) != WaitResult::kReady ||
          !PQconsumeInput(conn))
        return false;
    }
    if (PQstatus(conn) != CONNECTION_OK) return false;
    if (PGresult* result = PQgetResult(conn)) {
      const auto status = PQresultStatus(result);
      note_commit(result);
      PQclear(result);
      if (is_copy(status)) return false;
      continue;
    }
    // Between two pipelined statements PQgetResult also answers nullptr; leaving pipeline
    // mode succeeds only once nothing is pending any more.
    if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF || PQexitPipelineMode(conn)) break;
    if (Clock::now() >= until) return false;
  }
  return PQstatus(conn) == CONNECTION_OK;
}

void Call::lost() {
  const std::string why = trimmed(PQerrorMessage(c_.handle()));
  c_.close();
  throw ConnectionLost("database connection lost: " + why, !heard_from_server_);
}

}  // namespace molt::db::pg
