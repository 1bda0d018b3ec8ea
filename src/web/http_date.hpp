// HTTP dates (RFC 9110 §5.6.7), for validators and cookies.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace molt::web::detail {

// "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, what servers send).
std::string http_date(std::time_t when);
// An IMF-fixdate, or one of the two obsolete forms recipients must still read (RFC 850
// "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994"); nothing otherwise.
std::optional<std::time_t> parse_http_date(std::string_view text);

}  // namespace molt::web::detail
