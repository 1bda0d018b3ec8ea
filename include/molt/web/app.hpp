// App, RouteGroup, Ctx and middleware: the framework half of molt::web.
//
//   molt::web::App app;
//   app.use(molt::web::request_id());
//   app.get("/users/{id:int}", [](const Request&, Ctx& ctx) -> awaitable<Response> {
//     co_return Response::json_text(...);
//   }, "users.show");
//   auto api = app.group("/api");            // a prefix and its own middleware
//   api.use(require_token);
//
// Handlers and middleware are coroutines. App middleware sees every request, 404s included;
// a group's middleware sees the requests routed into that group. The router checks each route
// when it is added; a bad table fails there (RouteError), with the route named.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/core/demangle.hpp>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/web/body.hpp"
#include "molt/web/message.hpp"
#include "molt/web/router.hpp"

namespace molt::web {

class App;
class Ctx;
class Next;
class RouteDoc;
class WebSocket;
namespace detail {
class TaskGroup;
class RequestCancel;
class BodySource;
class Connection;
struct UpgradeAccess;  // websocket.cpp: a WebSocket route's 101 sets the request's upgrade
// What a route's own request_timeout is handed to: the connection serving the request.
class RequestClock {
 public:
  virtual void set_request_timeout(std::chrono::milliseconds timeout) = 0;

