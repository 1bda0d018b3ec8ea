#include "molt/worker/worker_main.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "molt/core/blocking_pool.hpp"
#include "molt/worker/dispatcher.hpp"
#include "molt/worker/export_jobs.hpp"
#include "molt/worker/stdio_server.hpp"

namespace molt::worker {
namespace {

struct WorkerSettings {
  std::size_t threads = core::usable_cores();
  std::size_t max_queue = 64;
  std::string exports_path;
  std::size_t max_frame = ipc::kDefaultMaxFrame;
  std::size_t max_pending_bytes = ipc::kDefaultMaxFrame;
  std::int64_t shutdown_grace_ms = 5000;
  bool print_exports = false;
  bool log_requests = false;
  bool stdio = true;
  // Durable jobs (docs/jobs.md): the exports also run as the jobs of this database's queues.
  ExportJobsSettings jobs;
  std::string jobs_queues = "default";
  std::int64_t jobs_max_run_time_ms = 0;
  std::int64_t jobs_poll_ms = 250;
  bool jobs_only = false;  // no stdio: run jobs until SIGTERM
};

// CLI11 gives flags precedence over the environment, as DESIGN.md §4 asks.
void add_options(CLI::App& app, WorkerSettings& s) {
  app.add_option("--threads", s.threads, "handler threads (default: cores)")
      ->envname("MOLT_WORKER_THREADS")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-queue", s.max_queue, "requests that may wait for a thread; more -> Busy")
      ->envname("MOLT_WORKER_MAX_QUEUE")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--exports", s.exports_path,
                 "exports manifest (JSON); default: every export built into this binary")
      ->envname("MOLT_WORKER_EXPORTS");
  app.add_option("--max-frame-size", s.max_frame, "largest accepted frame, bytes")
      ->envname("MOLT_WORKER_MAX_FRAME_SIZE")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 31));
  app.add_option("--max-pending-bytes", s.max_pending_bytes,
                 "payload bytes that requests may hold together; more -> Busy")
      ->envname("MOLT_WORKER_MAX_PENDING_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
  app.add_option("--shutdown-grace-ms", s.shutdown_grace_ms,
                 "how long running work may take to stop at shutdown")
      ->envname("MOLT_WORKER_SHUTDOWN_GRACE_MS")
      ->check(CLI::Range(0, 600000));
  app.add_flag("--log-requests", s.log_requests, "one JSON line per request on stderr")
      ->envname("MOLT_WORKER_LOG_REQUESTS");
  app.add_flag("--stdio", s.stdio, "serve frames on stdin/stdout (the default)");
  app.add_flag("--print-exports", s.print_exports,
               "print the manifest of the built-in exports and exit");
  auto* sqlite = app.add_option("--jobs-sqlite", s.jobs.sqlite_path,
                                "also run the exports as durable jobs from this SQLite file")
                     ->envname("MOLT_JOBS_SQLITE_PATH");
  app.add_option("--jobs-postgres", s.jobs.postgres_dsn,
                 "also run the exports as durable jobs from this PostgreSQL database")
      ->envname("MOLT_JOBS_POSTGRES_DSN")
      ->excludes(sqlite);
  app.add_option("--jobs-queues", s.jobs_queues, "the job queues to run, comma-separated")
      ->envname("MOLT_JOBS_QUEUES")
      ->capture_default_str();
  app.add_option("--jobs-threads", s.jobs.threads, "jobs run at once")
      ->envname("MOLT_JOBS_THREADS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--jobs-table", s.jobs.table, "the jobs' table")
      ->envname("MOLT_JOBS_TABLE")
      ->capture_default_str();
  app.add_option("--jobs-max-run-time-ms", s.jobs_max_run_time_ms,
                 "a job running longer is stopped and fails (0: no limit)")
      ->envname("MOLT_JOBS_MAX_RUN_TIME_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
  app.add_option("--jobs-poll-ms", s.jobs_poll_ms,
                 "how often an idle runner looks for jobs of other processes (SQLite)")
      ->envname("MOLT_JOBS_POLL_MS")
      ->check(CLI::Range(std::int64_t{10}, std::int64_t{60'000}))
      ->capture_default_str();
  app.add_flag("--jobs-only", s.jobs_only, "run jobs only (no stdio), until SIGTERM or SIGINT")
      ->envname("MOLT_JOBS_ONLY");
  // Given on the command line, --stdio means a pipe worker, whatever the environment says.
  app.get_option("--stdio")->excludes("--jobs-only");
}

// "a,b" as a list of queue names.
std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Whether `argv` gives `flag` itself ("--threads 2" or "--threads=2").
bool given_on_command_line(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == flag || (arg.starts_with(flag) && arg.substr(flag.size()).starts_with('=')))
      return true;
  }
  return false;
}

// CLI11 names the flag in its refusal even when the value came from the environment; a user
// who set MOLT_WORKER_THREADS=abc should read that name.
void name_the_environment(const CLI::App& app, const CLI::ParseError& error, int argc, char** argv,
                          const std::string& name) {
  const std::string_view what = error.what();
  for (const CLI::Option* option : app.get_options()) {
    const std::string flag = option->get_name();
    const std::string env = option->get_envname();
    const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (value && what.find(flag) != std::string_view::npos &&
        !given_on_command_line(argc, argv, flag))
      std::fprintf(stderr, "%s: %s took its value from %s=%s\n", name.c_str(), flag.c_str(),
                   env.c_str(), value);
  }
}

// SIGTERM/SIGINT are taken by a dedicated thread (sigwait) and turned into a stop request;
// SIGUSR1, with an empty handler and no SA_RESTART, interrupts the reader's read(2).
void on_wakeup(int) {}

void install_signal_handling(sigset_t& stop_signals) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);  // a closed stdout is an EPIPE, not a crash

  struct sigaction wake {};
  wake.sa_handler = on_wakeup;
  sigemptyset(&wake.sa_mask);
  wake.sa_flags = 0;
  sigaction(SIGUSR1, &wake, nullptr);

  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // Blocked before any thread starts, so every thread inherits it and only sigwait sees them.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

// The program's file name: a custom worker built on run_worker logs under its own name.
std::string program_name(int argc, char** argv) {
  const std::string_view path = argc > 0 && argv[0] && *argv[0] ? argv[0] : "molt-worker";
  const std::string_view name = path.substr(path.find_last_of('/') + 1);
  return std::string(name.empty() ? "molt-worker" : name);
}

// Stops the jobs: their runs get `grace`, then are cancelled; a job export that ignores its
// cancellation gets `grace` once more, and then the process ends without it (its lease runs
// out, and the job runs again elsewhere).
void stop_jobs_within(ExportJobs& jobs, std::chrono::milliseconds grace, const std::string& name) {
  auto stopped = std::async(std::launch::async, [&] { jobs.stop(grace); });
  if (stopped.wait_for(2 * grace + std::chrono::milliseconds(100)) == std::future_status::ready)
    return;
  std::fprintf(stderr, "%s: a job ignored cancellation; exiting without it\n", name.c_str());
  std::fflush(stderr);
  std::_Exit(0);
}

}  // namespace

