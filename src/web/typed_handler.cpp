#include "molt/web/typed_handler.hpp"

#include <cctype>
#include <string>
#include <string_view>

namespace molt::web {

namespace {

[[noreturn]] void not_authenticated(std::string message, std::string challenge) {
  throw HttpError(401, "not_authenticated", std::move(message))
      .with_header("WWW-Authenticate", std::move(challenge));
}

// RFC 9110 §11.2's token68: letters, digits and -._~+/, then any '='.
bool is_token68(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                             std::string_view("-._~+/").find(text[i]) != std::string_view::npos))
    ++i;
  if (i == 0) return false;
  while (i < text.size() && text[i] == '=') ++i;
  return i == text.size();
}

}  // namespace

BearerToken BearerToken::from_request(const Request& request, Ctx&) {
  const std::optional<std::string_view> header = request.header("Authorization");
  if (!header) not_authenticated("an Authorization: Bearer header is required", "Bearer");
  const std::string_view value = trim_ows(*header);
  const std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Bearer"))
    not_authenticated("the Authorization header must be Bearer <token>", "Bearer");
  const std::string_view token = trim_ows(value.substr(space + 1));
  if (!is_token68(token))
    not_authenticated("the bearer token is not a token (RFC 6750)",
                      "Bearer error=\"invalid_request\"");
  return {std::string(token)};
}

void BearerToken::describe(RouteDoc& doc) {
  doc.security("bearer", {.type = "http", .scheme = "bearer"})
      .error(401, "No bearer token, or one that is not a token");
}

namespace detail {

void missing_api_key(std::string_view where, std::string_view name) {
  not_authenticated(
      "an API key is required in the " + std::string(where) + " '" + std::string(name) + "'",
      "APIKey");
}

void describe_api_key(RouteDoc& doc, std::string_view in, std::string_view name) {
  // One scheme per place and name, so that routes reading one key share it: "X-Api-Key" for a
  // header, "session_cookie" for a cookie (a components key is letters, digits, '.', '-', '_').
  std::string scheme(name);
  for (char& c : scheme)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  if (in != "header") scheme += "_" + std::string(in);
  doc.security(std::move(scheme),
               {.type = "apiKey", .in = std::string(in), .name = std::string(name)})
      .error(401, "No API key");
}

}  // namespace detail

}  // namespace molt::web
