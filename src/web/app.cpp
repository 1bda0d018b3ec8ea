#include "molt/web/app.hpp"

#include <boost/asio/this_coro.hpp>
#include <charconv>
#include <cstdio>
#include <exception>

#include "exchange.hpp"
#include "molt/codec/decode_error.hpp"
#include "molt/core/status.hpp"
#include "molt/web/openapi.hpp"
#include "request_cancel.hpp"
#include "task_group.hpp"

namespace molt::web {

struct Next::Chain {
  std::vector<const Middleware*> middleware;
  // Middleware from this index on run inside an outer one (a group's inside the app's, the
  // second inside the first): their exceptions become error answers before the outer ones
  // see them. Those before it are answered by the caller (App::handle).
  std::size_t answered_from = 0;
  // What runs after the last middleware: the route's handler, or the router for the app chain.
  std::function<boost::asio::awaitable<Response>(const Request&, Ctx&)> terminal;
};

struct RouteGroup::Data {
  std::string prefix;
  Data* parent = nullptr;
  std::vector<Middleware> middleware;
};

struct App::RouteEntry {
  Handler handler;
  RouteOptions options;
  RouteGroup::Data* group = nullptr;
  std::string name;
  std::unique_ptr<Next::Chain> chain;  // built by freeze()
  std::string method;
  std::string pattern;
  bool websocket = false;
};

namespace {
// An answer known without waiting, as an awaitable (routing errors).
boost::asio::awaitable<Response> ready(Response response) {
  co_return response;
}

}  // namespace

// The answer for an exception that escaped a handler or a middleware: an HttpError says its
// own; core errors map to their status; anything else is a 500 whose details go to the log,
// never to the client.
Response detail::error_answer(std::exception_ptr error, const Request& request, const Ctx& ctx) {
  // Nobody will read this answer, whatever failed as the client left (its body's next()
  // throws a 400 for a body cut short): middleware (the access log) see 499, as nginx logs it.
  if (ctx.token().reason() == core::CancelReason::Disconnected)
    return Response::error(499, "client_closed_request", "the client went away");
  if (auto mapped = ctx.app().mapped_exception(error, request)) return std::move(*mapped);
  std::string failure;
  try {
    std::rethrow_exception(error);
  } catch (const HttpError& e) {
    if (e.status() >= 400 && e.status() <= 599) {
      Response answer = Response::error(e.status(), e.code(), e.message());
      for (const auto& [name, value] : e.headers()) {
        // The server frames the answer: a second length or type would make two answers of it
        // for whatever reads it next.
        if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
            iequals(name, "Connection") || iequals(name, "Content-Type")) {
          detail::log_request_failure(request, " failed",
                                      "HttpError: the server writes " + name + " itself");
          continue;
        }
        try {
          answer.add_header(name, value);
        } catch (const std::invalid_argument& bad) {  // a CR or LF would split the answer
          detail::log_request_failure(request, " failed", std::string("HttpError: ") + bad.what());
        }
      }
      return answer;
    }
    failure = "HttpError with status " + std::to_string(e.status()) +
              ", which is not an error status (400 to 599): " + e.what();
  } catch (const codec::DecodeErrors& e) {
    std::vector<Response::FieldProblem> problems;
    for (const codec::DecodeError& each : e.all())
      problems.push_back({each.path(), each.message()});
    // The first as message and field, as one problem alone is answered; each in the list.
    return Response::error(400, "invalid_input", e.all().front().message(), e.path(), problems);
  } catch (const codec::DecodeError& e) {
    return Response::error(400, "invalid_input", e.message(), e.path());
  } catch (const core::SqlError& e) {
    failure = e.what();  // the handler's SQL: the server's fault, and its text stays here
  } catch (const core::Error& e) {
    if (e.code() == core::StatusCode::InvalidInput)
      return Response::error(400, "invalid_input", e.message());
    if (e.code() == core::StatusCode::Timeout)
      return Response::error(504, "timeout", "the request took too long");
    // Stopped by the request's own token (a query it cancelled): the token's reason answers,
    // below; cancelled by anything else, a 503.
    if (e.code() == core::StatusCode::Cancelled && ctx.token().reason() == core::CancelReason::None)
      return Response::error(503, "cancelled", "the request was cancelled");
    if (e.code() == core::StatusCode::Busy)  // no connection free, a database locked
      return Response::error(503, "busy", "the server is busy; retry shortly");
    failure = e.what();
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  // A handler stopped by its deadline or by shutdown says so, not "internal error".
  const core::CancelReason reason = ctx.token().reason();
  if (reason == core::CancelReason::Timeout)
    return Response::error(504, "timeout", "the request took too long");
  if (reason == core::CancelReason::Shutdown)
    return Response::error(503, "shutting_down", "the server is shutting down");
  detail::log_request_failure(request, " failed", failure);
  return Response::error(500, "internal_error", "the request failed");
}

namespace {

// A handler or middleware inside middleware: its exception becomes its error answer here,
// inside the chain, so the outer middleware see it like any other answer (request id, access
// log line, CORS headers). `call` starts it.
template <class Call>
boost::asio::awaitable<Response> answering_errors(Call call, const Request& request, Ctx& ctx) {
  std::exception_ptr failure;
  try {
    co_return co_await call();
  } catch (...) {
    failure = std::current_exception();
  }
  co_return detail::error_answer(failure, request, ctx);
}
}  // namespace

Handler answering_at_once(ImmediateHandler handler) {
  return [handler = std::move(handler)](const Request& request,
                                        Ctx& ctx) -> boost::asio::awaitable<Response> {
    co_return handler(request, ctx);
  };
}

// Not a coroutine: it hands over the next one's awaitable, so a chain of N middleware costs N
// coroutine frames, not 2N.
boost::asio::awaitable<Response> Next::operator()() const {
  if (index_ < chain_->middleware.size()) {
    const Middleware& middleware = *chain_->middleware[index_];
    const Next next(chain_, index_ + 1, *request_, *ctx_);
    if (index_ < chain_->answered_from) return middleware(*request_, *ctx_, next);
    // One coroutine frame more, only where an outer middleware would miss the error.
    return answering_errors(
        [&middleware, next] { return middleware(*next.request_, *next.ctx_, next); }, *request_,
        *ctx_);
  }
  return chain_->terminal(*request_, *ctx_);
}

Ctx::~Ctx() {
  for (const Local& local : locals_) local.destroy(local.value);
}

const core::CancelToken& Ctx::token() const {
  if (lazy_cancel_ != nullptr && !token_made_.load(std::memory_order_acquire)) {
    lazy_cancel_->make_token(token_);
    token_made_.store(true, std::memory_order_release);
  }
  return token_;
}

bool Ctx::cancelled() const {
  return cancel_reason() != core::CancelReason::None;
}

core::CancelReason Ctx::cancel_reason() const {
  if (lazy_cancel_ != nullptr && !token_made_.load(std::memory_order_acquire))
    return lazy_cancel_->reason();
  return token_.reason();
}

std::int64_t Ctx::int_param(std::string_view name) const {
  if (const auto value = route_.int_param(name)) return *value;
  throw HttpError(400, "invalid_input",
                  "path parameter '" + std::string(name) + "' must be an integer");
}

bool Ctx::spawn(BackgroundTask task, SpawnOptions options) {
  return tasks_ != nullptr && task && tasks_->spawn(std::move(task), token(), options);
}

RouteGroup& RouteGroup::use(Middleware middleware) {
  app_->check_not_frozen();
  data_->middleware.push_back(std::move(middleware));
  return *this;
}

RouteGroup& RouteGroup::route(std::string_view method, std::string_view pattern, Handler handler,
                              std::string_view name, RouteOptions options) {
  app_->add_route(*data_, method, pattern, std::move(handler), name, options);
  return *this;
}

RouteGroup& RouteGroup::route_websocket(std::string_view pattern, WebSocketHandler handler,
                                        std::string_view name, WebSocketOptions options) {
  app_->add_route(*data_, "GET", pattern, detail::websocket_route(std::move(handler), options),
                  name, {}, true);
  return *this;
}

RouteGroup RouteGroup::group(std::string_view prefix) {
  app_->check_not_frozen();
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() == '/')
    throw RouteError("group '" + std::string(prefix) +
                     "': a prefix looks like '/api' (a slash first, none last)");
  auto data = std::make_unique<Data>();
  data->prefix = data_->prefix + std::string(prefix);
  data->parent = data_;
  app_->groups_.push_back(std::move(data));
  return RouteGroup(*app_, *app_->groups_.back());
}