int run_worker(int argc, char** argv, const RegisterExports& register_exports) {
  const std::string name = program_name(argc, argv);
  CLI::App app(name + ": runs exported entrypoints over length-prefixed stdio frames", name);
  WorkerSettings settings;
  add_options(app, settings);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and succeed; any other refusal is a startup error like a
    // bad manifest: CLI11 prints why, and the status is 2, not CLI11's own code (105, 109...).
    const int status = app.exit(e);
    if (status != 0) name_the_environment(app, e, argc, argv, name);
    return status == 0 ? 0 : 2;
  }

  ExportRegistry registry;
  std::optional<ExportTable> table;
  try {
    register_exports(registry);
    if (settings.print_exports) {
      std::cout << ipc::to_json(registry.manifest());
      return 0;
    }
    table =
        settings.exports_path.empty()
            ? ExportTable::all_of(registry)
            : ExportTable::from_manifest(registry, ipc::load_manifest_file(settings.exports_path));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    return 2;
  }

  // Jobs: checked and their database opened before anything runs, so that a wrong setting
  // is a startup error.
  std::optional<ExportJobs> jobs;
  const bool want_jobs = !settings.jobs.sqlite_path.empty() || !settings.jobs.postgres_dsn.empty();
  if (settings.jobs_only && !want_jobs) {
    std::fprintf(stderr, "%s: error: --jobs-only needs --jobs-sqlite or --jobs-postgres\n",
                 name.c_str());
    return 2;
  }
  if (want_jobs) {
    try {
      settings.jobs.queues = comma_list(settings.jobs_queues);
      settings.jobs.max_run_time = std::chrono::milliseconds(settings.jobs_max_run_time_ms);
      settings.jobs.poll_interval = std::chrono::milliseconds(settings.jobs_poll_ms);
      jobs.emplace(*table, settings.jobs, name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: error: jobs: %s\n", name.c_str(), e.what());
      return 2;
    }
  }

  sigset_t stop_signals;
  install_signal_handling(stop_signals);

  const auto grace = std::chrono::milliseconds(settings.shutdown_grace_ms);
  if (jobs) {
    jobs->start();
    std::fprintf(stderr, "%s: running %zu exports as jobs of %s\n", name.c_str(), jobs->kinds(),
                 settings.jobs_queues.c_str());
  }
  if (settings.jobs_only) {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    stop_jobs_within(*jobs, grace, name);
    return 0;
  }

  FdResponseSink sink(STDOUT_FILENO);
  Dispatcher dispatcher(*table,
                        {.threads = settings.threads,
                         .max_queue = settings.max_queue,
                         .log_requests = settings.log_requests,
                         .max_frame = settings.max_frame,
                         .max_pending_bytes = settings.max_pending_bytes,
                         .name = name},
                        sink);
  StdioServer server(dispatcher, sink, STDIN_FILENO, settings.max_frame);

  const pthread_t reader_thread = pthread_self();
  std::atomic<bool> reader_done{false};
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.request_stop();
    // Re-send until the reader notices: a wake-up may land just before it enters read(2).
    while (!reader_done.load(std::memory_order_acquire)) {
      pthread_kill(reader_thread, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  std::fprintf(stderr, "%s: serving %zu exports, %zu threads, max queue %zu\n", name.c_str(),
               table->size(), settings.threads, settings.max_queue);
  server.run();
  reader_done.store(true, std::memory_order_release);

  const bool stopped = dispatcher.shutdown(grace);
  if (jobs) stop_jobs_within(*jobs, grace, name);
  if (!stopped) {
    std::fprintf(stderr, "%s: a handler ignored cancellation; exiting without it\n", name.c_str());
    std::fflush(stderr);
    sink.close();  // the answers already made, the Cancelled ones included, still go out
    std::_Exit(0);
  }
  // Release the signal thread if no signal came.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return 0;
}

}  // namespace molt::worker
