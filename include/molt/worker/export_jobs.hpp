#pragma once
// A worker's exports as durable jobs (docs/jobs.md, "From Django"): a job of kind
// "list_items" is a call of the export "list_items" with the job's payload (JSON text), and
// the export's answer, as JSON, is the job's result. What a Django task enqueues through
// molt_accel's task backend, `molt-worker --jobs-sqlite PATH` (or --jobs-postgres DSN) runs.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "molt/jobs/job_runner.hpp"
#include "molt/jobs/job_store.hpp"
#include "molt/worker/export_registry.hpp"

namespace molt::worker {

struct ExportJobsSettings {
  std::string sqlite_path;   // the jobs' database: a SQLite file (created when missing) ...
  std::string postgres_dsn;  // ... or PostgreSQL; exactly one of the two
  std::string table = "molt_jobs";
  std::vector<std::string> queues{"default"};
  std::size_t threads = 2;
  std::chrono::milliseconds max_run_time{0};  // 0: none
  // How often an idle runner looks for jobs other processes enqueued on SQLite (PostgreSQL's
  // are heard at once): a claim and a look at the next due time, both by index.
  std::chrono::milliseconds poll_interval{250};
};

// The job handler that calls `entry`: the payload turned into the export's codec, the answer
// into JSON text. Exports that neither take nor give JSON or MsgPack cannot be jobs.
jobs::JobHandler export_job_handler(const Export& entry);
bool can_run_as_job(const Export& entry);

// A job store on the settings' database (its table installed) and a runner whose handlers
// are the table's exports.
class ExportJobs {
 public:
  // Throws (core::Error, std::invalid_argument) with a message for the operator when the
  // database cannot be opened or a setting is wrong.
  ExportJobs(const ExportTable& exports, const ExportJobsSettings& settings, std::string name);
  void start() { runner_->start(); }
  void stop(std::chrono::milliseconds grace) { runner_->stop(grace); }
  std::size_t kinds() const noexcept { return kinds_; }

 private:
  std::shared_ptr<db::Database> db_;
  std::unique_ptr<jobs::JobStore> store_;
  std::unique_ptr<jobs::JobRunner> runner_;
  std::size_t kinds_ = 0;
};

}  // namespace molt::worker
