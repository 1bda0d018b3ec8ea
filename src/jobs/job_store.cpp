#include "molt/jobs/job_store.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <utility>

#include "molt/codec/utf8.hpp"
#include "molt/core/status.hpp"

namespace molt::jobs {
namespace {

using db::Params;
using std::chrono::milliseconds;

std::int64_t to_ms(Clock::time_point at) {
  return std::chrono::duration_cast<milliseconds>(at.time_since_epoch()).count();
}

Clock::time_point from_ms(std::int64_t ms) {
  return Clock::time_point(milliseconds(ms));
}

std::int64_t ms_of(Clock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

bool is_identifier(std::string_view name) {
  if (name.empty() || name.size() > 50) return false;
  if (name[0] >= '0' && name[0] <= '9') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void check_name(std::string_view what, std::string_view name) {
  if (!is_job_name(name))
    throw core::InvalidInput("a job's " + std::string(what) +
                             " is 1 to 200 letters, digits and _ . : - (got \"" +
                             core::one_line(name.substr(0, 60)) + "\")");
}

void check_text(std::string_view what, std::string_view text) {
  if (!codec::is_valid_utf8(text) || text.find('\0') != std::string_view::npos)
    throw core::InvalidInput("a job's " + std::string(what) + " is text: UTF-8 without NUL bytes");
}

// A payload or a result: text, and at most the store's max_payload_bytes.
void check_payload(std::string_view what, std::string_view text, std::size_t max_bytes) {
  check_text(what, text);
  if (text.size() > max_bytes)
    throw core::InvalidInput("a job's " + std::string(what) + " is " + std::to_string(text.size()) +
                             " bytes, more than the store's max_payload_bytes (" +
                             std::to_string(max_bytes) + ")");
}

// Who holds a lease: 128 random bits, so that a runner that lost its lease cannot pass for
// the one that holds it now.
std::mt19937_64& random_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

std::string new_lease_token() {
  std::mt19937_64& random = random_engine();
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return text;
}

double random_unit() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(random_engine());
}

// 64-bit FNV-1a: the same number in every process for the same text (PostgreSQL's advisory
// lock key for a queue).
std::int64_t stable_hash(std::string_view text) {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

// The longest delay a job or retry may have: time arithmetic stays far from overflow.
constexpr auto kLongest = std::chrono::hours(24 * 366);

// The columns a JobInfo reads, in the statements that give one.
constexpr std::string_view kInfoColumns =
    "id, queue, kind, payload, state, attempts, max_attempts, idempotency_key, origin, "
    "last_error, result, cancel_requested, created_at, run_at, started_at, finished_at";

}  // namespace

struct JobStore::Listeners {
  std::mutex mutex;
  std::uint64_t next_id = 1;
  std::vector<std::pair<std::uint64_t, Listener>> list;

  void notify(std::string_view queue) {
    // Under the lock, so that a listener reset() has returned from is never called again.
    const std::lock_guard lock(mutex);
    for (const auto& [id, listener] : list) {
      try {
        listener(queue);
      } catch (...) {
        // The job is stored: a listener that failed to hear of it must not make the enqueue
        // look failed (and be repeated).
      }
    }
  }
};

JobStore::JobStore(std::shared_ptr<db::Database> db, JobStoreOptions options)
    : db_(std::move(db)), options_(std::move(options)), listeners_(std::make_shared<Listeners>()) {
  if (!db_) throw std::invalid_argument("JobStore needs a database");
  if (!is_identifier(options_.table))
    throw std::invalid_argument(
        "JobStoreOptions::table must be 1 to 50 letters, digits and _, not starting with a "
        "digit (got \"" +
        options_.table + "\")");
  if (options_.max_pending == 0)
    throw std::invalid_argument("JobStoreOptions::max_pending must be at least 1");
  if (options_.statement_timeout.count() <= 0)
    throw std::invalid_argument("JobStoreOptions::statement_timeout must be positive");
  options_.retry.validate();
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
}

Clock::time_point JobStore::now() const {
  return options_.clock();
}

db::QueryOptions JobStore::within() const {
  db::QueryOptions o;
  o.deadline = core::Deadline::after(options_.statement_timeout);
  return o;
}

std::string JobStore::sql(std::string_view text) const {
  std::string out;
  out.reserve(text.size() + 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "{t}") == 0) {
      // Quoted, so that a name SQL keeps for itself ("order") is a name here.
      out += '"';
      out += options_.table;
      out += '"';
      i += 2;
    } else if (text.compare(i, 3, "{i}") == 0) {
      // An index, named after the table: {i}_due is "molt_jobs_due".
      const std::size_t end = text.find(' ', i);
      out += '"';
      out += options_.table;
      out += text.substr(i + 3, end - (i + 3));
      out += '"';
      i = end - 1;
    } else {
      out += text[i];
    }
  }
  return out;
}

void JobStore::install() {
  const bool postgres = db_->backend() == db::Backend::Postgres;
  db::Transaction tx = db_->begin(within());
  // Two processes creating the table at once would collide in PostgreSQL's catalog.
  if (postgres)
    tx.query("SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(:key)) AS held",
             Params::named({{"key", stable_hash("molt.jobs.install")}}));
  const std::string id_column = postgres ? "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                                         : "id INTEGER PRIMARY KEY AUTOINCREMENT";
  tx.execute(
      sql("CREATE TABLE IF NOT EXISTS {t} (" + id_column +
          ", queue TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,"
          " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
          " max_attempts INTEGER NOT NULL, idempotency_key TEXT, origin TEXT, last_error TEXT,"
          " result TEXT,"
          " cancel_requested INTEGER NOT NULL DEFAULT 0, lease_token TEXT,"
          " lease_until BIGINT, created_at BIGINT NOT NULL, run_at BIGINT NOT NULL,"
          " started_at BIGINT, finished_at BIGINT, UNIQUE (queue, idempotency_key))"));
  // claim(): the queue's due jobs in order. Leases: the running jobs by expiry. Purges: the
  // finished ones by age.
  tx.execute(sql("CREATE INDEX IF NOT EXISTS {i}_due ON {t} (queue, state, run_at, id)"));
  tx.execute(
      sql("CREATE INDEX IF NOT EXISTS {i}_leases ON {t} (lease_until) WHERE state = 'running'"));
  tx.execute(
      sql("CREATE INDEX IF NOT EXISTS {i}_finished ON {t} (finished_at)"
          " WHERE finished_at IS NOT NULL"));
  tx.commit();
}

Enqueued JobStore::enqueue(const NewJob& job) {
  db::Transaction tx = db_->begin(within());
  const Enqueued made = insert(tx, job);
  tx.commit();
  if (made.created) notify(job.queue);
  return made;
}

Enqueued JobStore::enqueue(db::Transaction& transaction, const NewJob& job) {
  return insert(transaction, job);
}

Enqueued JobStore::insert(db::Transaction& tx, const NewJob& job) {
  check_name("kind", job.kind);
  check_name("queue", job.queue);
  check_payload("payload", job.payload, options_.max_payload_bytes);
  if (job.idempotency_key) {
    if (job.idempotency_key->empty() || job.idempotency_key->size() > 200)
      throw core::InvalidInput("a job's idempotency key is 1 to 200 bytes");
    check_text("idempotency key", *job.idempotency_key);
  }
  if (job.origin) {
    if (job.origin->size() > 1000)
      throw core::InvalidInput("a job's origin is at most 1,000 bytes");
    check_text("origin", *job.origin);
  }
  if (job.delay < Clock::duration(0) || job.delay > kLongest)
    throw core::InvalidInput("a job's delay is 0 to 366 days");
  const int max_attempts = job.max_attempts.value_or(options_.retry.max_attempts);
  if (max_attempts < 1 || max_attempts > 1000)
    throw core::InvalidInput("a job's max_attempts is 1 to 1000");

  const std::int64_t now_ms = to_ms(now());
  // SQLite's write transaction already holds every other writer off; PostgreSQL's needs a
  // lock of the queue's own, or two enqueues could both see room for one.
  if (db_->backend() == db::Backend::Postgres)
    tx.query("SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(:key)) AS held",
             Params::named({{"key", stable_hash(options_.table + '\0' + job.queue)}}));
  if (job.idempotency_key) {
    const db::Rows found =
        tx.query(sql("SELECT id, kind FROM {t} WHERE queue = :queue AND idempotency_key = :key"),
                 Params::named({{"queue", job.queue}, {"key", *job.idempotency_key}}));
    if (!found.empty()) {
      // The same key for other work is a client's mistake, not a repeat.
      if (found.get<std::string>(0, "kind") != job.kind)
        throw core::InvalidInput("the idempotency key names job " +
                                 std::to_string(found.get<std::int64_t>(0, "id")) +
                                 ", of another kind (" + found.get<std::string>(0, "kind") + ")");
      return {found.get<std::int64_t>(0, "id"), false};
    }
  }
  const auto pending = tx.query(sql("SELECT count(*) AS n FROM {t}"
                                    " WHERE queue = :queue AND state IN ('queued', 'running')"),
                                Params::named({{"queue", job.queue}}))
                           .get<std::int64_t>(0, "n");
  if (static_cast<std::uint64_t>(pending) >= options_.max_pending)
    throw QueueFull("the job queue \"" + job.queue + "\" is full: " + std::to_string(pending) +
                    " jobs wait or run (max_pending " + std::to_string(options_.max_pending) + ")");
  const db::ExecResult made = tx.execute(
      sql("INSERT INTO {t} (queue, kind, payload, state, max_attempts, idempotency_key, origin,"
          " created_at, run_at)"
          " VALUES (:queue, :kind, :payload, 'queued', :max_attempts, :key, :origin, :now,"
          " :run_at) RETURNING id"),
      Params::named({{"queue", job.queue},
                     {"kind", job.kind},
                     {"payload", job.payload},
                     {"max_attempts", std::int64_t{max_attempts}},
                     {"key", job.idempotency_key},
                     {"origin", job.origin},
                     {"now", now_ms},
                     {"run_at", now_ms + ms_of(job.delay)}}));
  // PostgreSQL: every listening runner hears of it once the transaction commits.
  if (db_->backend() == db::Backend::Postgres)
    tx.execute("SELECT pg_notify(:channel, :queue)",
               Params::named({{"channel", options_.table}, {"queue", job.queue}}));
  return {made.returned.get<std::int64_t>(0, "id"), true};
}

void JobStore::notify(std::string_view queue) {
  listeners_->notify(queue);
}

void JobStore::expire_leases(std::int64_t now_ms) {
  // A run whose lease ran out counted as an attempt when it was claimed; with none left the
  // job has failed, and a job cancel() had asked to stop is cancelled.
  db_->execute(sql("UPDATE {t} SET"
                   " state = CASE WHEN cancel_requested = 1 THEN 'cancelled'"
                   " WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,"
                   " finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts"
                   " THEN :now ELSE NULL END,"
                   " last_error = CASE WHEN cancel_requested = 1 THEN last_error"
                   " ELSE 'the lease of its run ran out (the runner stopped or could not reach"
                   " the database)' END,"
                   " run_at = :now, lease_token = NULL, lease_until = NULL"
                   " WHERE state = 'running' AND lease_until < :now"),
               Params::named({{"now", now_ms}}), within());
}

std::optional<ClaimedJob> JobStore::claim(std::string_view queue, milliseconds lease) {
  if (lease.count() <= 0) throw std::invalid_argument("a lease must be positive");
  const std::int64_t now_ms = to_ms(now());
  std::int64_t scanned = last_expiry_scan_ms_.load(std::memory_order_relaxed);
  if (now_ms - scanned >= options_.expiry_scan.count() &&
      last_expiry_scan_ms_.compare_exchange_strong(scanned, now_ms))
    expire_leases(now_ms);

  // PostgreSQL: runners claiming at once each take another row instead of queueing on the
  // first one's lock.
  const std::string_view skip_locked =
      db_->backend() == db::Backend::Postgres ? " FOR UPDATE SKIP LOCKED" : "";
  std::string token = new_lease_token();
  const db::ExecResult taken = db_->execute(
      sql("UPDATE {t} SET state = 'running', attempts = attempts + 1, lease_token = :token,"
          " lease_until = :until, started_at = :now"
          " WHERE id = (SELECT id FROM {t} WHERE queue = :queue AND state = 'queued'"
          " AND run_at <= :now ORDER BY run_at, id LIMIT 1" +
          std::string(skip_locked) +
          ") AND state = 'queued'"
          " RETURNING id, kind, payload, attempts, max_attempts"),
      Params::named(
          {{"token", token}, {"until", now_ms + lease.count()}, {"queue", queue}, {"now", now_ms}}),
      within());
  if (taken.returned.empty()) return std::nullopt;
  const db::Rows& row = taken.returned;
  ClaimedJob job;
  job.id = row.get<std::int64_t>(0, "id");
  job.queue = std::string(queue);
  job.kind = row.get<std::string>(0, "kind");
  job.payload = row.get<std::string>(0, "payload");
  job.attempt = row.get<int>(0, "attempts");
  job.max_attempts = row.get<int>(0, "max_attempts");
  job.lease_token = std::move(token);
  return job;
}

LeaseState JobStore::heartbeat(const ClaimedJob& job, milliseconds lease) {
  if (lease.count() <= 0) throw std::invalid_argument("a lease must be positive");
  const db::ExecResult held = db_->execute(
      sql("UPDATE {t} SET lease_until = :until"
          " WHERE id = :id AND lease_token = :token AND state = 'running'"
          " RETURNING cancel_requested"),
      Params::named(
          {{"until", to_ms(now()) + lease.count()}, {"id", job.id}, {"token", job.lease_token}}),
      within());
  if (held.returned.empty()) return LeaseState::Lost;
  return held.returned.get<bool>(0, "cancel_requested") ? LeaseState::CancelRequested
                                                        : LeaseState::Held;
}

bool JobStore::complete(const ClaimedJob& job, std::string_view result) {
  check_payload("result", result, options_.max_payload_bytes);
  const db::Param kept = result.empty() ? db::Param::null(db::ValueType::Text) : db::Param(result);
  return db_->execute(sql("UPDATE {t} SET state = 'succeeded', finished_at = :now,"
                          " result = :result, lease_token = NULL, lease_until = NULL"
                          " WHERE id = :id AND lease_token = :token AND state = 'running'"),
                      Params::named({{"now", to_ms(now())},
                                     {"result", kept},
                                     {"id", job.id},
                                     {"token", job.lease_token}}),
                      within())
             .rows_affected == 1;
}

FailOutcome JobStore::fail(const ClaimedJob& job, std::string_view error, bool retry) {
  const std::int64_t now_ms = to_ms(now());
  const std::int64_t retry_at =
      now_ms + options_.retry.delay_after(job.attempt, random_unit()).count();
  // The message as text the table can hold, and not without end (cut between characters).
  std::string message;
  if (codec::is_valid_utf8(error)) {
    message = error.substr(0, codec::utf8_cut(error, 2000));
    std::erase(message, '\0');
  } else {
    message = "(a message that was not UTF-8)";
  }
  const db::ExecResult ended = db_->execute(
      sql("UPDATE {t} SET"
          " state = CASE WHEN cancel_requested = 1 THEN 'cancelled'"
          " WHEN attempts >= max_attempts OR :final = 1 THEN 'failed' ELSE 'queued' END,"
          " finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts"
          " OR :final = 1"
          " THEN :now ELSE NULL END,"
          " run_at = :retry_at, last_error = :error, lease_token = NULL, lease_until = NULL"
          " WHERE id = :id AND lease_token = :token AND state = 'running'"
          " RETURNING state"),
      Params::named({{"now", now_ms},
                     {"retry_at", retry_at},
                     {"error", message},
                     {"final", std::int64_t{retry ? 0 : 1}},
                     {"id", job.id},
                     {"token", job.lease_token}}),
      within());
  if (ended.returned.empty()) return FailOutcome::LeaseLost;
  const std::string state = ended.returned.get<std::string>(0, "state");
  if (state == "failed") return FailOutcome::Failed;
  if (state == "cancelled") return FailOutcome::Cancelled;
  return FailOutcome::Retrying;
}

bool JobStore::finish_cancelled(const ClaimedJob& job) {
  return db_->execute(
                sql("UPDATE {t} SET state = 'cancelled', finished_at = :now,"
                    " lease_token = NULL, lease_until = NULL"
                    " WHERE id = :id AND lease_token = :token AND state = 'running'"),
                Params::named({{"now", to_ms(now())}, {"id", job.id}, {"token", job.lease_token}}),
                within())
             .rows_affected == 1;
}

bool JobStore::release(const ClaimedJob& job) {
  const std::int64_t now_ms = to_ms(now());
  return db_->execute(
                sql("UPDATE {t} SET"
                    " state = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,"
                    " finished_at = CASE WHEN cancel_requested = 1 THEN :now ELSE NULL END,"
                    " attempts = attempts - 1, run_at = :now, lease_token = NULL,"
                    " lease_until = NULL"
                    " WHERE id = :id AND lease_token = :token AND state = 'running'"),
                Params::named({{"now", now_ms}, {"id", job.id}, {"token", job.lease_token}}),
                within())
             .rows_affected == 1;
}

bool JobStore::cancel(std::int64_t id) {
  // Every SET expression reads the row as it was, so the CASEs see the old state.
  return db_->execute(sql("UPDATE {t} SET"
                          " state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,"
                          " finished_at = CASE WHEN state = 'queued' THEN :now"
                          " ELSE finished_at END,"
                          " cancel_requested = 1"
                          " WHERE id = :id AND state IN ('queued', 'running')"),
                      Params::named({{"now", to_ms(now())}, {"id", id}}), within())
             .rows_affected == 1;
}

JobInfo JobStore::read_info(const db::Rows& rows) const {
  JobInfo info;
  info.id = rows.get<std::int64_t>(0, "id");
  info.queue = rows.get<std::string>(0, "queue");
  info.kind = rows.get<std::string>(0, "kind");
  info.payload = rows.get<std::string>(0, "payload");
  const std::string state = rows.get<std::string>(0, "state");
  const auto parsed = parse_job_state(state);
  if (!parsed)
    throw core::Error(core::StatusCode::InternalError,
                      "job " + std::to_string(info.id) + " has an unknown state \"" +
                          core::one_line(state) + "\" in table " + options_.table);
  info.state = *parsed;
  info.attempts = rows.get<int>(0, "attempts");
  info.max_attempts = rows.get<int>(0, "max_attempts");
  info.idempotency_key = rows.get<std::optional<std::string>>(0, "idempotency_key");
  info.origin = rows.get<std::optional<std::string>>(0, "origin");
  info.last_error = rows.get<std::optional<std::string>>(0, "last_error");
  info.result = rows.get<std::optional<std::string>>(0, "result");
  info.cancel_requested = rows.get<bool>(0, "cancel_requested");
  info.created_at = from_ms(rows.get<std::int64_t>(0, "created_at"));
  info.run_at = from_ms(rows.get<std::int64_t>(0, "run_at"));
  if (const auto started = rows.get<std::optional<std::int64_t>>(0, "started_at"))
    info.started_at = from_ms(*started);
  if (const auto finished = rows.get<std::optional<std::int64_t>>(0, "finished_at"))
    info.finished_at = from_ms(*finished);
  return info;
}

std::optional<JobInfo> JobStore::find(std::int64_t id) {
  const db::Rows rows =
      db_->query(sql("SELECT " + std::string(kInfoColumns) + " FROM {t} WHERE id = :id"),
                 Params::named({{"id", id}}), within());
  if (rows.empty()) return std::nullopt;
  return read_info(rows);
}

std::optional<Clock::time_point> JobStore::next_due(std::string_view queue) {
  // A queued job's start, or a running one's lease running out (its runner may be gone).
  const db::Rows rows =
      db_->query(sql("SELECT min(due) AS due FROM ("
                     "SELECT min(run_at) AS due FROM {t} WHERE queue = :queue AND state = 'queued'"
                     " UNION ALL "
                     "SELECT min(lease_until) FROM {t} WHERE queue = :queue AND state = 'running'"
                     ") AS due_times"),
                 Params::named({{"queue", queue}}), within());
  const auto due = rows.get<std::optional<std::int64_t>>(0, "due");
  if (!due) return std::nullopt;
  return from_ms(*due);
}

QueueCounts JobStore::counts(std::string_view queue) {
  check_name("queue", queue);
  const db::Rows rows =
      db_->query(sql("SELECT state, count(*) AS n FROM {t} WHERE queue = :queue GROUP BY state"),
                 Params::named({{"queue", queue}}), within());
  QueueCounts counts;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto n = rows.get<std::int64_t>(i, "n");
    switch (parse_job_state(rows.get<std::string>(i, "state")).value_or(JobState::Queued)) {
      case JobState::Queued:
        counts.queued += n;
        break;
      case JobState::Running:
        counts.running += n;
        break;
      case JobState::Succeeded:
        counts.succeeded += n;
        break;
      case JobState::Failed:
        counts.failed += n;
        break;
      case JobState::Cancelled:
        counts.cancelled += n;
        break;
    }
  }
  return counts;
}

std::int64_t JobStore::purge_finished(Clock::time_point before) {
  return db_
      ->execute(sql("DELETE FROM {t} WHERE finished_at IS NOT NULL AND finished_at < :before"),
                Params::named({{"before", to_ms(before)}}), within())
      .rows_affected;
}

JobStore::Subscription JobStore::subscribe(Listener listener) {
  const std::lock_guard lock(listeners_->mutex);
  const std::uint64_t id = listeners_->next_id++;
  listeners_->list.emplace_back(id, std::move(listener));
  return Subscription(listeners_, id);
}

JobStore::Subscription::Subscription(Subscription&& other) noexcept
    : listeners_(std::move(other.listeners_)), id_(std::exchange(other.id_, 0)) {}

JobStore::Subscription& JobStore::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    listeners_ = std::move(other.listeners_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

JobStore::Subscription::~Subscription() {
  reset();
}

void JobStore::Subscription::reset() {
  if (const auto listeners = listeners_.lock(); listeners && id_ != 0) {
    const std::lock_guard lock(listeners->mutex);
    std::erase_if(listeners->list, [this](const auto& entry) { return entry.first == id_; });
  }
  listeners_.reset();
  id_ = 0;
}

}  // namespace molt::jobs
