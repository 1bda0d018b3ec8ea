#include "molt/core/status.hpp"

#include <array>
#include <utility>

namespace molt::core {
namespace {
constexpr std::array<std::pair<StatusCode, std::string_view>, 6> kNames{{
    {StatusCode::Ok, "Ok"},
    {StatusCode::InvalidInput, "InvalidInput"},
    {StatusCode::Busy, "Busy"},
    {StatusCode::Timeout, "Timeout"},
    {StatusCode::Cancelled, "Cancelled"},
    {StatusCode::InternalError, "InternalError"},
}};
}  // namespace

std::string_view to_string(StatusCode code) noexcept {
  for (const auto& [c, name] : kNames)
    if (c == code) return name;
  return "InternalError";
}

std::optional<StatusCode> parse_status_code(std::string_view name) noexcept {
  for (const auto& [c, n] : kNames)
    if (n == name) return c;
  return std::nullopt;
}

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool gap = false;
  for (const char c : text) {
    const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    if (control || c == ' ') {
      gap = !out.empty();
      continue;
    }
    if (gap) out += ' ';
    gap = false;
    out += c;
  }
  return out;
}

}  // namespace molt::core
