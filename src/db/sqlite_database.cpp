#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connection_pool.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/db/sqlite.hpp"
#include "result_budget.hpp"

namespace molt::db {
namespace {

using core::Clock;
using core::StatusCode;

[[noreturn]] void fail(StatusCode code, std::string message) {
  throw core::Error(code, std::move(message));
}

// A write to a database opened without read_write (molt-worker: MOLT_DB_SQLITE_READWRITE=1).
constexpr const char* kOpenedReadOnly =
    "the database was opened read-only: open it with SqliteOptions::read_write to write "
    "(molt-worker: MOLT_DB_SQLITE_READWRITE=1)";

// What the call asked for cannot be done: its SQL, its values or its result (past max_rows,
// max_bytes). A SqlError: the caller's doing when a client wrote the SQL (the worker's
// db_query answers InvalidInput), the server's when a handler did (molt::web answers 500).
[[noreturn]] void fail_call(std::string message) {
  throw core::SqlError(std::move(message));
}

// Hash/equality that let the statement cache be searched with a string_view.
struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class CallGuard;

// Who wrote a statement: the caller (checked by the authorizer), or this file (BEGIN, COMMIT).
enum class Origin { Caller, Own };

constexpr const char* kTempRefused =
    "TEMP tables, views, indexes and triggers are not accepted: they would stay on the "
    "connection, which later calls share (a later INSERT would go to a TEMP table of the same "
    "name, a TEMP trigger would act on their writes)";

// Whether an authorizer action makes or drops something in the TEMP schema.
bool in_temp_schema(int action, const char* database) {
  switch (action) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE:
      return database != nullptr && sqlite3_stricmp(database, "temp") == 0;
    default:
      return false;
  }
}

// What a caller's statement may not do: change the connection it shares with later calls
// (transactions that outlive the call, pragmas that set something, attached files), or reach
// SQLite's internals (fts3_tokenizer hands out and takes code addresses). nullptr: allowed.
const char* refusal(int action, const char* first, const char* second) {
  switch (action) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not accepted: each call is a transaction "
             "of its own (use a transaction of the API for several statements)";
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return "ATTACH and DETACH are not accepted: a call reads the database it was opened on";
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
      return kTempRefused;
    case SQLITE_PRAGMA: {
      if (second == nullptr) return nullptr;  // reads the pragma's value
      // These take a table or index name and only describe the schema; or they change the
      // file, not the connection (a migration's version number, a checkpoint).
      static constexpr std::string_view kAllowed[] = {
          "table_info",   "table_xinfo",      "index_info",        "index_xinfo",     "index_list",
          "table_list",   "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
          "user_version", "application_id",   "wal_checkpoint"};
      const std::string_view name(first ? first : "");
      for (const std::string_view allowed : kAllowed)
        if (name.size() == allowed.size() &&
            sqlite3_strnicmp(name.data(), allowed.data(), static_cast<int>(name.size())) == 0)
          return nullptr;
      return "a PRAGMA that sets a value is not accepted: the connection is shared with later "
             "calls";
    }
    case SQLITE_FUNCTION:
      if (second && (sqlite3_stricmp(second, "fts3_tokenizer") == 0 ||
                     sqlite3_stricmp(second, "load_extension") == 0))
        return "this function is not accepted: it reaches SQLite's internals";
      return nullptr;
    default:
      return nullptr;
  }
}

// The words of `sql`, lower-cased, blanks and comments skipped, up to `limit` of them.
std::vector<std::string> leading_words(std::string_view sql, std::size_t limit) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < sql.size() && words.size() < limit) {
    const char c = sql[i];
    if (sql.substr(i, 2) == "--") {
      i = std::min(sql.find('\n', i), sql.size());
    } else if (sql.substr(i, 2) == "/*") {
      const std::size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::string word;
      while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_'))
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++])));
      words.push_back(std::move(word));
    } else {
      ++i;
    }
  }
  return words;
}

// VACUUM INTO writes a copy of the database to any file the process may write; no
// authorizer action stands for it (ATTACH, which is refused, has one).
bool is_vacuum_into(std::string_view sql) {
  const auto words = leading_words(sql, 3);
  return !words.empty() && words[0] == "vacuum" &&
         std::find(words.begin() + 1, words.end(), "into") != words.end();
}

// SQLite says "read-only" also when the database could be written but the files beside it
// cannot (the WAL index or the WAL, in a folder this process cannot write), or when the file
// was moved: the deployment's to fix, not the caller's SQL. nullptr: none of those.
const char* readonly_cause(sqlite3* db) {
  switch (sqlite3_extended_errcode(db)) {
    case SQLITE_READONLY_CANTINIT:
    case SQLITE_READONLY_RECOVERY:
    case SQLITE_READONLY_CANTLOCK:
    case SQLITE_READONLY_DIRECTORY:
      return "the database's -wal and -shm files cannot be made or written beside it (can this "
             "process write to its folder?)";
    case SQLITE_READONLY_DBMOVED:
      return "the database file was moved, replaced or deleted while open";
    default:
      return nullptr;
  }
}

