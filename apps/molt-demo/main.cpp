// molt-demo: the example service of molt::web (what `make run` starts).
//
//   molt-demo [--port 8080] [--threads N] [--blocking-threads N] [--db molt-demo.sqlite3]
//             [--access-log]
//
// Serves /health, /json, /plaintext, /items (GET and POST), /items/export and /items/import
// from an embedded SQLite file, created and seeded on first run; from PostgreSQL when
// MOLT_DB_POSTGRES_DSN is set (seed it with molt-seed --postgres). SIGTERM or SIGINT drains
// in-flight requests and exits 0.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "molt/web/middleware.hpp"
#include "molt/web/server.hpp"
#include "routes.hpp"

int main(int argc, char** argv) {
  CLI::App cli{"molt-demo: the molt::web example service"};
  molt::web::ServerOptions options;
  options.host = "0.0.0.0";
  std::string db_path = "molt-demo.sqlite3";
  unsigned blocking_threads = 0;
  bool access_log = false;
  cli.add_option("--port", options.port, "TCP port (0: any free port)")->capture_default_str();
  cli.add_option("--host", options.host, "address to listen on")->capture_default_str();
  cli.add_option("--threads", options.threads, "I/O threads (0: one per core)")
      ->capture_default_str();
  cli.add_option("--blocking-threads", blocking_threads,
                 "threads for database work (0: two per core; more pay only while they wait)")
      ->capture_default_str();
  cli.add_option("--db", db_path, "SQLite file, created and seeded when missing")
      ->capture_default_str();
  cli.add_flag("--access-log", access_log, "one JSON line per request on stderr");
  CLI11_PARSE(cli, argc, argv);

  try {
    const char* dsn = std::getenv("MOLT_DB_POSTGRES_DSN");
    auto store = dsn && *dsn ? molt_demo::ItemsStore::open_postgres(dsn)
                             : molt_demo::ItemsStore::open_sqlite(db_path);
    if (blocking_threads == 0) blocking_threads = 2 * molt::core::usable_cores();
    molt::core::BlockingPool pool(blocking_threads, 256);
    molt_demo::Services services{std::move(store), pool};

    molt::web::App app;
    app.use(molt::web::request_id());
    if (access_log) app.use(molt::web::access_log());
    molt_demo::add_routes(app, services);

    molt::web::Server server(app, options);
    server.start();
    std::fprintf(stderr, "molt-demo: serving http://%s:%u with %u threads (%s database)\n",
                 options.host.c_str(), static_cast<unsigned>(server.port()), server.threads(),
                 std::string(services.items.backend()).c_str());
    server.wait_for_signal();
    pool.close();
    std::fprintf(stderr, "molt-demo: stopped\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "molt-demo: %s\n", error.what());
    return 2;
  }
  return 0;
}
