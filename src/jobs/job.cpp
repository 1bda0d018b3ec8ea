#include "molt/jobs/job.hpp"

#include <array>
#include <utility>

namespace molt::jobs {
namespace {
// The names stored in the table's state column.
constexpr std::array<std::pair<JobState, std::string_view>, 5> kStateNames{{
    {JobState::Queued, "queued"},
    {JobState::Running, "running"},
    {JobState::Succeeded, "succeeded"},
    {JobState::Failed, "failed"},
    {JobState::Cancelled, "cancelled"},
}};
}  // namespace

bool is_job_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 200) return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == ':' || c == '-'))
      return false;
  return true;
}

std::string_view to_string(JobState state) noexcept {
  for (const auto& [s, name] : kStateNames)
    if (s == state) return name;
  return "queued";
}

std::optional<JobState> parse_job_state(std::string_view name) noexcept {
  for (const auto& [s, n] : kStateNames)
    if (n == name) return s;
  return std::nullopt;
}

}  // namespace molt::jobs
