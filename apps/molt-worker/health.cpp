// health (DESIGN.md §5): {"ok": true, "version", "uptime_s", "pid"}, and with a database
// configured, "db": whether it answers. The input is ignored.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "molt/codec/json.hpp"
#include "molt/worker/export_registry.hpp"
#include "settings.hpp"

namespace {

// Readiness beside liveness: "ok" says the worker answers, "db" whether its database does
// (a trivial query within a second). A worker whose database is down stays "ok": restarting
// it would not help. The failure's text (hosts, paths) goes to the log, as any internal one.
void append_database_state(std::string& out, molt::worker::ExportContext& ctx) {
  std::string_view backend = "none";
  std::string state;  // the fields after "backend"
  try {
    const auto& db = molt_worker::configured_database();
    if (!db) return;
    const bool sqlite = db->backend() == molt::db::Backend::Sqlite;
    backend = sqlite ? "sqlite" : "postgres";
    molt::db::QueryOptions o;
    o.deadline = ctx.deadline().min(molt::core::Deadline::after(std::chrono::seconds(1)));
    o.cancel = ctx.token();
    // On SQLite, reading the schema: a file that is not a database (or is gone to corruption)
    // opens fine and answers `SELECT 1`.
    db->query(sqlite ? "SELECT count(*) FROM sqlite_schema" : "SELECT 1", {}, o);
    state = R"("ok":true)";
  } catch (const std::exception& e) {
    const auto* error = dynamic_cast<const molt::core::Error*>(&e);
    if (error && error->code() == molt::core::StatusCode::Busy) {
      // Every connection in use: the database answers others; this worker is busy, not down.
      state = R"("ok":true,"busy":true)";
    } else {
      std::fprintf(stderr, "molt-worker: health: the database does not answer: %s\n", e.what());
      const std::string_view status =
          error ? molt::core::to_string(error->code()) : std::string_view("InternalError");
      state.append(R"("ok":false,"status":")").append(status).append("\"");
    }
  }
  out.append(R"(,"db":{"backend":")").append(backend).append("\",").append(state).append("}");
}

}  // namespace

void molt_register_health(molt::worker::ExportRegistry& registry) {
  const auto started = std::chrono::steady_clock::now();
  registry.add_raw(
      "health", molt::ipc::Codec::Json, molt::ipc::Codec::Json,
      [started](std::string_view, molt::worker::ExportContext& ctx) {
        const double uptime =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::string out = "{\"ok\":true,\"version\":\"0.1.0\",\"uptime_s\":";
        molt::codec::append_json_double(out, std::round(uptime * 1000) / 1000);
        out += ",\"pid\":";
        molt::codec::append_integer(out, static_cast<std::int64_t>(::getpid()));
        append_database_state(out, ctx);
        out += '}';
        return out;
      });
}
