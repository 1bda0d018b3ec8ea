#include "molt/web/router.hpp"

#include <algorithm>
#include <array>
#include <boost/url/decode_view.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <charconv>

#include "molt/codec/utf8.hpp"

namespace molt::web {

struct Router::Node {
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
  std::unique_ptr<Node> param;  // a `{name}` or `{name:int}` segment
  ParamKind param_kind = ParamKind::Str;
  std::string param_name;
  std::unique_ptr<Node> rest;  // a `{name:path}` tail
  std::string rest_name;
  // Set where a pattern ends: the methods it takes, the Allow header, the pattern itself.
  std::vector<std::pair<std::string, std::size_t>> methods;
  std::string allow;
  std::string pattern;
};

namespace {

struct PatternSegment {
  std::string_view text;  // the literal, or the parameter's name
  bool is_param = false;
  ParamKind kind = ParamKind::Str;
};

bool is_name_char(char c, bool first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

bool is_token(std::string_view method) {
  if (method.empty()) return false;
  return std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool is_dot_segment(std::string_view segment) {
  return segment == "." || segment == "..";
}

// A decoded segment can hold slashes (%2F): none of the pieces between them may be '.' or
// '..' either, or a {rest:path} value could climb out of its folder ("a%2F..%2F..%2Fetc"),
// and url_for could not give the URL back.
bool has_dot_piece(std::string_view decoded) {
  while (true) {
    const auto slash = decoded.find('/');
    if (is_dot_segment(decoded.substr(0, slash))) return true;
    if (slash == std::string_view::npos) return false;
    decoded.remove_prefix(slash + 1);
  }
}

std::string describe(std::string_view method, std::string_view pattern) {
  std::string text = "route '";
  text.append(method).append(" ").append(pattern).append("'");
  return text;
}

std::vector<PatternSegment> parse_pattern(std::string_view method, std::string_view pattern) {
  const auto fail = [&](std::string_view why) {
    throw RouteError(describe(method, pattern) + ": " + std::string(why));
  };
  if (pattern.empty() || pattern.front() != '/') fail("a pattern starts with '/'");
  std::vector<PatternSegment> segments;
  std::string_view rest = pattern.substr(1);
  while (true) {
    const auto slash = rest.find('/');
    const std::string_view text = rest.substr(0, slash);
    if (!segments.empty() && segments.back().is_param && segments.back().kind == ParamKind::Path)
      fail("a {name:path} parameter must be the last segment");
    if (!text.empty() && text.front() == '{') {
      if (text.back() != '}') fail("a parameter is a whole segment: {name} or {name:kind}");
      std::string_view inside = text.substr(1, text.size() - 2);
      PatternSegment segment{inside, true, ParamKind::Str};
      if (const auto colon = inside.find(':'); colon != std::string_view::npos) {
        const std::string_view kind = inside.substr(colon + 1);
        segment.text = inside.substr(0, colon);
        if (kind == "int") {
          segment.kind = ParamKind::Int;
        } else if (kind == "path") {
          segment.kind = ParamKind::Path;
        } else if (kind != "str") {
          fail("unknown parameter kind '" + std::string(kind) + "' (str, int or path)");
        }
      }
      if (segment.text.empty() || !is_name_char(segment.text.front(), true) ||
          !std::all_of(segment.text.begin(), segment.text.end(),
                       [](char c) { return is_name_char(c, false); }))
        fail("parameter names are identifiers: {id}, {user_id}");
      for (const auto& seen : segments)
        if (seen.is_param && seen.text == segment.text)
          fail("parameter '" + std::string(segment.text) + "' appears twice");
      segments.push_back(segment);
    } else {
      if (text.find_first_of("{}") != std::string_view::npos)
        fail("a parameter is a whole segment: {name} or {name:kind}");
      if (text.find('%') != std::string_view::npos)
        fail("write literal segments decoded (no %-escapes)");
      if (is_dot_segment(text)) fail("'.' and '..' segments can never match");
      if (text.find('\0') != std::string_view::npos)
        fail("a NUL byte can never match (a path with %00 is refused)");
      if (!codec::is_valid_utf8(text))
        fail("a segment that is not UTF-8 can never match (such paths are refused)");
      segments.push_back({text, false, ParamKind::Str});
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (segments.size() > Router::kMaxSegments) fail("too many segments");
  return segments;
}

std::string build_allow(const std::vector<std::pair<std::string, std::size_t>>& methods) {
  std::vector<std::string_view> names;
  bool has_get = false, has_head = false, has_options = false;
  for (const auto& [method, id] : methods) {
    names.push_back(method);
    has_get |= method == "GET";
    has_head |= method == "HEAD";
    has_options |= method == "OPTIONS";
  }
  if (has_get && !has_head) names.push_back("HEAD");
  if (!has_options) names.push_back("OPTIONS");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string allow;
  for (const auto name : names) {
    if (!allow.empty()) allow += ", ";
    allow.append(name);
  }
  return allow;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool parse_int(std::string_view text, std::int64_t& value) {
  if (!all_digits(text)) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// Room for N values that is never initialized as a whole: a request uses the first few, and
// constructing all N (string_view's constructor zeroes it) cost every request ~kMaxSegments
// stores. Each item is written (trivial assignment) before it is read.
template <typename T, std::size_t N>
union Uninitialized {
  Uninitialized() {}
  T items[N];
};

// One capture while walking: a parameter's name and the request segments it covers.
struct Capture {
  std::string_view name;
  std::size_t first;
  std::size_t last;  // one past
};

struct Walk {
  const std::string_view* segments;
  std::size_t count;
  std::string_view method;
  std::size_t captured;
  Uninitialized<Capture, Router::kMaxSegments> captures;
  // The routes the path matched whose methods do not include `method` (the first few): the
  // 405 (or OPTIONS) answer when no later route takes the method, whose Allow lists them all.
  static constexpr std::size_t kPathOnly = 8;
  std::array<const void*, kPathOnly> path_only;  // the first path_only_count are set
  std::size_t path_only_count = 0;
  bool path_only_overflow = false;  // more than kPathOnly: Allow names the first ones
};

template <typename NodeT>
bool takes(const NodeT& node, std::string_view method) {
  for (const auto& [candidate, id] : node.methods)
    if (candidate == method || (method == "HEAD" && candidate == "GET")) return true;
  return false;
}

// Where the path ends at `node`: that route if it takes the method; otherwise the walk goes
// on (GET /static/{rest:path} still serves GET /static/upload beside POST /static/upload),
// remembering the first such route for the 405.
template <typename NodeT>
const NodeT* arrive(const NodeT& node, Walk& w) {
  if (node.methods.empty()) return nullptr;
  if (takes(node, w.method)) return &node;
  if (w.path_only_count < Walk::kPathOnly)
    w.path_only[w.path_only_count++] = &node;
  else
    w.path_only_overflow = true;
  return nullptr;
}

bool starts_absolute(const Walk& w, std::size_t index) {
  const std::string_view first = w.segments[index];
  return first.empty() ? index + 1 < w.count : first.front() == '/';
}

template <typename NodeT>
const NodeT* walk(const NodeT& node, Walk& w, std::size_t index) {
  if (index == w.count) return arrive(node, w);
  const std::string_view segment = w.segments[index];
  for (const auto& [literal, child] : node.literals) {
    if (literal == segment) {
      if (const NodeT* end = walk(*child, w, index + 1)) return end;
      break;
    }
  }
  if (node.param && !segment.empty()) {
    std::int64_t ignored = 0;
    if (node.param_kind != ParamKind::Int || parse_int(segment, ignored)) {
      w.captures.items[w.captured++] = {node.param_name, index, index + 1};
      if (const NodeT* end = walk(*node.param, w, index + 1)) return end;
      --w.captured;
    }
  }
  // A {rest:path} value is relative to its folder: one that would start with a slash
  // ("//etc/passwd", "%2Fetc") would replace the folder when joined to it, so it matches not.
  if (node.rest && !starts_absolute(w, index)) {
    if (const NodeT* end = arrive(*node.rest, w)) {
      w.captures.items[w.captured++] = {node.rest_name, index, w.count};
      return end;
    }
  }
  return nullptr;
}

}  // namespace

std::vector<PatternParam> pattern_params(std::string_view pattern) {
  std::vector<PatternParam> params;
  for (const PatternSegment& segment : parse_pattern("", pattern))
    if (segment.is_param) params.push_back({segment.text, segment.kind});
  return params;
}

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

void Router::add(std::string_view method, std::string_view pattern, std::size_t route_id,
                 std::string_view name) {
  if (!is_token(method)) throw RouteError(describe(method, pattern) + ": invalid method");
  const auto segments = parse_pattern(method, pattern);
  Node* node = root_.get();
  for (const auto& segment : segments) {
    if (!segment.is_param) {
      auto it = std::find_if(node->literals.begin(), node->literals.end(),
                             [&](const auto& entry) { return entry.first == segment.text; });
      if (it == node->literals.end()) {
        node->literals.emplace_back(std::string(segment.text), std::make_unique<Node>());
        it = std::prev(node->literals.end());
      }
      node = it->second.get();
      continue;
    }
    const bool is_path = segment.kind == ParamKind::Path;
    const bool other_kind_here = is_path ? node->param != nullptr : node->rest != nullptr;
    std::unique_ptr<Node>& slot = is_path ? node->rest : node->param;
    std::string& slot_name = is_path ? node->rest_name : node->param_name;
    const bool same_slot_differs =
        slot && (slot_name != segment.text || (!is_path && node->param_kind != segment.kind));
    if (other_kind_here || same_slot_differs)
      throw RouteError(describe(method, pattern) + ": parameter '{" + std::string(segment.text) +
                       "}' is ambiguous with another route's parameter at the same place");
    if (!slot) {
      slot = std::make_unique<Node>();
      slot_name = std::string(segment.text);
      if (!is_path) node->param_kind = segment.kind;
    }
    node = slot.get();
  }
  for (const auto& [existing, id] : node->methods)
    if (existing == method)
      throw RouteError(describe(method, pattern) + ": duplicates route '" + existing + " " +
                       node->pattern + "'");
  if (!name.empty()) {
    for (const auto& named : named_)
      if (named.name == name)
        throw RouteError(describe(method, pattern) + ": the name '" + std::string(name) +
                         "' is already used by '" + named.pattern + "'");
    named_.push_back({std::string(name), std::string(pattern)});
  }
  if (node->pattern.empty()) node->pattern = std::string(pattern);
  node->methods.emplace_back(std::string(method), route_id);
  node->allow = build_allow(node->methods);
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch out;
  match(method, path, out);
  return out;
}

void Router::match(std::string_view method, std::string_view path, RouteMatch& out) const {
  out.outcome_ = RouteMatch::Outcome::BadPath;
  out.route_ = 0;
  out.head_from_get_ = false;
  out.allow_ = {};
  out.allow_owned_ = false;
  out.routes_at_path_complete_ = true;
  out.routes_at_path_.clear();
  out.params_.clear();
  out.decoded_.clear();
  if (path.empty() || path.front() != '/') return;
  // Parameters are text, and so is every pattern: a path that is not UTF-8, raw or
  // percent-encoded, matches no route (404, and a fallback such as the gateway's takes it:
  // Django serves old Latin-1 URLs). No handler stores or echoes its bytes.
  if (!codec::is_valid_utf8(path)) {
    out.outcome_ = RouteMatch::Outcome::NotFound;
    return;
  }

  // Split, percent-decoding the segments that need it into `scratch`; reserving the whole
  // path up front keeps the views into it valid (decoding never grows a segment).
  Uninitialized<std::string_view, kMaxSegments> segments;
  std::size_t count = 0;
  std::string scratch;
  if (path.find('%') != std::string_view::npos) scratch.reserve(path.size());
  std::string_view rest = path.substr(1);
  while (true) {
    if (count == kMaxSegments) return;
    const auto slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (segment.find('%') != std::string_view::npos) {
      const auto encoded = boost::urls::make_pct_string_view(segment);
      if (encoded.has_error()) return;
      const std::size_t start = scratch.size();
      for (const char c : **encoded) scratch.push_back(c);
      segment = std::string_view(scratch).substr(start);
      if (has_dot_piece(segment)) return;
      if (!codec::is_valid_utf8(segment)) {
        out.outcome_ = RouteMatch::Outcome::NotFound;
        return;
      }
    }
    // A NUL, sent as %00 or raw, would end the name early for any C API a handler passes it to.
    if (is_dot_segment(segment) || segment.find('\0') != std::string_view::npos) return;
    segments.items[count++] = segment;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }

  Walk w;  // captures left uninitialized: only the first `captured` are ever read
  w.segments = segments.items;
  w.count = count;
  w.method = method;
  w.captured = 0;
  const Node* end = walk(*root_, w, 0);
  if (end == nullptr) {
    if (w.path_only_count == 0) {
      out.outcome_ = RouteMatch::Outcome::NotFound;
      return;
    }
    // The path matched, the method did not: 405 or OPTIONS, which need no parameters. Every
    // route the path matched counts (GET /users/me beside DELETE /users/{id}).
    std::vector<std::pair<std::string, std::size_t>> methods;
    for (std::size_t i = 0; i < w.path_only_count; ++i) {
      for (const auto& [name, id] : static_cast<const Node*>(w.path_only[i])->methods) {
        out.routes_at_path_.push_back(id);
        if (w.path_only_count > 1) methods.emplace_back(name, id);
      }
    }
    const Node* first = static_cast<const Node*>(w.path_only[0]);
    out.route_ = first->methods.front().second;
    out.routes_at_path_complete_ = !w.path_only_overflow;
    if (w.path_only_count > 1) {
      out.allow_storage_ = build_allow(methods);
      out.allow_owned_ = true;
    } else {
      out.allow_ = first->allow;
    }
    out.outcome_ =
        method == "OPTIONS" ? RouteMatch::Outcome::Options : RouteMatch::Outcome::MethodNotAllowed;
    return;
  }
  for (std::size_t i = 0; i < w.captured; ++i) {
    const Capture& capture = w.captures.items[i];
    const std::size_t offset = out.decoded_.size();
    for (std::size_t s = capture.first; s < capture.last; ++s) {
      if (s > capture.first) out.decoded_.push_back('/');
      out.decoded_.append(segments.items[s]);
    }
    out.params_.push_back({capture.name, offset, out.decoded_.size() - offset});
  }
  out.allow_ = end->allow;
  const std::size_t* get_route = nullptr;
  for (const auto& [candidate, id] : end->methods) {
    if (candidate == method) {
      out.outcome_ = RouteMatch::Outcome::Found;
      out.route_ = id;
      return;
    }
    if (candidate == "GET") get_route = &id;
  }
  // arrive() returns only a route that takes the method (or GET, for HEAD).
  out.outcome_ = RouteMatch::Outcome::Found;
  out.route_ = *get_route;
  out.head_from_get_ = true;
}

std::string Router::url_for(
    std::string_view name,
    const std::vector<std::pair<std::string_view, std::string_view>>& params) const {
  const auto named = std::find_if(named_.begin(), named_.end(),
                                  [&](const NamedRoute& route) { return route.name == name; });
  if (named == named_.end())
    throw RouteError("url_for: no route named '" + std::string(name) + "'");
  const auto segments = parse_pattern("", named->pattern);
  const auto value_of = [&](std::string_view param) -> std::string_view {
    for (const auto& [key, value] : params)
      if (key == param) return value;
    throw RouteError("url_for('" + std::string(name) + "'): missing parameter '" +
                     std::string(param) + "'");
  };
  const auto fail = [&](std::string_view param, std::string_view why) {
    throw RouteError("url_for('" + std::string(name) + "'): parameter '" + std::string(param) +
                     "' " + std::string(why));
  };
  std::size_t used = 0;
  std::string url;
  for (const auto& segment : segments) {
    url.push_back('/');
    if (!segment.is_param) {
      url += boost::urls::encode(segment.text, boost::urls::pchars);
      continue;
    }
    const std::string_view value = value_of(segment.text);
    ++used;
    // What match() refuses, refused here too, so that every URL made can be matched back.
    if (!codec::is_valid_utf8(value)) fail(segment.text, "is not UTF-8 text");
    if (value.find('\0') != std::string_view::npos) fail(segment.text, "must not contain a NUL");
    std::int64_t ignored = 0;
    if (segment.kind == ParamKind::Int && !parse_int(value, ignored))
      fail(segment.text, "must be a non-negative integer");
    if (segment.kind == ParamKind::Str && (value.empty() || has_dot_piece(value)))
      fail(segment.text, "must not be empty, nor '.' or '..' on either side of a '/'");
    if (segment.kind == ParamKind::Path && value.starts_with('/'))
      fail(segment.text, "must not start with '/' (a path parameter is never absolute)");
    if (segment.kind != ParamKind::Path) {
      url += boost::urls::encode(value, boost::urls::pchars);  // a '/' in it becomes %2F
      continue;
    }
    std::string_view rest = value;
    while (true) {  // a path parameter keeps its slashes
      const auto slash = rest.find('/');
      const std::string_view piece = rest.substr(0, slash);
      if (is_dot_segment(piece)) fail(segment.text, "must not contain '.' or '..' segments");
      url += boost::urls::encode(piece, boost::urls::pchars);
      if (slash == std::string_view::npos) break;
      url.push_back('/');
      rest.remove_prefix(slash + 1);
    }
  }
  if (used != params.size())
    throw RouteError("url_for('" + std::string(name) + "'): unknown or repeated parameters");
  return url;
}

std::optional<std::string_view> RouteMatch::param(std::string_view name) const {
  for (const Param& p : params_)
    if (p.name == name) return std::string_view(decoded_).substr(p.offset, p.size);
  return std::nullopt;
}

std::optional<std::int64_t> RouteMatch::int_param(std::string_view name) const {
  const auto text = param(name);
  if (!text) return std::nullopt;
  // A plain {name} may hold a negative integer ({name:int} matches digits alone).
  const std::string_view digits = text->starts_with('-') ? text->substr(1) : *text;
  if (!all_digits(digits)) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

std::pair<std::string_view, std::string_view> RouteMatch::param_at(std::size_t i) const {
  const Param& p = params_.at(i);
  return {p.name, std::string_view(decoded_).substr(p.offset, p.size)};
}

}  // namespace molt::web