class Connection {
 public:
  Connection(const SqliteOptions& options, bool writer) : cache_limit_(options.statement_cache) {
    std::error_code ignored;
    if (std::filesystem::is_directory(options.path, ignored))
      fail(StatusCode::InvalidInput,
           "cannot open SQLite database '" + options.path + "': it is a folder, not a file");
    int flags = SQLITE_OPEN_NOMUTEX;
    if (writer)
      flags |= SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0);
    else
      flags |= SQLITE_OPEN_READONLY;
    const int rc = sqlite3_open_v2(options.path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      if (rc == SQLITE_CANTOPEN && !std::filesystem::exists(options.path, ignored))
        why += options.create ? " (its folder does not exist or cannot be written)"
                              : " (no such file: set create, with read_write, to make it)";
      fail(StatusCode::InvalidInput, "cannot open SQLite database '" + options.path + "': " + why);
    }
    sqlite3_extended_result_codes(db_, 0);
    // No SQL may corrupt the file (writable_schema and the like) or hand a tokenizer's
    // address to FTS3; and a caller's statements go through refusal().
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, nullptr);
    sqlite3_set_authorizer(db_, &Connection::authorize, this);
    // A text or blob a statement makes is bounded: one SQL function runs to its end, whatever
    // the deadline (printf('%.*c', 900000000, 'x') took seconds and 280 MB).
    sqlite3_limit(db_, SQLITE_LIMIT_LENGTH,
                  static_cast<int>(std::min<std::size_t>(options.max_value_bytes, 0x7fffffff)));
    // No memory-mapped reads (SQLite's default too): a file truncated under a mapped page, or
    // a read error there, kills the process (SIGBUS) where a read fails only its call; and
    // mapped reads measured no faster here (bench/RESULTS.md, session 11).
    try {
      // Another process may hold the file's lock now (switching to WAL needs it alone: four
      // workers started at once on a new file): waited for as a call waits.
      sqlite3_busy_timeout(db_, static_cast<int>(options.busy_timeout.count()));
      if (writer) {
        run_pragma("PRAGMA journal_mode=WAL");
        run_pragma("PRAGMA synchronous=NORMAL");
      } else {
        run_pragma("PRAGMA query_only=1");
      }
      if (options.foreign_keys) run_pragma("PRAGMA foreign_keys=ON");
      sqlite3_busy_timeout(db_, 0);   // each call has its own wait (CallGuard)
    } catch (const core::Error& e) {  // a read-only file opened for writing, say
      sqlite3_close(db_);             // no destructor runs for a constructor that throws
      fail(StatusCode::InvalidInput,
           "cannot open SQLite database '" + options.path + "': " + e.what());
    }
  }
  ~Connection() {
    for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
    sqlite3_close(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const noexcept { return db_; }
  bool is_open() const noexcept { return true; }  // open from construction to destruction

  // A prepared statement for `sql`, from the cache when it was seen before. An interrupt while
  // SQLite loads the schema is the `guard`'s deadline or token, as it is for a step.
  sqlite3_stmt* prepare(std::string_view sql, const CallGuard* guard = nullptr,
                        Origin origin = Origin::Caller);

  void run_pragma(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string why = error ? error : "unknown error";
      sqlite3_free(error);
      if (const char* cause = readonly_cause(db_)) why = cause + (" (" + why + ")");
      fail(StatusCode::InvalidInput, std::string("SQLite: ") + sql + ": " + why);
    }
  }

 private:
  // Called while a statement is compiled (also when SQLite recompiles one after a schema
  // change, by then outside prepare(): the text was checked when first prepared).
  static int authorize(void* self, int action, const char* first, const char* second,
                       const char* database, const char*) {
    auto* connection = static_cast<Connection*>(self);
    // The functions are refused whenever a statement is compiled, also when SQLite compiles
    // one again after a schema change: a view or trigger changed meanwhile cannot bring them.
    if (!connection->checking_ && action != SQLITE_FUNCTION) return SQLITE_OK;
    // `CREATE TABLE temp.t` and a virtual table are no TEMP action: their schema says it.
    const char* why =
        in_temp_schema(action, database) ? kTempRefused : refusal(action, first, second);
    if (why == nullptr) return SQLITE_OK;
    connection->refused_ = why;
    return SQLITE_DENY;
  }

  struct Cached {
    sqlite3_stmt* stmt;
    Origin origin;
  };
  sqlite3* db_ = nullptr;
  std::size_t cache_limit_;
  std::unordered_map<std::string, Cached, TextHash, std::equal_to<>> cache_;
  bool checking_ = false;          // a caller's statement is being compiled
  const char* refused_ = nullptr;  // why the authorizer refused it
};

// While a call runs: its deadline and token can stop the statement. The progress handler
// catches the deadline between VM steps; the token interrupts at once from any thread.
class CallGuard {
 public:
  CallGuard(Connection& connection, core::Deadline deadline, const core::CancelToken& cancel,
            std::chrono::milliseconds busy_timeout)
      : db_(connection.handle()),
        deadline_(deadline),
        cancel_(cancel),
        busy_until_(core::Clock::now() + busy_timeout) {
    // Not sqlite3_busy_timeout: its sleeps would not see the token, and its end, a deadline.
    sqlite3_busy_handler(db_, &CallGuard::on_busy, this);
    sqlite3_progress_handler(db_, 1000, &CallGuard::on_progress, this);
    registration_ = cancel.on_cancel([db = db_] { sqlite3_interrupt(db); });
  }
  ~CallGuard() {
    stand_down();
    sqlite3_busy_handler(db_, nullptr, nullptr);
  }

