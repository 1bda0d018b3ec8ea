// fuzz_router: request paths and route patterns against molt::web::Router.
//
// Input: a first byte choosing the mode, then the text.
// - mode even: the text is "METHOD path"; it is matched against a fixed table. Properties:
//   no crash; a found route gives back, through url_for, a path that matches the same route
//   with the same parameters.
// - mode odd: the text is a pattern added to a fresh router; it is accepted or refused with
//   RouteError, and an accepted pattern's own url_for (when it has no parameters) routes back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "molt/web/router.hpp"

namespace {

using molt::web::RouteError;
using molt::web::Router;

struct Table {
  Router router;
  std::vector<std::string> names;
  Table() {
    const char* routes[][3] = {
        {"GET", "/", "root"},
        {"GET", "/users/{id:int}", "user"},
        {"GET", "/users/me", "me"},
        {"POST", "/users/{id:int}/posts/{slug}", "post"},
        {"GET", "/static/{rest:path}", "static"},
        {"GET", "/a/b/c", "abc"},
        {"GET", "/a/{x}/d", "axd"},
        {"GET", "/files/{name}", "file"},
    };
    for (const auto& route : routes) {
      router.add(route[0], route[1], names.size(), route[2]);
      names.emplace_back(route[2]);
    }
  }
};

void match_request(std::string_view text) {
  static const Table table;
  const auto space = text.find(' ');
  const std::string_view method = text.substr(0, space);
  const std::string_view path = space == std::string_view::npos ? "" : text.substr(space + 1);
  const auto match = table.router.match(method, path);
  if (!match.found()) return;
  std::vector<std::pair<std::string_view, std::string_view>> params;
  for (std::size_t i = 0; i < match.param_count(); ++i) params.push_back(match.param_at(i));
  const std::string url = table.router.url_for(table.names.at(match.route()), params);
  // A {rest:path} value keeps its slashes, and a %2F inside it was one already: the URL
  // rebuilt from it can have more segments than the router takes (kMaxSegments).
  if (static_cast<std::size_t>(std::count(url.begin(), url.end(), '/')) > Router::kMaxSegments)
    return;
  const auto back = table.router.match(method, url);
  FUZZ_CHECK(back.found() && back.route() == match.route());
  FUZZ_CHECK(back.param_count() == match.param_count());
  for (std::size_t i = 0; i < back.param_count(); ++i)
    FUZZ_CHECK(back.param_at(i) == match.param_at(i));
}

void add_pattern(std::string_view pattern) {
  Router router;
  try {
    router.add("GET", pattern, 1, "route");
  } catch (const RouteError&) {
    return;
  }
  std::string url;
  try {
    url = router.url_for("route", {});
  } catch (const RouteError&) {
    return;  // the pattern has parameters
  }
  FUZZ_CHECK(router.match("GET", url).found());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    match_request(text);
  } else {
    add_pattern(text);
  }
  return 0;
}
