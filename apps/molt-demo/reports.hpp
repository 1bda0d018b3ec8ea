// The demo's durable jobs (molt::jobs, docs/jobs.md): a report of a user's items, asked for
// over HTTP, computed by a JobRunner in the same process, read back by its id.
//
//   POST   /reports        {"user_id": 7}   202, the job (Location: /reports/{id});
//                           Idempotency-Key: a repeat gives back the first job
//   GET    /reports/{id}                    the job: its state, and the report once done
//   DELETE /reports/{id}                    cancels it (409 once it has finished)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "items.hpp"
#include "molt/jobs/job_runner.hpp"
#include "molt/jobs/job_store.hpp"
#include "routes.hpp"

namespace molt_demo {

inline constexpr std::string_view kReportJob = "items.report";

struct ReportRequest {
  std::int64_t user_id = 0;
};
BOOST_DESCRIBE_STRUCT(ReportRequest, (), (user_id))
MOLT_RULES(ReportRequest, rule(&ReportRequest::user_id, at_least(1)))

// A report job as the routes show it.
struct ReportJob {
  std::int64_t id = 0;
  std::string state;  // queued, running, succeeded, failed, cancelled
  int attempts = 0;
  int max_attempts = 0;
  std::optional<ItemSummary> report;  // once it succeeded
  std::optional<std::string> error;   // the latest failure's message
};
BOOST_DESCRIBE_STRUCT(ReportJob, (), (id, state, attempts, max_attempts, report, error))

// The report job's handler: the user's items summed up, stopped when the job is cancelled.
void handle_report_jobs(molt::jobs::JobRunner& runner, const ItemsStore& items);

void add_report_routes(molt::web::App& app, Services& services, molt::jobs::JobStore& jobs);

}  // namespace molt_demo