  // From now on neither the token nor the deadline interrupts a statement: for a clean-up
  // that must run whole.
  void stand_down() {
    registration_.reset();  // waits for a running interrupt, so it cannot hit the next user
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  }

  // Whether the deadline or the token ended the call (a wait for the file lock included).
  bool stopped() const { return cancel_.cancelled() || deadline_.expired(); }

  // Why an interrupted statement stopped.
  [[noreturn]] void throw_stopped() const {
    cancel_.throw_if_cancelled();
    fail(StatusCode::Timeout, "query deadline exceeded");
  }
  void check() const {
    cancel_.throw_if_cancelled();
    if (deadline_.expired()) fail(StatusCode::Timeout, "query deadline exceeded");
  }

 private:
  static int on_progress(void* self) { return static_cast<CallGuard*>(self)->stopped() ? 1 : 0; }

  // Another connection holds the file's lock: wait for it in short sleeps, each bounded by
  // the deadline, ending at the busy timeout (Busy), the deadline (Timeout) or the token
  // (Cancelled, within a few milliseconds).
  static int on_busy(void* self, int tries) {
    const auto* guard = static_cast<CallGuard*>(self);
    const auto now = core::Clock::now();
    if (guard->stopped() || now >= guard->busy_until_) return 0;
    const auto nap = std::min({std::chrono::milliseconds(1 << std::min(tries, 3)),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::min(guard->busy_until_, guard->deadline_.at()) - now)});
    std::this_thread::sleep_for(std::max(nap, std::chrono::milliseconds(1)));
    return 1;
  }

  sqlite3* db_;
  core::Deadline deadline_;
  const core::CancelToken& cancel_;
  core::Clock::time_point busy_until_;
  core::CancelRegistration registration_;
};

// What a failed prepare or step means, but an interrupt (its reason is the call's): what the
// statement asked (syntax, a missing table, a constraint) is a SqlError; a lock is Busy; the
// rest is the file's or the process's (not a database, corrupt, unreadable), never the
// caller's to fix.
[[noreturn]] void fail_sqlite(sqlite3* db, int rc) {
  const std::string why = sqlite3_errmsg(db);
  switch (rc) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      fail(StatusCode::Busy, why.starts_with("database") ? why : "database is locked: " + why);
    case SQLITE_READONLY:
      if (const char* cause = readonly_cause(db)) fail(StatusCode::InternalError, cause);
      throw core::SqlError("the database is read-only here (open it for writing to change it): " +
                           why);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_ERROR:
      throw core::SqlError("SQL error: " + why);
    default:
      fail(StatusCode::InternalError, "SQLite error: " + why);
  }
}

[[noreturn]] void fail_step(sqlite3* db, int rc, const CallGuard& guard);

// Whether what follows a statement is nothing SQLite would run: blanks, semicolons and
// comments (`-- ...` to the line's end, `/* ... */`, which an unclosed one ends at the end).
bool only_blanks_and_comments(std::string_view rest) {
  std::size_t at = 0;
  while (at < rest.size()) {
    if (std::isspace(static_cast<unsigned char>(rest[at])) || rest[at] == ';') {
      ++at;
    } else if (rest.substr(at, 2) == "--") {
      at = rest.find('\n', at);
    } else if (rest.substr(at, 2) == "/*") {
      at = rest.find("*/", at + 2);
      if (at != std::string_view::npos) at += 2;
    } else {
      return false;
    }
  }
  return true;
}

sqlite3_stmt* Connection::prepare(std::string_view sql, const CallGuard* guard, Origin origin) {
  // SQLite would compile the text before the NUL and ignore the rest: another statement.
  if (origin == Origin::Caller && sql.find('\0') != std::string_view::npos)
    fail_call("the SQL contains a NUL byte");
  // A caller's text that this file prepared for itself ("BEGIN") is compiled again, checked.
  const auto cached = cache_.find(sql);
  if (cached != cache_.end() && (origin == Origin::Own || cached->second.origin == Origin::Caller))
    return cached->second.stmt;
  // Checked once, when compiled: a cached text passed it.
  if (origin == Origin::Caller && is_vacuum_into(sql))
    fail_call("VACUUM INTO is not accepted: a call writes only the database it was opened on");
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  checking_ = origin == Origin::Caller;
  refused_ = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  checking_ = false;
  // SQLITE_AUTH, or SQLITE_ERROR for a function: the authorizer's reason says more.
  if (rc != SQLITE_OK && refused_) fail_call(refused_);
  if (rc != SQLITE_OK && guard) fail_step(db_, rc, *guard);  // the deadline's or token's first
  if (rc == SQLITE_INTERRUPT) fail(StatusCode::Cancelled, "SQL error: interrupted");
  if (rc != SQLITE_OK) fail_sqlite(db_, rc);
  if (!stmt) fail_call("SQL error: the statement is empty");
  const std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
  if (!only_blanks_and_comments(rest)) {
    sqlite3_finalize(stmt);
    fail_call("SQL error: one statement per call (found more after the first)");
  }
  if (cached != cache_.end()) {  // this file's, passed by the check: the caller's from now on
    sqlite3_finalize(cached->second.stmt);
    cached->second = {stmt, origin};
    return stmt;
  }
  if (cache_.size() >= cache_limit_) {
    for (auto& [text, old] : cache_) sqlite3_finalize(old.stmt);
    cache_.clear();
  }
  cache_.emplace(std::string(sql), Cached{stmt, origin});
  return stmt;
}

