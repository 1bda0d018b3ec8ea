#include "reports.hpp"

#include "molt/codec/json.hpp"
#include "molt/web/blocking.hpp"
#include "molt/web/typed_handler.hpp"

namespace molt_demo {
namespace {

using boost::asio::awaitable;
using molt::web::HttpError;
using molt::web::Path;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteDoc;

ReportJob view_of(const molt::jobs::JobInfo& info) {
  ReportJob view{.id = info.id,
                 .state = std::string(molt::jobs::to_string(info.state)),
                 .attempts = info.attempts,
                 .max_attempts = info.max_attempts,
                 .error = info.last_error};
  if (info.result) view.report = molt::codec::decode_json<ItemSummary>(*info.result);
  return view;
}

// The report job `id`, or a 404 (a job of another kind is not a report).
ReportJob find_report(molt::jobs::JobStore& jobs, std::int64_t id) {
  const auto info = jobs.find(id);
  if (!info || info->kind != kReportJob)
    throw HttpError(404, "not_found", "no report job " + std::to_string(id));
  return view_of(*info);
}

Response accepted(const Request& request, const ReportJob& job) {
  Response answer = molt::web::respond(request, job, 202);
  answer.add_header("Location", "/reports/" + std::to_string(job.id));
  return answer;
}

}  // namespace

void handle_report_jobs(molt::jobs::JobRunner& runner, const ItemsStore& items) {
  runner.handle(std::string(kReportJob), [&items](molt::jobs::JobContext& job) {
    const auto request = molt::codec::decode_json<ReportRequest>(job.payload());
    const auto summary = items.summary(
        request.user_id, molt::core::Deadline::after(std::chrono::seconds(30)), job.cancel);
    job.result = molt::codec::to_json(summary);
  });
}

void add_report_routes(molt::web::App& app, Services& services, molt::jobs::JobStore& jobs) {
  app.post(
      "/reports",
      [&services, &jobs](const Request& request, molt::web::Body<ReportRequest> body,
                         molt::web::HeaderParam<"Idempotency-Key", std::optional<std::string>> key)
          -> awaitable<Response> {
        molt::jobs::NewJob job{.kind = std::string(kReportJob),
                               .payload = molt::codec::to_json(*body),
                               .idempotency_key = *key};
        std::optional<ReportJob> made;
        try {
          made = co_await molt::web::run_blocking(
              services.pool, [&] { return find_report(jobs, jobs.enqueue(job).id); });
        } catch (const molt::jobs::QueueFull& e) {
          // Say when to come back rather than lose the request.
          throw HttpError(503, "queue_full", e.message(), {{"Retry-After", "5"}});
        }
        co_return accepted(request, *made);
      },
      "reports.create",
      {.doc = RouteDoc("Ask for a report of a user's items")
                  .tag("reports")
                  .description("The report is computed by a durable job: the answer is the "
                               "job, and GET /reports/{id} shows it done. A repeat with the "
                               "same Idempotency-Key gives back the first job.")
                  .returns<ReportJob>(202, "The job, queued")
                  .error(503, "The job queue is full (Retry-After)")});

  app.get("/reports/{id:int}",
          [&services, &jobs](Path<"id", std::int64_t> id) -> awaitable<ReportJob> {
            ReportJob found = co_await molt::web::run_blocking(
                services.pool, [&] { return find_report(jobs, *id); });
            co_return found;
          },
          "reports.show",
          {.doc = RouteDoc("A report job, with its report once done")
                      .tag("reports")
                      .path_param("id", "the job's id")
                      .error(404, "No report job has this id")});

  app.del("/reports/{id:int}",
          [&services, &jobs](const Request& request,
                             Path<"id", std::int64_t> id) -> awaitable<Response> {
            ReportJob job = co_await molt::web::run_blocking(services.pool, [&] {
              find_report(jobs, *id);
              if (!jobs.cancel(*id))
                throw HttpError(409, "finished",
                                "report job " + std::to_string(*id) +
                                    " has finished; there is nothing to cancel");
              return find_report(jobs, *id);
            });
            // A running job stops at its runner's next heartbeat: "running" until then.
            co_return accepted(request, job);
          },
          "reports.cancel",
          {.doc = RouteDoc("Cancel a report job")
                      .tag("reports")
                      .path_param("id", "the job's id")
                      .returns<ReportJob>(202, "The job, cancelled or asked to stop")
                      .error(404, "No report job has this id")
                      .error(409, "The job has finished")});
}

}  // namespace molt_demo