App::App() {
  groups_.push_back(std::make_unique<RouteGroup::Data>());
}
App::~App() = default;

App& App::use(Middleware middleware) {
  check_not_frozen();
  groups_.front()->middleware.push_back(std::move(middleware));
  return *this;
}

App& App::route(std::string_view method, std::string_view pattern, Handler handler,
                std::string_view name, RouteOptions options) {
  add_route(*groups_.front(), method, pattern, std::move(handler), name, options);
  return *this;
}

RouteGroup App::group(std::string_view prefix) {
  return RouteGroup(*this, *groups_.front()).group(prefix);
}

App& App::route_websocket(std::string_view pattern, WebSocketHandler handler, std::string_view name,
                          WebSocketOptions options) {
  RouteGroup(*this, *groups_.front()).route_websocket(pattern, std::move(handler), name, options);
  return *this;
}

App& App::fallback(Handler handler, RouteOptions options) {
  check_not_frozen();
  if (!handler) throw RouteError("fallback: no handler");
  if (fallback_) throw RouteError("fallback: the app has one already");
  note_body_options(options);
  fallback_ = routes_.size();
  routes_.push_back({std::move(handler), options, groups_.front().get(), "fallback", nullptr});
  return *this;
}

App& App::redirect_slashes(bool on) {
  check_not_frozen();
  redirect_slashes_ = on;
  return *this;
}