// What a failed step means: the call's deadline or token when one ended it (an interrupt, or
// a wait for the file lock they cut short), else fail_sqlite's reading.
[[noreturn]] void fail_step(sqlite3* db, int rc, const CallGuard& guard) {
  const bool locked = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
  if (rc == SQLITE_INTERRUPT || (locked && guard.stopped())) guard.throw_stopped();
  fail_sqlite(db, rc);
}

void bind_one(sqlite3_stmt* stmt, int index, const Param& param) {
  int rc = SQLITE_OK;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::nullptr_t>)
          rc = sqlite3_bind_null(stmt, index);
        else if constexpr (std::is_same_v<V, bool>)
          rc = sqlite3_bind_int64(stmt, index, v ? 1 : 0);
        else if constexpr (std::is_same_v<V, std::int64_t>)
          rc = sqlite3_bind_int64(stmt, index, v);
        else if constexpr (std::is_same_v<V, double>) {
          // SQLite would store NULL in its place without a word.
          if (std::isnan(v))
            fail_call("parameter " + std::to_string(index) + " is NaN, which SQLite cannot store");
          rc = sqlite3_bind_double(stmt, index, v);
        } else if constexpr (std::is_same_v<V, std::string>)
          rc = sqlite3_bind_text64(stmt, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
        else if constexpr (std::is_same_v<V, Bytes>)
          rc = sqlite3_bind_blob64(stmt, index, v.data.data(), v.data.size(), SQLITE_TRANSIENT);
        else
          fail_call("parameter " + std::to_string(index) + " is an array; SQLite has no arrays");
      },
      param.value);
  if (rc != SQLITE_OK) fail_call("cannot bind parameter " + std::to_string(index));
}

// Binds `params` to every placeholder of `stmt`; a count or name mismatch is InvalidInput.
void bind(sqlite3_stmt* stmt, const Params& params) {
  const int count = sqlite3_bind_parameter_count(stmt);
  if (!params.named()) {
    if (static_cast<std::size_t>(count) != params.values.size())
      fail_call("the statement has " + std::to_string(count) + " placeholders but " +
                std::to_string(params.values.size()) + " values were given");
    for (int i = 1; i <= count; ++i) {
      const char* name = sqlite3_bind_parameter_name(stmt, i);
      if (name && name[0] != '?')
        fail_call(std::string("positional values given, but the SQL names ") + name);
      bind_one(stmt, i, params.values[static_cast<std::size_t>(i - 1)]);
    }
    return;
  }
  if (params.names.size() != params.values.size())
    fail_call(std::to_string(params.values.size()) + " values given for " +
              std::to_string(params.names.size()) + " names");
  for (std::size_t i = 0; i < params.names.size(); ++i)
    if (std::find(params.names.begin(), params.names.begin() + static_cast<std::ptrdiff_t>(i),
                  params.names[i]) != params.names.begin() + static_cast<std::ptrdiff_t>(i))
      fail_call("a value for :" + params.names[i] + " is given twice");
  std::vector<bool> used(params.values.size(), false);
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    if (!name || name[0] != ':')
      fail_call("named values given, but placeholder " + std::to_string(i) +
                " is not written :name");
    const std::string_view wanted(name + 1);
    const auto it = std::find(params.names.begin(), params.names.end(), wanted);
    if (it == params.names.end()) fail_call("no value given for :" + std::string(wanted));
    const auto at = static_cast<std::size_t>(it - params.names.begin());
    used[at] = true;
    bind_one(stmt, i, params.values[at]);
  }
  for (std::size_t i = 0; i < used.size(); ++i)
    if (!used[i]) fail_call("the SQL has no :" + params.names[i]);
}

// SQLite keeps whatever bytes a TEXT was given; an answer (a MsgPack str, a JSON string) can
// only carry UTF-8. Refused as Python's sqlite3 does, naming the column and the way out.
[[noreturn, gnu::cold, gnu::noinline]] void fail_not_utf8(sqlite3_stmt* stmt, int column) {
  const char* given = sqlite3_column_name(stmt, column);  // NULL only when out of memory
  const std::string name = given ? given : "?";
  throw core::SqlError("column '" + name +
                       "' holds text that is not UTF-8 (read it as bytes: CAST(... AS BLOB))");
}

inline std::string_view checked_text(sqlite3_stmt* stmt, int column, const unsigned char* text,
                                     int bytes) {
  const std::string_view view(reinterpret_cast<const char*>(text), static_cast<std::size_t>(bytes));
  if (!codec::is_valid_utf8(view)) [[unlikely]]
    fail_not_utf8(stmt, column);
  return view;
}

