#include "molt/web/cookies.hpp"

#include <algorithm>
#include <stdexcept>

namespace molt::web {

namespace {

// RFC 9110 §5.6.2 tchar.
bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 6265 §4.1.1 cookie-octet: visible ASCII but DQUOTE, comma, semicolon and backslash.
bool is_cookie_octet(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7E && c != '"' && c != ',' && c != ';' && c != '\\';
}

// An attribute value (Path, Domain): any visible character but ';'.
bool is_attribute_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x7F && c != ';';
}

// A host name: letters, digits, dots and hyphens (a leading dot is old style, and allowed).
bool is_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

void require(bool ok, std::string_view what, std::string_view name) {
  if (ok) return;
  std::string shown;  // the name as sent may hold the very bytes refused (CR, LF)
  for (const char c : name.substr(0, 64)) shown += is_cookie_octet(c) || c == ' ' ? c : '?';
  throw std::invalid_argument("cookie '" + shown + "': " + std::string(what));
}

template <typename Fn>
void for_each_cookie(const Request& request, Fn fn) {
  for (const Header& header : request.headers()) {
    if (!iequals(header.name, "Cookie")) continue;
    std::string_view list = header.value;
    while (!list.empty()) {
      const std::string_view pair = next_list_element(list, ';');
      const std::size_t equals = pair.find('=');
      if (equals == std::string_view::npos) continue;
      const std::string_view name = trim_ows(pair.substr(0, equals));
      std::string_view value = trim_ows(pair.substr(equals + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (fn(name, value)) return;
    }
  }
}

const char* same_site_text(SameSite same_site) {
  switch (same_site) {
    case SameSite::Lax:
      return "Lax";
    case SameSite::Strict:
      return "Strict";
    case SameSite::None:
      return "None";
    case SameSite::Unset:
      break;
  }
  return nullptr;
}

}  // namespace

std::optional<std::string_view> cookie(const Request& request, std::string_view name) {
  std::optional<std::string_view> found;
  for_each_cookie(request, [&](std::string_view n, std::string_view value) {
    if (n != name) return false;
    found = value;
    return true;
  });
  return found;
}

std::vector<std::pair<std::string_view, std::string_view>> cookies(const Request& request) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for_each_cookie(request, [&](std::string_view name, std::string_view value) {
    out.emplace_back(name, value);
    return false;
  });
  return out;
}

void set_cookie(Response& response, std::string_view name, std::string_view value,
                const CookieOptions& options) {
  require(!name.empty() && std::all_of(name.begin(), name.end(), is_token_char),
          "a name is a token (letters, digits and !#$%&'*+-.^_`|~)", name);
  require(std::all_of(value.begin(), value.end(), is_cookie_octet),
          "a value holds no spaces, quotes, commas, semicolons, backslashes or control "
          "characters (base64url or percent-encode it)",
          name);
  require(std::all_of(options.path.begin(), options.path.end(), is_attribute_char),
          "a path holds no ';' or control characters", name);
  require(std::all_of(options.domain.begin(), options.domain.end(), is_domain_char),
          "a domain is a host name (letters, digits, '.' and '-')", name);
  require(options.same_site != SameSite::None || options.secure,
          "SameSite=None needs secure (browsers drop it otherwise)", name);
  std::string line;
  line.append(name).append("=").append(value);
  if (options.max_age) line.append("; Max-Age=").append(std::to_string(options.max_age->count()));
  if (!options.path.empty()) line.append("; Path=").append(options.path);
  if (!options.domain.empty()) line.append("; Domain=").append(options.domain);
  if (options.secure) line.append("; Secure");
  if (options.http_only) line.append("; HttpOnly");
  if (const char* same_site = same_site_text(options.same_site))
    line.append("; SameSite=").append(same_site);
  response.add_header("Set-Cookie", std::move(line));
}

void delete_cookie(Response& response, std::string_view name, const CookieOptions& options) {
  CookieOptions gone = options;
  gone.max_age = std::chrono::seconds(0);
  set_cookie(response, name, "", gone);
}

}  // namespace molt::web
