#include "http_date.hpp"

#include <array>

namespace molt::web::detail {

std::string http_date(std::time_t when) {
  std::tm utc{};
  gmtime_r(&when, &utc);
  std::array<char, 40> text{};
  const std::size_t n = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text.data(), n);
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
  if (text.size() > 64) return std::nullopt;
  const std::string copy(text);  // strptime reads a NUL-terminated string
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm utc{};
    const char* end = strptime(copy.c_str(), format, &utc);
    if (end != nullptr && *end == '\0') return timegm(&utc);
  }
  return std::nullopt;
}

}  // namespace molt::web::detail