Value read_cell(sqlite3_stmt* stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(stmt, column));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, column);
    case SQLITE_TEXT: {
      const unsigned char* text = sqlite3_column_text(stmt, column);
      return std::string(checked_text(stmt, column, text, sqlite3_column_bytes(stmt, column)));
    }
    case SQLITE_BLOB: {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, column));
      return Bytes{std::string(data ? data : "",
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))};
    }
    default:
      return nullptr;
  }
}

// Leaves a cached statement ready for its next use, whatever happened.
struct StatementReset {
  sqlite3_stmt* stmt;
  ~StatementReset() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

// The statements of a batch read one snapshot of the database: a read transaction around
// them, so a writer that commits between two of them is seen by neither or by both (in WAL
// mode a reader never waits for it). It also takes the WAL read lock once rather than once
// per statement. Ended on every path, including a failed or interrupted statement.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Connection& c) : c_(c) {
    step_to_end(c_.prepare("BEGIN", nullptr, Origin::Own));
  }
  ~ReadSnapshot() {
    if (sqlite3_get_autocommit(c_.handle())) return;  // an interrupt may have ended it
    // COMMIT of a transaction that only read cannot fail; ROLLBACK if even preparing it did.
    try {
      step_to_end(c_.prepare("COMMIT", nullptr, Origin::Own));
    } catch (...) {
    }
    if (!sqlite3_get_autocommit(c_.handle()))
      sqlite3_exec(c_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  static void step_to_end(sqlite3_stmt* stmt) {
    StatementReset reset{stmt};
    sqlite3_step(stmt);
  }
  Connection& c_;
};

// A row of a running statement, read in place by position.
class SqliteRowView final : public RowView {
 public:
  SqliteRowView(sqlite3_stmt* stmt, int width) : stmt_(stmt), width_(width) {}

  std::size_t width() const noexcept override { return static_cast<std::size_t>(width_); }

  CellView cell(std::size_t column) const override {
    sqlite3_value* value = at(column);
    CellView out;
    switch (sqlite3_value_type(value)) {
      case SQLITE_INTEGER:
        out.type = ValueType::Int;
        out.integer = sqlite3_value_int64(value);
        break;
      case SQLITE_FLOAT:
        out.type = ValueType::Float;
        out.real = sqlite3_value_double(value);
        break;
      case SQLITE_TEXT: {
        out.type = ValueType::Text;
        const unsigned char* text = sqlite3_value_text(value);
        out.text = checked_text(stmt_, static_cast<int>(column), text, sqlite3_value_bytes(value));
        break;
      }
      case SQLITE_BLOB: {
        out.type = ValueType::Bytes;
        const auto* data = static_cast<const char*>(sqlite3_value_blob(value));
        out.text = {data ? data : "", static_cast<std::size_t>(sqlite3_value_bytes(value))};
        break;
      }
      default:
        break;
    }
    return out;
  }

  // The typed reads check the one type they want and read it, without a CellView.
  std::int64_t integer(std::size_t column) const override {
    sqlite3_value* value = at(column);
    if (sqlite3_value_type(value) != SQLITE_INTEGER) return RowView::integer(column);
    return sqlite3_value_int64(value);
  }
  double number(std::size_t column) const override {
    sqlite3_value* value = at(column);
    if (sqlite3_value_type(value) != SQLITE_FLOAT) return RowView::number(column);
    return sqlite3_value_double(value);
  }
  std::string_view text(std::size_t column) const override {
    sqlite3_value* value = at(column);
    if (sqlite3_value_type(value) != SQLITE_TEXT) return RowView::text(column);
    const unsigned char* text = sqlite3_value_text(value);
    return checked_text(stmt_, static_cast<int>(column), text, sqlite3_value_bytes(value));
  }

 private:
  // One sqlite3_column_value() per read and the sqlite3_value_* reads on it, rather than
  // sqlite3_column_type() then sqlite3_column_text() and _bytes(): each sqlite3_column_*
  // call looks the column up again (with its mutex and error bookkeeping). SQLite calls such
  // a value unprotected and its reads not thread-safe; this connection is leased to one
  // thread and opened NOMUTEX, and the value is read before the next step.
  sqlite3_value* at(std::size_t column) const {
    if (column >= static_cast<std::size_t>(width_))
      fail(StatusCode::InternalError,
           "column " + std::to_string(column) + " is outside the result");
    return sqlite3_column_value(stmt_, static_cast<int>(column));
  }

  sqlite3_stmt* stmt_;
  int width_;
};

// The row's size against the budget, before it is read: a huge cell is refused unread.
void take_row(detail::ResultBudget& budget, sqlite3_stmt* stmt, int width) {
  for (int i = 0; i < width; ++i) {
    const int type = sqlite3_column_type(stmt, i);
    budget.take(type == SQLITE_TEXT || type == SQLITE_BLOB
                    ? static_cast<std::size_t>(sqlite3_column_bytes(stmt, i))
                    : detail::ResultBudget::kOtherCell);
  }
}

std::vector<std::string> column_names(sqlite3_stmt* stmt, int width) {
  std::vector<std::string> columns;
  columns.reserve(static_cast<std::size_t>(width));
  for (int i = 0; i < width; ++i) columns.emplace_back(sqlite3_column_name(stmt, i));
  return columns;
}

// max_rows and max_bytes over one statement's rows, each row checked before it is kept.
class RowLimits {
 public:
  explicit RowLimits(const QueryOptions& options)
      : max_rows_(options.max_rows), budget_(options.max_bytes) {}

  bool limited() const noexcept { return max_rows_ != 0 || budget_.limited(); }

  void take(sqlite3_stmt* stmt, int width) {
    if (max_rows_ && count_ == max_rows_)
      fail_call("the statement returns more than max_rows=" + std::to_string(max_rows_) + " rows");
    ++count_;
    if (budget_.limited()) take_row(budget_, stmt, width);
  }

 private:
  std::size_t max_rows_;
  std::size_t count_ = 0;
  detail::ResultBudget budget_;
};

// Runs one reading statement: `on_start(stmt, width)` once it is bound, `on_row(stmt, width)`
// for every row while it sits on that row. max_rows, the deadline and the token apply.
template <class OnStart, class OnRow>
void step_query(Connection& c, std::string_view sql, const Params& params,
                const QueryOptions& options, core::Deadline deadline,
                std::chrono::milliseconds busy_timeout, bool reads_only, OnStart&& on_start,
                OnRow&& on_row) {
  CallGuard guard(c, deadline, options.cancel, busy_timeout);
  guard.check();
  sqlite3_stmt* stmt = c.prepare(sql, &guard);
  StatementReset reset{stmt};
  if (reads_only && !sqlite3_stmt_readonly(stmt))
    fail_call("this statement writes; queries only read (use an execute call)");
  bind(stmt, params);
  const int width = sqlite3_column_count(stmt);
  on_start(stmt, width);
  RowLimits limits(options);
  const bool limited = limits.limited();
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail_step(c.handle(), rc, guard);
    if (limited) limits.take(stmt, width);
    on_row(stmt, width);
  }
}