 protected:
  ~RequestClock() = default;
};
}  // namespace detail

// Background work started by a handler (ctx.spawn). It gets its own cancellation token.
using BackgroundTask = std::function<boost::asio::awaitable<void>(core::CancelToken)>;

struct SpawnOptions {
  // Cancelled with the request that spawned it (client gone, deadline, shutdown). Off: it
  // outlives a client that leaves, still within `timeout` and the server's shutdown.
  bool inherit_cancellation = true;
  std::chrono::milliseconds timeout{30'000};  // the task's own deadline (reason Timeout)
};

using Handler = std::function<boost::asio::awaitable<Response>(const Request&, Ctx&)>;
// A handler that answers at once, awaiting nothing: `Response f(const Request&, Ctx&)`. It runs
// on the I/O thread as every handler does, so it must not block: a database call goes to a
// BlockingPool from a coroutine handler (run_blocking).
using ImmediateHandler = std::function<Response(const Request&, Ctx&)>;
// The coroutine handler that runs `handler` (one frame, as a `co_return` handler costs).
Handler answering_at_once(ImmediateHandler handler);

namespace detail {
// The parameter and result types of a function, a function pointer, or an object with one
// const, non-template operator() (a lambda that is neither generic nor mutable).
template <typename R, typename... P>
struct Signature {};
template <typename F>
struct function_signature {};
template <typename R, typename... P>
struct function_signature<R(P...)> {
  using type = Signature<R, P...>;
};
template <typename R, typename... P>
struct function_signature<R(P...) noexcept> : function_signature<R(P...)> {};
template <typename R, typename... P>
struct function_signature<R (*)(P...)> : function_signature<R(P...)> {};
template <typename R, typename... P>
struct function_signature<R (*)(P...) noexcept> : function_signature<R(P...)> {};
template <typename C, typename R, typename... P>
struct function_signature<R (C::*)(P...) const> : function_signature<R(P...)> {};
template <typename C, typename R, typename... P>
struct function_signature<R (C::*)(P...) const noexcept> : function_signature<R(P...)> {};
template <typename F>
struct signature_of : function_signature<F> {};
template <typename F>
requires requires {
  &F::operator();
}
struct signature_of<F> : function_signature<decltype(&F::operator())> {};
template <typename F>
concept HasSignature = requires {
  typename signature_of<F>::type;
};

// A type a typed handler's parameter reads with its `from_request` (typed_handler.hpp).
template <typename P>
concept Reader = requires(const Request& request, Ctx& ctx) {
  std::remove_cvref_t<P>::from_request(request, ctx);
};
template <typename S>
struct names_readers : std::false_type {};
template <typename R, typename... P>
struct names_readers<Signature<R, P...>> : std::bool_constant<(Reader<P> || ...)> {};
// A typed handler: one whose parameters name a reader (so a reader that could also be built
// from the request is still read by its from_request), or that has no other shape.
template <typename F, typename Plain, typename Immediate>
concept TypedHandler = HasSignature<F> &&
    (names_readers<typename signature_of<F>::type>::value ||
     (!std::constructible_from<Plain, F> && !std::constructible_from<Immediate, F>));

// A handler whose parameters say what it reads: the Handler that decodes them, and what they
// add to the route's doc. typed_handler.hpp defines it; without it a handler that is not of
// the two plain shapes gets this message.
template <typename F, typename = void>
struct TypedRoute {
  static_assert(sizeof(F) == 0,
                "a route handler is a coroutine `awaitable<Response>(const Request&, Ctx&)`, "
                "`Response(const Request&, Ctx&)`, or a typed handler (include "
                "molt/web/typed_handler.hpp): check its return type and its parameters");
};
}  // namespace detail

// What get/post/put/patch/del take: a coroutine Handler, an ImmediateHandler run as one, or a
// typed handler (typed_handler.hpp: `awaitable<Item> show(Path<"id", std::int64_t> id)`).
struct RouteHandler {
  template <typename F>
  requires(!detail::TypedHandler<F, Handler, ImmediateHandler> &&
           std::constructible_from<Handler, F>) RouteHandler(F f)
      : handler(std::move(f)) {}
  template <typename F>
  requires(!detail::TypedHandler<F, Handler, ImmediateHandler> &&
           !std::constructible_from<Handler, F> && std::constructible_from<ImmediateHandler, F>)
      RouteHandler(F f)
      : handler(answering_at_once(ImmediateHandler(std::move(f)))) {}
  template <typename F>
  requires detail::TypedHandler<F, Handler, ImmediateHandler> RouteHandler(F f)
      : handler(detail::TypedRoute<F>::handler(std::move(f))),
        complete_doc(&detail::TypedRoute<F>::complete_doc),
        reads_whole_body(detail::TypedRoute<F>::reads_whole_body) {}
  // Anything else: one clear message instead of a list of constructors that did not fit.
  template <typename F>
  requires(!detail::TypedHandler<F, Handler, ImmediateHandler> &&
           !std::constructible_from<Handler, F> && !std::constructible_from<ImmediateHandler, F>)
      RouteHandler(F) {
    static_assert(sizeof(F) == 0,
                  "a route handler is a coroutine `awaitable<Response>(const Request&, Ctx&)`, "
                  "`Response(const Request&, Ctx&)`, or a typed handler (typed_handler.hpp) "
                  "that is not a generic or mutable lambda: check its return type and its "
                  "parameters");
  }
  Handler handler;
  // A typed handler's: the route's doc with what its signature reads and answers added.
  std::shared_ptr<const RouteDoc> (*complete_doc)(std::shared_ptr<const RouteDoc> given) = nullptr;
  // A typed handler that reads the body whole (Body<T>, FormBody<T>): not on a stream_body route.
  bool reads_whole_body = false;
};
using Middleware = std::function<boost::asio::awaitable<Response>(const Request&, Ctx&, Next)>;

// A WebSocket route's handler (websocket.hpp): it accepts the socket, then talks until either
// side closes. `ctx` has the route's parameters and what middleware set, as an HTTP handler's.
using WebSocketHandler = std::function<boost::asio::awaitable<void>(WebSocket&, Ctx&)>;

// A WebSocket route's settings. Messages are limited as bodies are: the whole message is held
// in memory, so its limit is the largest message a client may send.
struct WebSocketOptions {
  // A larger message closes the socket with 1009 (message too big).
  std::size_t max_message_bytes = 1024 * 1024;
  // Messages read ahead of the handler's receive(); past them the socket is not read, and
  // the client's sends wait (backpressure).
  std::size_t receive_queue = 16;
  // Silence this long closes the socket; pings go out after half of it, so a client that is
  // there but quiet answers them and stays. Zero: no limit and no pings.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long the handshake's answer and the closing handshake may take.
  std::chrono::milliseconds close_timeout{5'000};
  // Compress messages (permessage-deflate, RFC 7692) when the client offers it. Off by
  // default: it costs CPU and tens of KiB per socket, and compressing secrets beside text an
  // attacker chooses leaks them (as CRIME did for TLS).
  bool compress = false;
};

// What a WebSocket route's request upgrades to, once the middleware chain answered it with
// its 101: the session that runs after the handshake. Middleware may wrap `session` (the access
// log does, to log when the socket closes).
struct WebSocketUpgrade {
  std::function<boost::asio::awaitable<void>(WebSocket&)> session;
  WebSocketOptions options;
};

// Thrown by handlers (and by Ctx's typed accessors) to answer an HTTP error with
// {"error":{"code","message"}}; the message is shown to the client, so keep it safe.
class HttpError : public std::runtime_error {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // `headers` go on the error's answer: a 401's `WWW-Authenticate: Bearer` (RFC 9110 §11.6.1),
  // a 429's `Retry-After`. The framing headers (Content-Length, Transfer-Encoding, Connection,
  // Content-Type) and any with a CR, LF or NUL are left off, and logged.
  HttpError(int status, std::string code, std::string message, Headers headers = {})
      : std::runtime_error(message),
        status_(status),
        code_(std::move(code)),
        message_(std::move(message)),
        headers_(std::move(headers)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  // All of it: what() ends at a NUL byte, which a message quoting the request may hold.
  const std::string& message() const { return message_; }
  const Headers& headers() const { return headers_; }

 private:
  int status_;
  std::string code_;
  std::string message_;
  Headers headers_;
};

// The rest of the chain, for a middleware to call (or not, to short-circuit).
class Next {
 public:
  boost::asio::awaitable<Response> operator()() const;