void App::note_body_options(const RouteOptions& options) {
  if (options.max_body_bytes) {
    has_route_body_options_ = true;
    largest_route_body_limit_ = std::max(largest_route_body_limit_, *options.max_body_bytes);
  }
  if (options.stream_body) has_route_body_options_ = true;
}

void App::check_not_frozen() const {
  if (frozen_)
    throw std::logic_error(
        "molt::web::App: routes, middleware and state are fixed once serving starts");
}

void App::add_route(RouteGroup::Data& group, std::string_view method, std::string_view pattern,
                    Handler handler, std::string_view name, RouteOptions options, bool websocket) {
  check_not_frozen();
  // "" in a group is the group's own path: group("/admin").get("") serves /admin, and
  // .get("/") serves /admin/, as in FastAPI's routers.
  if (pattern.empty() ? group.prefix.empty() : pattern.front() != '/')
    throw RouteError("route '" + std::string(method) + " " + std::string(pattern) +
                     "': a pattern starts with '/' (in a group, \"\" is the group's own path)");
  if (!handler)
    throw RouteError("route '" + std::string(method) + " " + std::string(pattern) +
                     "': no handler");
  const std::string full = group.prefix + std::string(pattern);
  // A doc (or a typed handler) that reads a path parameter the pattern lacks fails here, and
  // one that gives a security scheme's name to another scheme than earlier routes did.
  const std::string route = std::string(method) + " " + full;
  std::vector<std::pair<std::string, std::string>> schemes;
  if (options.doc) {
    options.doc->check_pattern(method, full);
    schemes = options.doc->security_identities();
    for (const auto& [scheme, identity] : schemes) {
      const auto known = security_schemes_.find(scheme);
      if (known != security_schemes_.end() && known->second.first != identity)
        throw RouteError("route '" + route + "': security scheme '" + scheme +
                         "' is another scheme on route '" + known->second.second + "'");
    }
  }
  // The router checks the pattern now, so that the error names the line that added it.
  router_.add(method, full, routes_.size(), name);
  for (auto& [scheme, identity] : schemes)
    security_schemes_.try_emplace(std::move(scheme), std::move(identity), route);
  note_body_options(options);
  routes_.push_back({std::move(handler), options, &group, std::string(name), nullptr,
                     std::string(method), full, websocket});
}

std::vector<RouteInfo> App::routes() const {
  std::vector<RouteInfo> out;
  for (std::size_t i = 0; i < routes_.size(); ++i)
    if (i != fallback_)
      out.push_back({routes_[i].method, routes_[i].pattern, routes_[i].name, &routes_[i].options,
                     routes_[i].websocket});
  return out;
}