Rows run_query(Connection& c, std::string_view sql, const Params& params,
               const QueryOptions& options, core::Deadline deadline,
               std::chrono::milliseconds busy_timeout, bool reads_only) {
  Rows rows;
  step_query(
      c, sql, params, options, deadline, busy_timeout, reads_only,
      [&](sqlite3_stmt* stmt, int width) { rows = Rows(column_names(stmt, width)); },
      [&](sqlite3_stmt* stmt, int width) {
        for (int i = 0; i < width; ++i) rows.append_cell(read_cell(stmt, i));
      });
  return rows;
}

// Holds a write's changes under a savepoint while its RETURNING rows are read: SQLite makes
// every change at the first step, so rows past max_rows or max_bytes are refused by undoing
// the write, not by committing it and then failing. Released, the changes stand (committed,
// outside a transaction); destroyed unreleased, they are rolled back.
class ReturningSavepoint {
 public:
  ReturningSavepoint(sqlite3_stmt* stmt, CallGuard& guard)
      : db_(sqlite3_db_handle(stmt)),
        stmt_(stmt),
        guard_(guard),
        outside_transaction_(sqlite3_get_autocommit(db_)) {
    run("SAVEPOINT molt_returning", guard);
  }
  ReturningSavepoint(const ReturningSavepoint&) = delete;
  ReturningSavepoint& operator=(const ReturningSavepoint&) = delete;
  ~ReturningSavepoint() {
    if (released_) return;
    // The call's token, cancelled from another thread meanwhile, could interrupt the
    // ROLLBACK TO, and the RELEASE after it would then commit the changes.
    guard_.stand_down();
    sqlite3_reset(stmt_);  // a statement still stepping would keep its changes' locks
    if (sqlite3_exec(db_, "ROLLBACK TO molt_returning", nullptr, nullptr, nullptr) == SQLITE_OK) {
      sqlite3_exec(db_, "RELEASE molt_returning", nullptr, nullptr, nullptr);
    } else if (!sqlite3_get_autocommit(db_)) {
      // Not undone (an I/O error): the whole transaction is, rather than letting the changes
      // stand; a caller's transaction then reports that it ended (ended_by_database).
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    // Never leave the transaction the savepoint opened behind on a shared connection.
    if (outside_transaction_ && !sqlite3_get_autocommit(db_))
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  void release(const CallGuard& guard) {
    run("RELEASE molt_returning", guard);
    released_ = true;
  }

 private:
  void run(const char* sql, const CallGuard& guard) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail_step(db_, rc, guard);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  CallGuard& guard_;
  bool outside_transaction_;
  bool released_ = false;
};

// A file deleted, moved or replaced under an open connection still takes its writes, into the
// old file (only a rollback journal makes SQLite check): answered Ok, and lost. One stat()
// a write.
void check_not_moved(sqlite3* db) {
  int moved = 0;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
    fail(StatusCode::InternalError,
         "the database file was moved, replaced or deleted while open: a write would go to the "
         "old file and be lost (restart to open the file now at its path)");
}

ExecResult run_execute(Connection& c, std::string_view sql, const Params& params,
                       const QueryOptions& options, core::Deadline deadline,
                       std::chrono::milliseconds busy_timeout, Origin origin = Origin::Caller) {
  CallGuard guard(c, deadline, options.cancel, busy_timeout);
  guard.check();
  if (origin == Origin::Caller) check_not_moved(c.handle());
  sqlite3_stmt* stmt = c.prepare(sql, &guard, origin);
  StatementReset reset{stmt};
  bind(stmt, params);
  // A mark no insert leaves (an insert of the same rowid as the last one would): what is
  // there after the statement is its own, or the mark, and then the old value goes back.
  constexpr sqlite3_int64 kNoInsert = std::numeric_limits<sqlite3_int64>::min();
  struct RowidMark {
    sqlite3* db;
    sqlite3_int64 before = sqlite3_last_insert_rowid(db);
    ~RowidMark() {
      if (sqlite3_last_insert_rowid(db) == kNoInsert) sqlite3_set_last_insert_rowid(db, before);
    }
  } mark{c.handle()};
  sqlite3_set_last_insert_rowid(c.handle(), kNoInsert);
  const sqlite3_int64 changes_before = sqlite3_total_changes64(c.handle());
  ExecResult result;
  const int width = sqlite3_column_count(stmt);  // a SELECT's, or a RETURNING clause's
  if (width > 0) result.returned = Rows(column_names(stmt, width));
  RowLimits limits(options);
  const bool limited = width > 0 && limits.limited();
  std::optional<ReturningSavepoint> savepoint;
  if (limited && !sqlite3_stmt_readonly(stmt)) savepoint.emplace(stmt, guard);
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail_step(c.handle(), rc, guard);
    if (limited) {
      try {
        limits.take(stmt, width);
      } catch (const core::Error& e) {
        if (!savepoint) throw;
        throw core::SqlError(std::string(e.what()) + "; its changes were rolled back");
      }
    }
    try {
      for (int i = 0; i < width; ++i) result.returned.append_cell(read_cell(stmt, i));
    } catch (const core::Error& e) {
      // SQLite made every change at the first step: say what became of them, or a caller
      // would run it again.
      fail(StatusCode::InternalError,
           std::string(savepoint ? "the statement's changes were rolled back"
                       : sqlite3_get_autocommit(c.handle())
                           ? "the statement ran and was committed"
                           : "the statement ran in a transaction, which is rolled back") +
               ", because its RETURNING rows cannot be read: " + e.what());
    }
  }
  if (savepoint) savepoint->release(guard);
  // sqlite3_changes64 is the last INSERT, UPDATE or DELETE's, which may be an earlier call's:
  // it is this statement's only when the total moved (a CREATE or an UPDATE of no row: 0).
  const sqlite3_int64 rowid = sqlite3_last_insert_rowid(c.handle());
  if (sqlite3_total_changes64(c.handle()) != changes_before) {
    result.rows_affected = sqlite3_changes64(c.handle());
    if (rowid != kNoInsert) result.last_insert_id = rowid;
  }
  return result;
}

using ConnectionPool = detail::ConnectionPool<Connection>;

class SqliteTransaction final : public TransactionSession {
 public:
  // `owner` keeps the database (and so the pool the lease returns to) alive for as long as
  // the transaction lives.
  SqliteTransaction(std::shared_ptr<const Database> owner, ConnectionPool::Lease lease,
                    const SqliteOptions& options, bool reads_only)
      : owner_(std::move(owner)),
        lease_(std::move(lease)),
        options_(options),
        reads_only_(reads_only) {}