 private:
  friend class App;
  struct Chain;
  Next(const Chain* chain, std::size_t index, const Request& request, Ctx& ctx)
      : chain_(chain), index_(index), request_(&request), ctx_(&ctx) {}
  const Chain* chain_;
  std::size_t index_;
  const Request* request_;
  Ctx* ctx_;
};

class Ctx {
 public:
  // `body` is where a streamed request body comes from (nullptr: read whole already).
  Ctx(const App& app, core::CancelToken token, detail::TaskGroup* tasks = nullptr,
      detail::BodySource* body = nullptr)
      : app_(&app), token_(std::move(token)), tasks_(tasks) {
    body_.source_ = body;
  }
  // For the server: the token is made only if someone asks for it (see RequestCancel).
  Ctx(const App& app, detail::RequestCancel& cancel, detail::TaskGroup* tasks,
      detail::BodySource* body = nullptr)
      : app_(&app), lazy_cancel_(&cancel), tasks_(tasks) {
    body_.source_ = body;
  }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  ~Ctx();

  // A path parameter of the matched route.
  std::optional<std::string_view> param(std::string_view name) const { return route_.param(name); }
  // An `{name:int}` parameter; HttpError 400 if it is missing or not an integer.
  std::int64_t int_param(std::string_view name) const;
  const RouteMatch& route() const { return route_; }
  RouteMatch& route() { return route_; }
  // The matched route's name ("" when unnamed or unmatched).
  std::string_view route_name() const { return route_name_; }
  // Whether the route runs on when the client leaves (RouteOptions::finish_after_disconnect).
  bool finishes_after_disconnect() const { return finish_after_disconnect_; }

  // App-scoped state, set up before serving with App::set_state.
  template <typename T>
  T& state() const;

  // Request-scoped values, for middleware to hand to handlers.
  template <typename T>
  void set(T value) {
    // The new value is built before the old one goes, so a throwing move leaves the old.
    T* stored = ::new (locals_arena_.allocate(sizeof(T), alignof(T))) T(std::move(value));
    const auto destroy = [](void* p) { static_cast<T*>(p)->~T(); };
    const std::type_index type(typeid(T));
    for (Local& local : locals_) {
      if (local.type == type) {
        local.destroy(local.value);
        local.value = stored;
        return;
      }
    }
    try {
      locals_.push_back({type, stored, destroy});
    } catch (...) {
      destroy(stored);
      throw;
    }
  }
  template <typename T>
  T* get() const {
    const std::type_index type(typeid(T));
    for (const Local& local : locals_)
      if (local.type == type) return static_cast<T*>(local.value);
    return nullptr;
  }

  // The request's body, piece by piece (see body.hpp). On a route with
  // RouteOptions::stream_body this is the only way to its bytes.
  RequestBody& body() { return body_; }

  // The app answering the request: its url_for, its state.
  const App& app() const { return *app_; }

  // Cancellation of this request: client disconnect, deadline or shutdown.
  const core::CancelToken& token() const;
  bool cancelled() const;

  // Runs `task` in the background on this request's thread, after or while the answer goes
  // out. Bounded: it has a deadline, the thread a maximum number of tasks, and shutdown waits
  // for it (then cancels it). False, and nothing runs, when no more tasks are taken.
  bool spawn(BackgroundTask task, SpawnOptions options = {});

