// molt-demo: the example service of molt::web (what `make run` starts).
//
//   molt-demo [--port 8080] [--threads N] [--blocking-threads N] [--db molt-demo.sqlite3]
//             [--access-log] [--forwarded-allow-ips 127.0.0.1,10.0.0.0/8]
//             [--job-threads 1] [--upstream HOST:PORT [--items-path /offload/]]
//
// Serves /health, /json, /plaintext, /items (GET and POST), /items/{id}, /items/export,
// /items/import and /reports (durable jobs, run by --job-threads threads of this process; 0
// runs none), with their OpenAPI document at /openapi.json and its page at /docs, from an
// embedded SQLite file, created and seeded on first run; from PostgreSQL when
// MOLT_DB_POSTGRES_DSN is set (seed it with molt-seed --postgres). SIGTERM or SIGINT drains
// in-flight requests and exits 0. With --upstream it is a gateway in front of Django: the
// requests none of its routes take are forwarded there (docs/web.md, "Gateway"). Behind a
// reverse proxy, --forwarded-allow-ips names the proxies whose X-Forwarded-For and
// X-Forwarded-Proto say who the client is (docs/web.md, "Behind a reverse proxy").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "molt/web/middleware.hpp"
#include "molt/web/openapi.hpp"
#include "molt/web/server.hpp"
#include "reports.hpp"
#include "routes.hpp"

namespace {

// "HOST:PORT", with or without "http://" before it and "/" after it.
molt::web::UpstreamOptions upstream_from(std::string text) {
  if (text.starts_with("http://")) text.erase(0, 7);
  while (text.ends_with('/')) text.pop_back();
  const auto colon = text.rfind(':');
  molt::web::UpstreamOptions upstream;
  try {
    if (colon == std::string::npos || colon == 0) throw std::invalid_argument("no port");
    const int port = std::stoi(text.substr(colon + 1));
    if (port <= 0 || port > 65535) throw std::invalid_argument("port out of range");
    upstream.host = text.substr(0, colon);
    upstream.port = static_cast<std::uint16_t>(port);
  } catch (const std::logic_error&) {
    throw std::invalid_argument("--upstream takes HOST:PORT, as 127.0.0.1:8000 (got '" + text +
                                "')");
  }
  return upstream;
}

// "127.0.0.1,10.0.0.0/8" as a list, as uvicorn's --forwarded-allow-ips takes it (an empty
// element included: proxy_headers says what is wrong with it).
std::vector<std::string> comma_list(std::string_view text) {
  std::vector<std::string> items;
  for (bool last = false; !last;) {
    last = text.find(',') == std::string_view::npos;
    items.emplace_back(molt::web::next_list_element(text));
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"molt-demo: the molt::web example service"};
  molt::web::ServerOptions options;
  options.host = "0.0.0.0";
  std::string db_path = "molt-demo.sqlite3";
  unsigned blocking_threads = 0;
  unsigned job_threads = 1;
  bool access_log = false;
  std::string upstream;
  std::string items_path;
  std::optional<std::string> forwarded_allow_ips;
  cli.add_option("--port", options.port, "TCP port (0: any free port)")->capture_default_str();
  cli.add_option("--host", options.host, "address to listen on")->capture_default_str();
  cli.add_option("--threads", options.threads, "I/O threads (0: one per core)")
      ->capture_default_str();
  cli.add_option("--blocking-threads", blocking_threads,
                 "threads for database work (0: two per core; more pay only while they wait)")
      ->capture_default_str();
  cli.add_option("--job-threads", job_threads,
                 "threads running the report jobs (0: none; another process may run them)")
      ->capture_default_str();
  cli.add_option("--db", db_path, "SQLite file, created and seeded when missing")
      ->capture_default_str();
  cli.add_flag("--access-log", access_log, "one JSON line per request on stderr");
  cli.add_option("--forwarded-allow-ips", forwarded_allow_ips,
                 "behind a reverse proxy: the proxies (addresses, networks, or *) whose "
                 "X-Forwarded-For and X-Forwarded-Proto name the client");
  auto* upstream_option = cli.add_option(
      "--upstream", upstream, "gateway mode: forward what no route takes to HOST:PORT (Django)");
  cli.add_option("--items-path", items_path,
                 "gateway mode: also serve /items at this path (Django's /offload/)")
      ->needs(upstream_option);
  CLI11_PARSE(cli, argc, argv);

  try {
    // Checked before the database is opened (and seeded): a typo fails at once.
    molt_demo::GatewaySettings gateway;
    if (!upstream.empty())
      gateway = {.upstream = upstream_from(upstream), .items_path = items_path};
    molt::web::Middleware proxy_headers;
    if (forwarded_allow_ips)
      proxy_headers =
          molt::web::proxy_headers({.trusted_proxies = comma_list(*forwarded_allow_ips)});
    const char* dsn = std::getenv("MOLT_DB_POSTGRES_DSN");
    auto store = dsn && *dsn ? molt_demo::ItemsStore::open_postgres(dsn)
                             : molt_demo::ItemsStore::open_sqlite(db_path);
    // From here on a SIGTERM waits for wait_for_signal(), which drains; blocked before any
    // thread starts, since a thread that does not block it would take it and end the process.
    molt::web::Server::block_stop_signals();
    if (blocking_threads == 0) blocking_threads = 2 * molt::core::usable_cores();
    molt::core::BlockingPool pool(blocking_threads, 256);
    molt_demo::Services services{std::move(store), pool};
    // Report jobs live in the same database, and run here unless --job-threads is 0.
    molt::jobs::JobStore jobs(services.items.database());
    jobs.install();
    std::optional<molt::jobs::JobRunner> runner;
    if (job_threads > 0) {
      runner.emplace(jobs, molt::jobs::JobRunnerOptions{.threads = job_threads});
      molt_demo::handle_report_jobs(*runner, services.items);
      runner->start();
    }

    molt::web::App app;
    if (proxy_headers) app.use(std::move(proxy_headers));  // first: the rest see the client
    app.use(molt::web::request_id());
    if (access_log) app.use(molt::web::access_log());
    molt_demo::add_routes(app, services);
    molt_demo::add_report_routes(app, services, jobs);
    molt::web::serve_openapi(
        app, {.title = "molt-demo",
              .version = "0.1.0",
              .description = "The example service of molt::web: the list_items contract "
                             "over SQLite or PostgreSQL."});
    if (!upstream.empty()) molt_demo::add_gateway(app, services, gateway);

    molt::web::Server server(app, options);
    server.start();
    std::fprintf(stderr, "molt-demo: serving http://%s:%u with %u threads (%s database)\n",
                 options.host.c_str(), static_cast<unsigned>(server.port()), server.threads(),
                 std::string(services.items.backend()).c_str());
    if (!upstream.empty())
      std::fprintf(stderr, "molt-demo: gateway to http://%s for the rest\n", upstream.c_str());
    server.wait_for_signal();
    // The runs going get a moment to end; what is left goes back to the queue.
    if (runner) runner->stop(std::chrono::seconds(5));
    pool.close();
    std::fprintf(stderr, "molt-demo: stopped\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "molt-demo: %s\n", error.what());
    return 2;
  }
  return 0;
}
