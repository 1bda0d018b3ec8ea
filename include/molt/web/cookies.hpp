// Cookies (RFC 6265): the request's, read by name, and the client's, set and deleted through
// the answer's Set-Cookie headers.
//
//   if (auto session = molt::web::cookie(request, "session")) { ... }
//   molt::web::set_cookie(response, "session", token,
//                         {.max_age = std::chrono::hours(12), .secure = true, .http_only = true});
//   molt::web::delete_cookie(response, "session");
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/web/message.hpp"

namespace molt::web {

// The value of the cookie called `name` (names compare exactly), without the double quotes
// around it if it has them; std::nullopt when the request has none. When it has several of
// that name (a browser sends one per matching path, the longest path first), the first.
std::optional<std::string_view> cookie(const Request& request, std::string_view name);
// Every cookie of the request, in the order sent, of every Cookie header. Pieces without a
// '=' are skipped, as browsers do.
std::vector<std::pair<std::string_view, std::string_view>> cookies(const Request& request);

enum class SameSite { Lax, Strict, None, Unset };

struct CookieOptions {
  // How long the client keeps it; until the browser closes when absent (a session cookie).
  std::optional<std::chrono::seconds> max_age;
  std::string path = "/";
  std::string domain;      // "" : this host only
  bool secure = false;     // sent over HTTPS only
  bool http_only = false;  // hidden from the page's scripts
  // Lax, as browsers assume and FastAPI sets; None requires `secure` (browsers drop it
  // otherwise).
  SameSite same_site = SameSite::Lax;
};

// Adds a Set-Cookie header. A name must be a token and a value cookie octets (no spaces,
// quotes, commas, semicolons or backslashes: base64url or percent-encode anything else), and
// path and domain hold no ';' or control characters: std::invalid_argument otherwise, before
// anything is added.
void set_cookie(Response& response, std::string_view name, std::string_view value,
                const CookieOptions& options = {});
// Tells the client to drop the cookie `name`: give the path and domain it was set with.
void delete_cookie(Response& response, std::string_view name, const CookieOptions& options = {});

}  // namespace molt::web