  // On a WebSocket route's request, what it upgrades to (nullptr on any other request): a
  // middleware may wrap its session.
  WebSocketUpgrade* websocket_upgrade() const { return upgrade_.get(); }

 private:
  friend class App;
  friend class detail::Connection;
  friend struct detail::UpgradeAccess;
  core::CancelReason cancel_reason() const;

  struct Local {
    std::type_index type;
    void* value;
    void (*destroy)(void*);
  };
  const App* app_;
  mutable core::CancelToken token_;
  detail::RequestCancel* lazy_cancel_ = nullptr;
  // token_ made from lazy_cancel_: written once, under its lock (two pool threads of one
  // handler may ask at once), and read freely after.
  mutable std::atomic<bool> token_made_{false};
  detail::TaskGroup* tasks_;
  RouteMatch route_;
  std::string_view route_name_;
  bool finish_after_disconnect_ = false;
  detail::RequestClock* clock_ = nullptr;  // none in the TestClient
  RequestBody body_;
  std::unique_ptr<WebSocketUpgrade> upgrade_;
  // A request carries a handful of small values at most: they and their list live in a
  // buffer inside the Ctx (the heap only past it), and a vector beats a hash map here.
  alignas(std::max_align_t) std::byte locals_buffer_[192];
  std::pmr::monotonic_buffer_resource locals_arena_{locals_buffer_, sizeof(locals_buffer_)};
  std::pmr::vector<Local> locals_{&locals_arena_};
};

// Per-route settings that differ from the server's Limits.
struct RouteOptions {
  // The largest request body this route takes (413 above it), instead of
  // Limits::max_body_bytes: larger for an upload route, smaller for a tight one.
  std::optional<std::uint64_t> max_body_bytes;
  // The handler pulls the body itself, with co_await ctx.body().next(), instead of getting
  // it whole in request.body(): for uploads larger than memory should hold, or to process
  // them as they arrive. The socket is read only as the handler asks (backpressure).
  bool stream_body = false;
  // The handler runs to its end when the client leaves (as FastAPI's do), instead of being
  // cancelled: for work that must not stop half done, such as two writes that are not one
  // transaction. The deadline and shutdown still cancel it; a streamed answer still stops.
  bool finish_after_disconnect = false;
  // This route's time instead of Limits::request_timeout, from the moment the route is chosen:
  // its handler, the write of its answer, and each piece of a streamed answer (or of a
  // streamed body) — longer for an event stream or a long poll, shorter for a tight route.
  std::optional<std::chrono::milliseconds> request_timeout;
  // What the route takes and answers, for its OpenAPI document (openapi.hpp): give it a
  // RouteDoc, `.doc = RouteDoc("List items").returns<Page>()`.
  std::shared_ptr<const RouteDoc> doc;
};

// A route as added: for tools that list them (the OpenAPI document).
struct RouteInfo {
  std::string_view method;
  std::string_view pattern;  // with its groups' prefixes
  std::string_view name;     // "" when unnamed
  const RouteOptions* options;
  bool websocket = false;  // added with websocket(): a GET that upgrades
};

// get/post/put/patch/del for App and RouteGroup, written once: each calls Derived::route.
template <typename Derived>
class RouteMethods {
 public:
  Derived& get(std::string_view pattern, RouteHandler handler, std::string_view name = {},
               RouteOptions options = {}) {
    return self().route("GET", pattern, std::move(handler.handler), name,
                        typed_options("GET", pattern, handler, std::move(options)));
  }
  Derived& post(std::string_view pattern, RouteHandler handler, std::string_view name = {},
                RouteOptions options = {}) {
    return self().route("POST", pattern, std::move(handler.handler), name,
                        typed_options("POST", pattern, handler, std::move(options)));
  }
  Derived& put(std::string_view pattern, RouteHandler handler, std::string_view name = {},
               RouteOptions options = {}) {
    return self().route("PUT", pattern, std::move(handler.handler), name,
                        typed_options("PUT", pattern, handler, std::move(options)));
  }
  Derived& patch(std::string_view pattern, RouteHandler handler, std::string_view name = {},
                 RouteOptions options = {}) {
    return self().route("PATCH", pattern, std::move(handler.handler), name,
                        typed_options("PATCH", pattern, handler, std::move(options)));
  }
  Derived& del(std::string_view pattern, RouteHandler handler, std::string_view name = {},
               RouteOptions options = {}) {
    return self().route("DELETE", pattern, std::move(handler.handler), name,
                        typed_options("DELETE", pattern, handler, std::move(options)));
  }
  // A WebSocket endpoint (websocket.hpp) at `pattern`: a GET that upgrades. The request goes
  // through the middleware as any other (which may refuse it, or add headers to the 101), then
  // `handler` runs for as long as the socket is open. A plain GET is answered 426.
  Derived& websocket(std::string_view pattern, WebSocketHandler handler, std::string_view name = {},
                     WebSocketOptions options = {}) {
    return self().route_websocket(pattern, std::move(handler), name, options);
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  // A typed handler's options: its doc completed from its signature; RouteError for a body it
  // reads whole on a route that streams it.
  static RouteOptions typed_options(std::string_view method, std::string_view pattern,
                                    const RouteHandler& handler, RouteOptions options) {
    if (handler.reads_whole_body && options.stream_body)
      throw RouteError("route '" + std::string(method) + " " + std::string(pattern) +
                       "': Body<T> and FormBody<T> read the body whole, and a stream_body "
                       "route hands it over piece by piece (read ctx.body() instead)");
    if (handler.complete_doc != nullptr) options.doc = handler.complete_doc(std::move(options.doc));
    return options;
  }
};

class RouteGroup : public RouteMethods<RouteGroup> {
 public:
  RouteGroup& use(Middleware middleware);
  RouteGroup& route(std::string_view method, std::string_view pattern, Handler handler,
                    std::string_view name = {}, RouteOptions options = {});
  // A nested group: its prefix is appended to this one's, its middleware runs inside ours.
  RouteGroup group(std::string_view prefix);
  RouteGroup& route_websocket(std::string_view pattern, WebSocketHandler handler,
                              std::string_view name, WebSocketOptions options);