void App::freeze() {
  if (frozen_) return;
  // A route's chain: its groups' middleware from the outermost group inwards, then it. The
  // app's own middleware (groups_[0]) runs in the app chain, around routing itself.
  for (RouteEntry& route : routes_) {
    auto chain = std::make_unique<Next::Chain>();
    std::vector<const RouteGroup::Data*> lineage;
    for (const RouteGroup::Data* g = route.group; g != nullptr && g != groups_.front().get();
         g = g->parent)
      lineage.push_back(g);
    for (auto it = lineage.rbegin(); it != lineage.rend(); ++it)
      for (const Middleware& m : (*it)->middleware) chain->middleware.push_back(&m);
    const bool app_middleware = !groups_.front()->middleware.empty();
    chain->answered_from = app_middleware ? 0 : 1;
    if (app_middleware || !chain->middleware.empty()) {
      // One coroutine frame more, so only where some middleware would miss the error.
      chain->terminal = [handler = &route.handler](const Request& request, Ctx& ctx) {
        return answering_errors([handler, &request, &ctx] { return (*handler)(request, ctx); },
                                request, ctx);
      };
    } else {
      chain->terminal = route.handler;
    }
    route.chain = std::move(chain);
  }
  app_chain_ = std::make_unique<Next::Chain>();
  app_chain_->answered_from = 1;
  for (const Middleware& m : groups_.front()->middleware) app_chain_->middleware.push_back(&m);
  app_chain_->terminal = [this](const Request& request, Ctx& ctx) {
    return dispatch(request, ctx);
  };
  frozen_ = true;
}

App::BodyRule App::body_rule_for(const Request& request, std::uint64_t fallback) const {
  const RouteMatch match = router_.match(request.method(), request.path());
  const RouteEntry* route = match.found() ? &routes_[match.route()] : fallback_route(match);
  if (route == nullptr) return {fallback, false, false};
  const RouteOptions& options = route->options;
  return {options.max_body_bytes.value_or(fallback), options.stream_body, true};
}

// The fallback's entry when `match` is one it takes: no route for the path or the method.
const App::RouteEntry* App::fallback_route(const RouteMatch& match) const {
  if (!fallback_) return nullptr;
  const auto outcome = match.outcome();
  if (outcome != RouteMatch::Outcome::NotFound && outcome != RouteMatch::Outcome::MethodNotAllowed)
    return nullptr;
  return &routes_[*fallback_];
}

std::optional<Response> App::slash_redirect(const Request& request) const {
  if (!redirect_slashes_) return std::nullopt;
  const std::string_view path = request.path();
  const bool slashed = path.ends_with('/');
  std::string twin(slashed ? path.substr(0, path.size() - 1) : path);
  if (!slashed) twin += '/';
  // "//host" or "/\host" in a Location is another site to a browser: an open redirect.
  if (!twin.starts_with('/') || twin.starts_with("//") || twin.starts_with("/\\"))
    return std::nullopt;
  RouteMatch would;
  router_.match(request.method(), twin, would);
  if (!would.found()) return std::nullopt;
  if (!request.query().empty()) twin.append("?").append(request.query());
  Response response(307);
  response.set_header("Location", twin);
  return response;
}

void App::take_route_options(Ctx& ctx, const RouteEntry& route) {
  ctx.route_name_ = route.name;
  ctx.finish_after_disconnect_ = route.options.finish_after_disconnect;
  if (route.options.request_timeout && ctx.clock_)
    ctx.clock_->set_request_timeout(*route.options.request_timeout);
}