  Rows query(std::string_view sql, const Params& params, const QueryOptions& o) override {
    return run_query(*lease_, sql, params, o, deadline(o), options_.busy_timeout, true);
  }
  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    if (reads_only_) throw core::InvalidInput(kOpenedReadOnly);
    return run_execute(*lease_, sql, params, o, deadline(o), options_.busy_timeout);
  }
  void commit() override {
    run_execute(*lease_, "COMMIT", {}, {}, deadline({}), options_.busy_timeout, Origin::Own);
  }
  void rollback() noexcept override {
    // After an interrupted statement SQLite may have rolled back already.
    if (!sqlite3_get_autocommit((*lease_).handle()))
      sqlite3_exec((*lease_).handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  // SQLite undoes a failed statement alone, or (INSERT OR ROLLBACK, RAISE(ROLLBACK), an
  // interrupted write) the whole transaction, and then runs the next statements in
  // autocommit: Transaction must not let them.
  bool ended_by_database() const noexcept override {
    return sqlite3_get_autocommit((*lease_).handle()) != 0;
  }

 private:
  core::Deadline deadline(const QueryOptions& o) const {
    return o.deadline.is_set() ? o.deadline : core::Deadline::after(options_.query_timeout);
  }
  std::shared_ptr<const Database> owner_;
  ConnectionPool::Lease lease_;
  const SqliteOptions& options_;
  bool reads_only_;
};

class SqliteDatabase final : public Database, public std::enable_shared_from_this<SqliteDatabase> {
 public:
  explicit SqliteDatabase(SqliteOptions options) : options_(std::move(options)) {
    if (options_.read_write) writers_.add(std::make_unique<Connection>(options_, true));
    for (std::size_t i = 0; i < std::max<std::size_t>(options_.readers, 1); ++i)
      readers_.add(std::make_unique<Connection>(options_, false));
  }

  Backend backend() const noexcept override { return Backend::Sqlite; }

  Rows query(std::string_view sql, const Params& params, const QueryOptions& o) override {
    const auto d = deadline(o);
    auto lease = readers_.acquire(d, o.cancel, options_.pool_wait);
    return run_query(*lease, sql, params, o, d, options_.busy_timeout, true);
  }

  // One reader connection, one statement after another in one read transaction: SQLite has
  // no round trips to save.
  std::vector<Rows> query_batch(const std::vector<BatchQuery>& queries,
                                const QueryOptions& o) override {
    std::vector<Rows> out;
    if (queries.empty()) return out;
    const auto d = deadline(o);
    auto lease = readers_.acquire(d, o.cancel, options_.pool_wait);
    std::optional<ReadSnapshot> snapshot;
    if (queries.size() > 1) snapshot.emplace(*lease);
    out.reserve(queries.size());
    for (const auto& q : queries)
      out.push_back(run_query(*lease, q.sql, q.params, o, d, options_.busy_timeout, true));
    return out;
  }

  // As query_batch(), each row read in place from the statement: no column names, no Value
  // per cell, no copy of a text unless the visitor makes one.
  void query_batch_each(const std::vector<BatchQuery>& queries, const QueryOptions& o,
                        const RowVisitor& visit) override {
    if (queries.empty()) return;
    const auto d = deadline(o);
    auto lease = readers_.acquire(d, o.cancel, options_.pool_wait);
    std::optional<ReadSnapshot> snapshot;
    if (queries.size() > 1) snapshot.emplace(*lease);
    for (std::size_t s = 0; s < queries.size(); ++s)
      step_query(
          *lease, queries[s].sql, queries[s].params, o, d, options_.busy_timeout, true,
          [](sqlite3_stmt*, int) {},
          [&](sqlite3_stmt* stmt, int width) { visit(s, SqliteRowView(stmt, width)); });
  }

  void query_in_parts(std::string_view sql, const Params& params, const QueryOptions& o,
                      const PartVisitor& visit) override {
    const auto d = deadline(o);
    auto lease = readers_.acquire(d, o.cancel, options_.pool_wait);
    Rows part;
    bool handed = false;
    step_query(
        *lease, sql, params, o, d, options_.busy_timeout, true,
        [&](sqlite3_stmt* stmt, int width) {
          part = Rows(column_names(stmt, width));
          part.reserve_cells(static_cast<std::size_t>(width) * kRowsPerPart);
        },
        [&](sqlite3_stmt* stmt, int width) {
          for (int i = 0; i < width; ++i) part.append_cell(read_cell(stmt, i));
          if (part.size() == kRowsPerPart) {
            visit(part);
            handed = true;
            part.clear_rows();
          }
        });
    if (!handed || !part.empty()) visit(part);
  }

  ExecResult execute(std::string_view sql, const Params& params, const QueryOptions& o) override {
    require_writable();
    const auto d = deadline(o);
    auto lease = writers_.acquire(d, o.cancel, options_.pool_wait);
    return run_execute(*lease, sql, params, o, d, options_.busy_timeout);
  }

  Transaction begin(const QueryOptions& o) override {
    const auto d = deadline(o);
    const bool reads_only = !options_.read_write;
    auto lease = (reads_only ? readers_ : writers_).acquire(d, o.cancel, options_.pool_wait);
    // IMMEDIATE takes the write lock now, so a transaction never fails later on an upgrade.
    run_execute(*lease, reads_only ? "BEGIN" : "BEGIN IMMEDIATE", {}, o, d, options_.busy_timeout,
                Origin::Own);
    return Transaction(std::make_unique<SqliteTransaction>(shared_from_this(), std::move(lease),
                                                           options_, reads_only));
  }

  PoolStats stats() const override {
    PoolStats r = readers_.stats(), w = writers_.stats();
    return {r.connections + w.connections, r.in_use + w.in_use, r.waiting + w.waiting};
  }

 private:
  core::Deadline deadline(const QueryOptions& o) const {
    return o.deadline.is_set() ? o.deadline : core::Deadline::after(options_.query_timeout);
  }
  void require_writable() const {
    if (!options_.read_write) throw core::InvalidInput(kOpenedReadOnly);
  }

  SqliteOptions options_;
  ConnectionPool writers_;
  ConnectionPool readers_;
};

}  // namespace

std::shared_ptr<Database> open_sqlite(const SqliteOptions& options) {
  if (options.path.empty()) fail(StatusCode::InvalidInput, "SQLite: no database path given");
  // Only the writer may create the file: asked for alone, it would be quietly ignored.
  if (options.create && !options.read_write)
    fail(StatusCode::InvalidInput, "SQLite: create needs read_write (a read-only database '" +
                                       options.path + "' cannot be created)");
  // Each pooled connection would open a database of its own: a table one of them creates,
  // the others would not see.
  if (options.path == ":memory:" || options.path.starts_with("file:"))
    fail(StatusCode::InvalidInput, "SQLite: give a file path (" + options.path +
                                       " is not supported: the pool's connections would each "
                                       "have a database of their own)");
  return std::make_shared<SqliteDatabase>(options);
}

}  // namespace molt::db