 private:
  friend class App;
  struct Data;
  RouteGroup(App& app, Data& data) : app_(&app), data_(&data) {}
  App* app_;
  Data* data_;
};

class App : public RouteMethods<App> {
 public:
  App();
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Middleware around every request, in the order added (the first is outermost).
  App& use(Middleware middleware);
  App& route(std::string_view method, std::string_view pattern, Handler handler,
             std::string_view name = {}, RouteOptions options = {});
  RouteGroup group(std::string_view prefix);
  App& route_websocket(std::string_view pattern, WebSocketHandler handler, std::string_view name,
                       WebSocketOptions options);
  // Where requests that no route takes go (a path no route has, a method its path lacks),
  // behind the app's middleware, instead of the 404 or 405: a gateway's proxy_to() to the
  // application beside it. OPTIONS on a known path and malformed paths are still answered
  // here. Its options apply to those requests' bodies as a route's would.
  App& fallback(Handler handler, RouteOptions options = {});
  // On by default, as FastAPI's redirect_slashes: a path no route has, whose twin with or
  // without a trailing slash has a route for the method (`/items/` beside `GET /items`), is
  // answered 307 to the twin (the method and body are kept; the query goes along). The
  // Location is a path of this server, never `//host`. A fallback takes such paths instead.
  App& redirect_slashes(bool on);

  // App-scoped state, one value per type, set before serving. Handlers on every I/O thread
  // share it at once: what they change needs a mutex or atomics of its own.
  template <typename T>
  void set_state(T value) {
    check_not_frozen();  // handlers read the table without a lock once serving starts
    state_[std::type_index(typeid(T))] = std::make_shared<T>(std::move(value));
  }
  // The same, built in place: for state that cannot be moved (it holds a std::mutex or a
  // std::atomic).
  template <typename T, typename... Args>
  T& emplace_state(Args&&... args) {
    check_not_frozen();
    auto value = std::make_shared<T>(std::forward<Args>(args)...);
    T& ref = *value;
    state_[std::type_index(typeid(T))] = std::move(value);
    return ref;
  }
  template <typename T>
  T* find_state() const {
    const auto it = state_.find(std::type_index(typeid(T)));
    return it == state_.end() ? nullptr : static_cast<T*>(it->second.get());
  }

