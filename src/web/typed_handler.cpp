#include "molt/web/typed_handler.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace molt::web {

namespace {

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

[[noreturn]] void not_authenticated(std::string message, std::string challenge) {
  throw HttpError(401, "not_authenticated", std::move(message),
                  {{"WWW-Authenticate", std::move(challenge)}});
}

// RFC 6750 §3.1: a request the scheme cannot read is a 400, not a 401.
[[noreturn]] void invalid_bearer_request(std::string message) {
  throw HttpError(400, "invalid_request", std::move(message),
                  {{"WWW-Authenticate", "Bearer error=\"invalid_request\""}});
}

// RFC 9110 §11.2's token68: letters, digits and -._~+/, then any '='.
bool is_token68(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (is_ascii_alnum(text[i]) ||
                             std::string_view("-._~+/").find(text[i]) != std::string_view::npos))
    ++i;
  if (i == 0) return false;
  while (i < text.size() && text[i] == '=') ++i;
  return i == text.size();
}

}  // namespace

BearerToken BearerToken::from_request(const Request& request, Ctx&) {
  // Authorization holds one value (RFC 9110 §11.6.2): of two lines, a proxy might check one
  // and this server read the other.
  const auto lines =
      std::count_if(request.headers().begin(), request.headers().end(),
                    [](const Header& h) { return iequals(h.name, "Authorization"); });
  if (lines > 1)
    invalid_bearer_request("send one Authorization header, not " + std::to_string(lines));
  const std::optional<std::string_view> header = request.header("Authorization");
  if (!header) not_authenticated("an Authorization: Bearer header is required", "Bearer");
  const std::string_view value = trim_ows(*header);
  const std::size_t space = value.find(' ');
  const std::string_view scheme = value.substr(0, space);
  if (!iequals(scheme, "Bearer"))
    not_authenticated("the Authorization header must be Bearer <token>", "Bearer");
  const std::string_view token =
      space == std::string_view::npos ? std::string_view() : trim_ows(value.substr(space + 1));
  if (token.empty()) not_authenticated("the Authorization header has no bearer token", "Bearer");
  if (!is_token68(token)) invalid_bearer_request("the bearer token is not a token (RFC 6750 §2.1)");
  return {std::string(token)};
}

void BearerToken::describe(RouteDoc& doc) {
  doc.security("bearer", {.type = "http", .scheme = "bearer"})
      .error(401, "No bearer token")
      .error(400, "An Authorization header that is not one bearer token");
}

namespace detail {

void missing_api_key(std::string_view where, std::string_view name) {
  not_authenticated(
      "an API key is required in the " + std::string(where) + " '" + std::string(name) + "'",
      "APIKey");
}

void describe_api_key(RouteDoc& doc, std::string_view in, std::string_view name) {
  // One scheme per place and name, so that routes reading one key share it, and no two keys
  // share a scheme: "apiKey.header.x-api-key" (header names in any case), "apiKey.cookie.sid".
  // A components key is letters, digits, '.', '-' and '_'.
  std::string scheme = "apiKey." + std::string(in) + ".";
  for (const char c : name) {
    const bool kept = is_ascii_alnum(c) || c == '.' || c == '-' || c == '_';
    scheme += !kept ? '_' : in == "header" && c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
  }
  doc.security(std::move(scheme),
               {.type = "apiKey", .in = std::string(in), .name = std::string(name)})
      .error(401, "No API key");
}

}  // namespace detail

}  // namespace molt::web
