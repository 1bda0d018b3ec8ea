#include "molt/worker/export_jobs.hpp"

#include <cstdio>
#include <stdexcept>

#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/db/postgres.hpp"
#include "molt/db/sqlite.hpp"

namespace molt::worker {
namespace {

bool is_structured(ipc::Codec codec) {
  return codec == ipc::Codec::Json || codec == ipc::Codec::MsgPack;
}

std::shared_ptr<db::Database> open_jobs_database(const ExportJobsSettings& settings) {
  if (settings.sqlite_path.empty() == settings.postgres_dsn.empty())
    throw std::invalid_argument(
        "the jobs' database is a SQLite file or a PostgreSQL DSN, one of the two");
  if (!settings.sqlite_path.empty())
    return db::open_sqlite({.path = settings.sqlite_path, .read_write = true, .create = true});
  return db::open_postgres({.dsn = settings.postgres_dsn});
}

}  // namespace

bool can_run_as_job(const Export& entry) {
  return is_structured(entry.spec.codec_in) && is_structured(entry.spec.codec_out);
}

jobs::JobHandler export_job_handler(const Export& entry) {
  return [&entry](jobs::JobContext& job) {
    // A job's payload is JSON text; an export that reads MsgPack gets the same value so.
    std::string packed;
    std::string_view payload = job.payload();
    if (entry.spec.codec_in == ipc::Codec::MsgPack) {
      packed = codec::to_msgpack(codec::parse_json(payload));
      payload = packed;
    }
    ExportContext context(job.cancel, core::Deadline::none());
    std::string answer = entry.invoke(payload, context);
    const ipc::Codec answered = context.codec_out().value_or(entry.spec.codec_out);
    if (answered == ipc::Codec::MsgPack)
      answer = codec::to_json(codec::decode_msgpack<boost::json::value>(answer, "answer"));
    else if (answered != ipc::Codec::Json)
      throw core::InvalidInput("the export " + entry.spec.name + " answered in " +
                               std::string(ipc::to_string(answered)) +
                               ", which a job's result (JSON text) cannot hold");
    job.result = std::move(answer);
  };
}

ExportJobs::ExportJobs(const ExportTable& exports, const ExportJobsSettings& settings,
                       std::string name)
    : db_(open_jobs_database(settings)) {
  store_ = std::make_unique<jobs::JobStore>(db_, jobs::JobStoreOptions{.table = settings.table});
  store_->install();
  runner_ = std::make_unique<jobs::JobRunner>(
      *store_, jobs::JobRunnerOptions{.queues = settings.queues,
                                      .threads = settings.threads,
                                      .poll_interval = settings.poll_interval,
                                      .max_run_time = settings.max_run_time,
                                      .log = [name](std::string_view line) {
                                        std::fprintf(stderr, "%s: %.*s\n", name.c_str(),
                                                     static_cast<int>(line.size()), line.data());
                                      }});
  for (const auto& [kind, entry] : exports.all()) {
    if (!can_run_as_job(*entry)) continue;
    runner_->handle(kind, export_job_handler(*entry));
    ++kinds_;
  }
}

}  // namespace molt::worker