  // Your own exception types answered your way (FastAPI's exception_handler): a handler or
  // middleware that throws E, or a type derived from it, is answered `map(e, request)`.
  //   app.on_exception<NotFound>([](const NotFound& e, const Request&) {
  //     return Response::error(404, "not_found", e.what());
  //   });
  // Tried in the order added, before the built-in answers (HttpError, core::Error, the 500),
  // so a map of std::exception takes those too. A map that throws is logged, and the
  // built-in answers take over.
  template <typename E>
  App& on_exception(std::function<Response(const E&, const Request&)> map) {
    add_exception_map([map = std::move(map)](std::exception_ptr error,
                                             const Request& request) -> std::optional<Response> {
      try {
        std::rethrow_exception(error);
      } catch (const E& e) {
        return map(e, request);
      } catch (...) {
        return std::nullopt;
      }
    });
    return *this;
  }
  // The answer of the first on_exception map that takes `error`, if one does.
  std::optional<Response> mapped_exception(std::exception_ptr error, const Request& request) const;

  // Builds each route's middleware chain (the routes were checked when added). Later changes
  // are refused.
  void freeze();
  bool frozen() const { return frozen_; }

  // How the route `request` goes to takes its body: its limit (its RouteOptions, else
  // `fallback`) and whether the handler streams it. The reader asks for requests that have
  // a body, and checks them against the largest limit any route allows before that.
  struct BodyRule {
    std::uint64_t limit;
    bool stream;
    bool routed;  // a route (or the fallback) takes the request; else a 404 or 405 answers it
  };
  BodyRule body_rule_for(const Request& request, std::uint64_t fallback) const;
  std::uint64_t body_limit_ceiling(std::uint64_t fallback) const {
    return std::max(fallback, largest_route_body_limit_);
  }
  // Whether any route has body options (a limit of its own, or stream_body).
  bool has_route_body_options() const { return has_route_body_options_; }

  // Answers one request: routing, middleware, handler, errors. Never throws.
  boost::asio::awaitable<Response> handle(const Request& request, Ctx& ctx) const;

  // Every route in the order added (the fallback is not one).
  std::vector<RouteInfo> routes() const;

  std::string url_for(
      std::string_view name,
      const std::vector<std::pair<std::string_view, std::string_view>>& params) const {
    return router_.url_for(name, params);
  }

 private:
  friend class RouteGroup;
  friend class Next;
  struct RouteEntry;
  void add_route(RouteGroup::Data& group, std::string_view method, std::string_view pattern,
                 Handler handler, std::string_view name, RouteOptions options,
                 bool websocket = false);
  boost::asio::awaitable<Response> dispatch(const Request& request, Ctx& ctx) const;
  const RouteEntry* fallback_route(const RouteMatch& match) const;
  static void take_route_options(Ctx& ctx, const RouteEntry& route);
  std::optional<Response> slash_redirect(const Request& request) const;
  const RouteEntry* automatic_answer_owner(const Request& request, const RouteMatch& match) const;
  boost::asio::awaitable<Response> through_group_middleware(const RouteEntry& route,
                                                            Response answer, const Request& request,
                                                            Ctx& ctx) const;
  void note_body_options(const RouteOptions& options);
  void check_not_frozen() const;
  using ExceptionMap =
      std::function<std::optional<Response>(std::exception_ptr error, const Request& request)>;
  void add_exception_map(ExceptionMap map);

  std::vector<std::unique_ptr<RouteGroup::Data>> groups_;  // groups_[0] is the app itself
  std::vector<RouteEntry> routes_;
  std::optional<std::size_t> fallback_;  // its entry in routes_, which the router never returns
  std::unique_ptr<Next::Chain> app_chain_;
  Router router_;
  bool frozen_ = false;
  bool redirect_slashes_ = true;
  bool has_route_body_options_ = false;
  std::uint64_t largest_route_body_limit_ = 0;
  std::unordered_map<std::type_index, std::shared_ptr<void>> state_;
  // Each security scheme's name, as routes' docs give it: its identity and the first route.
  std::unordered_map<std::string, std::pair<std::string, std::string>> security_schemes_;
  std::vector<ExceptionMap> exception_maps_;
};

template <typename T>
T& Ctx::state() const {
  T* value = app_->find_state<T>();
  if (value == nullptr)
    throw std::logic_error("app state of type " + boost::core::demangle(typeid(T).name()) +
                           " was never set (App::set_state)");
  return *value;
}

}  // namespace molt::web
