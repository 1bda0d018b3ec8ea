// The router of molt::web: patterns like `/users/{id:int}/posts/{slug}` and
// `/static/{rest:path}`, compiled at startup into a tree of path segments, so that a request
// is matched by walking its segments once (no regex per request).
//
// Rules, checked when routes are added (a bad table fails at startup, never at a request):
// - a parameter is `{name}` (one non-empty segment), `{name:int}` (decimal digits that fit
//   in int64) or `{name:path}` (the rest of the path, slashes included; last only);
// - literal segments win over parameters: `/users/me` is tried before `/users/{id}`;
// - two parameters of different kinds, or of different names, at the same place are
//   ambiguous and refused; so is the same method twice on the same pattern;
// - route names (for url_for) are unique.
// Requests are matched on percent-decoded segments; an invalid escape, a `.` or `..`
// segment, or more than kMaxSegments segments is a bad path (400), not a 404. A path that
// is not UTF-8 (raw or decoded) matches no route: patterns are UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace molt::web {

// A route table that cannot work: the message names the route and the reason.
class RouteError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class ParamKind { Str, Int, Path };

// A parameter of a route pattern: `/users/{id:int}` has {"id", Int}.
struct PatternParam {
  std::string_view name;  // a view into the pattern
  ParamKind kind;
};
// The parameters of `pattern`, in order; RouteError if the router would refuse it.
std::vector<PatternParam> pattern_params(std::string_view pattern);

class RouteMatch {
 public:
  enum class Outcome {
    Found,             // route() is the handler to run
    NotFound,          // 404
    MethodNotAllowed,  // 405; allow() lists what the path does take
    Options,           // an OPTIONS request the routes do not handle: answer 204 + allow()
    BadPath,           // 400: invalid escape, dot segment, too many segments
  };

  Outcome outcome() const { return outcome_; }
  bool found() const { return outcome_ == Outcome::Found; }
  // The id given to Router::add for the matched route; for MethodNotAllowed and Options, the
  // first route the path matched.
  std::size_t route() const { return route_; }
  // For MethodNotAllowed and Options: every route the path matched (each method of each), of
  // up to 8 patterns; false when more matched (then Allow names the first 8's methods).
  const std::vector<std::size_t>& routes_at_path() const { return routes_at_path_; }
  bool routes_at_path_complete() const { return routes_at_path_complete_; }
  // A HEAD request answered by the GET route: send the headers of GET without its body.
  bool head_from_get() const { return head_from_get_; }
  // "GET, HEAD, OPTIONS": the Allow header for 405 and OPTIONS answers.
  std::string_view allow() const { return allow_owned_ ? allow_storage_ : allow_; }

  // The decoded value of a path parameter, if the route has it.
  std::optional<std::string_view> param(std::string_view name) const;
  // An `{name:int}` parameter as a number (also parses `{name}` when it holds digits).
  std::optional<std::int64_t> int_param(std::string_view name) const;
  std::size_t param_count() const { return params_.size(); }
  std::pair<std::string_view, std::string_view> param_at(std::size_t i) const;

 private:
  friend class Router;
  struct Param {
    std::string_view name;
    std::size_t offset = 0;  // into decoded_ (path parameters are joined there)
    std::size_t size = 0;
  };
  Outcome outcome_ = Outcome::NotFound;
  std::size_t route_ = 0;
  bool head_from_get_ = false;
  std::string_view allow_;     // a node's own, which outlives the match
  std::string allow_storage_;  // when several patterns matched: their methods together
  bool allow_owned_ = false;   // allow() is allow_storage_ (no view into it: copies move it)
  bool routes_at_path_complete_ = true;
  std::vector<std::size_t> routes_at_path_;
  std::vector<Param> params_;
  std::string decoded_;
};

class Router {
 public:
  static constexpr std::size_t kMaxSegments = 64;

  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Adds `method pattern` as route `route_id`; `name` (optional) is for url_for.
  // Throws RouteError for a malformed pattern, an ambiguity or a duplicate.
  void add(std::string_view method, std::string_view pattern, std::size_t route_id,
           std::string_view name = {});

  // Matches a request. `path` is the request target's path, still percent-encoded, without
  // the query string.
  RouteMatch match(std::string_view method, std::string_view path) const;
  void match(std::string_view method, std::string_view path, RouteMatch& out) const;

  // The path of the route called `name` with these parameter values, percent-encoded.
  // Throws RouteError for an unknown name or a missing, extra or ill-typed parameter.
  std::string url_for(
      std::string_view name,
      const std::vector<std::pair<std::string_view, std::string_view>>& params) const;

 private:
  struct Node;
  struct NamedRoute {
    std::string name;
    std::string pattern;
  };
  std::unique_ptr<Node> root_;
  std::vector<NamedRoute> named_;
};

}  // namespace molt::web