// Not a coroutine either: a matched request goes straight into its route's chain.
boost::asio::awaitable<Response> App::dispatch(const Request& request, Ctx& ctx) const {
  RouteMatch& match = ctx.route_;
  router_.match(request.method(), request.path(), match);
  if (const RouteEntry* fallback = fallback_route(match)) [[unlikely]] {
    take_route_options(ctx, *fallback);
    return Next(fallback->chain.get(), 0, request, ctx)();
  }
  switch (match.outcome()) {
    case RouteMatch::Outcome::Found:
      break;
    case RouteMatch::Outcome::NotFound:
      if (auto redirect = slash_redirect(request)) return ready(std::move(*redirect));
      return ready(Response::error(404, "not_found", "no route for this path"));
    case RouteMatch::Outcome::BadPath:
      // `OPTIONS *` asks about the server, not a resource (RFC 9112 §3.2.4): nothing to refuse.
      if (request.method() == "OPTIONS" && request.target() == "*") return ready(Response(204));
      return ready(Response::error(400, "bad_path", "the request path is malformed"));
    case RouteMatch::Outcome::MethodNotAllowed:
    case RouteMatch::Outcome::Options: {
      Response response =
          match.outcome() == RouteMatch::Outcome::Options
              ? Response(204)
              : Response::error(405, "method_not_allowed", "this path does not take that method");
      response.set_header("Allow", std::string(match.allow()));
      const RouteEntry* owner = automatic_answer_owner(request, match);
      if (owner == nullptr || owner->chain->middleware.empty()) return ready(std::move(response));
      return through_group_middleware(*owner, std::move(response), request, ctx);
    }
  }
  const RouteEntry& route = routes_[match.route()];
  take_route_options(ctx, route);
  return Next(route.chain.get(), 0, request, ctx)();
}

// An automatic answer (405, OPTIONS) at a path whose routes sit in a group: the group's
// middleware sees it as it sees the routes' own answers, so that a group's cors() answers
// the preflights of its routes.
// A CORS preflight is the request it asks about: the route that would serve that method
// answers it (a group's POST beside an app-level GET at one path: the group's cors()).
// Otherwise the group the path's routes share; none when they sit in different groups, so
// that one group's guard (an auth check) does not answer for another's routes.
const App::RouteEntry* App::automatic_answer_owner(const Request& request,
                                                   const RouteMatch& match) const {
  if (match.outcome() == RouteMatch::Outcome::Options) {
    if (const auto asked = request.header("Access-Control-Request-Method")) {
      RouteMatch would;
      router_.match(*asked, request.path(), would);
      if (would.found()) return &routes_[would.route()];
    }
  }
  if (!match.routes_at_path_complete()) return nullptr;
  const RouteEntry& first = routes_[match.route()];
  for (const std::size_t id : match.routes_at_path())
    if (routes_[id].chain->middleware != first.chain->middleware) return nullptr;
  return &first;
}

boost::asio::awaitable<Response> App::through_group_middleware(const RouteEntry& route,
                                                               Response answer,
                                                               const Request& request,
                                                               Ctx& ctx) const {
  const Next::Chain chain{route.chain->middleware, route.chain->answered_from,
                          [&answer](const Request&, Ctx&) -> boost::asio::awaitable<Response> {
                            co_return std::move(answer);
                          }};
  co_return co_await Next(&chain, 0, request, ctx)();
}

void App::add_exception_map(ExceptionMap map) {
  check_not_frozen();
  exception_maps_.push_back(std::move(map));
}

std::optional<Response> App::mapped_exception(std::exception_ptr error,
                                              const Request& request) const {
  for (const ExceptionMap& map : exception_maps_) {
    try {
      if (auto answer = map(error, request)) return answer;
    } catch (const std::exception& e) {
      // The built-in answers take over (a 504 for a request past its time, say).
      detail::log_request_failure(request, " failed",
                                  std::string("an on_exception map threw: ") + e.what());
      return std::nullopt;
    } catch (...) {
      detail::log_request_failure(request, " failed", "an on_exception map threw");
      return std::nullopt;
    }
  }
  return std::nullopt;
}

boost::asio::awaitable<Response> App::handle(const Request& request, Ctx& ctx) const {
  ctx.body_.whole_ = &request.body();
  std::exception_ptr failure;
  try {
    Response response = co_await Next(app_chain_.get(), 0, request, ctx)();
    // A final answer's status is 200 to 599 (interim 1xx answers are the server's); any
    // other would go out as a status line no client can read.
    if (response.status() >= 200 && response.status() <= 599) co_return response;
    // A WebSocket route's yes: the connection upgrades after writing it.
    if (response.status() == 101 && ctx.websocket_upgrade() != nullptr) co_return response;
    detail::log_request_failure(request, " failed",
                                "the answer's status " + std::to_string(response.status()) +
                                    " is not an HTTP status for a final answer (200 to 599)");
    co_return Response::error(500, "internal_error", "the request failed");
  } catch (...) {
    failure = std::current_exception();  // from a middleware: the handlers' are answered inside
  }
  co_return detail::error_answer(failure, request, ctx);
}

}  // namespace molt::web
