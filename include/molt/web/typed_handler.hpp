// Typed handlers: the parameters say what a handler reads, its return type what it answers,
// and both go into the route's OpenAPI document, as FastAPI's path operation functions.
//
//   awaitable<Item> show_item(Path<"id", std::int64_t> id, Query<ItemView> view,
//                             State<Catalog> catalog, Ctx& ctx);
//   awaitable<Status<201, Item>> add_item(Body<NewItem> item, State<Catalog> catalog);
//   app.get("/items/{id}", show_item);   // a 400 names path.id when it is not an integer
//   app.post("/items", add_item);
//
// Each parameter is read before the handler runs, left to right; inputs that do not fit answer
// one 400 naming each (a 415 for a body of another type, a dependency's own failure, answer at
// once), and the handler does not run. A parameter is
// `const Request&`, `Ctx&`, one of the readers below, or a type of your own with
// `static T from_request(const Request&, Ctx&)` (or one returning `awaitable<T>`), and, if it
// has something to say in the route's doc, `static void describe(RouteDoc&)`: FastAPI's
// dependencies. A coroutine handler takes readers by value (a reference would outlive what
// it names). The answer is a Response as it is; a `void` handler answers 204; `Status<201, T>`
// answers its value with that status; any other value is written by respond() (JSON or
// MsgPack by Accept), 200.
#pragma once

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "molt/web/app.hpp"
#include "molt/web/cookies.hpp"
#include "molt/web/form.hpp"
#include "molt/web/openapi.hpp"
#include "molt/web/typed.hpp"

namespace molt::web {

// A name as a template argument: the "id" of Path<"id", T>.
template <std::size_t N>
struct ParamName {
  char text[N]{};
  constexpr ParamName(const char (&name)[N]) { std::copy_n(name, N, text); }  // NOLINT: implicit
  constexpr std::string_view view() const { return {text, N - 1}; }
};

namespace detail {

// What a reader holds, and access to it: `*id`, `item->title`, `item.value`.
template <class T>
struct Holder {
  T value;
  T& operator*() & { return value; }
  const T& operator*() const& { return value; }
  T&& operator*() && { return std::move(value); }
  T* operator->() { return &value; }
  const T* operator->() const { return &value; }
};

// What a named parameter (path, query, header, cookie) may be read as: one text value (a
// string, bool, number or described enum), or an optional of one; a query parameter also a
// std::vector of them.
template <class T>
inline constexpr bool is_one_text_v =
    is_text_value_v<typename codec::traits::without_optional<T>::type>;
template <class T>
inline constexpr bool is_text_list_v = (codec::traits::is_vector<T>::value &&
                                        is_text_value_v<typename one_value<T>::type>);

// A named parameter of type T from the texts it was sent as: a vector takes each, anything
// else the last; none is an empty optional, an empty vector, or else a 400 naming it.
template <class T, class Texts>
T param_from_texts(const Texts& texts, const codec::PathSegment& at) {
  if constexpr (codec::traits::is_vector<T>::value) {
    T values;
    values.reserve(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i)
      values.push_back(field_text_as<typename T::value_type>(texts[i], at.element(i)));
    return values;
  } else {
    if (texts.empty()) {
      if constexpr (codec::traits::is_optional<T>::value)
        return T{};
      else
        field_error(at, "a value", "nothing (it is required)");
    }
    return T{field_text_as<typename codec::traits::without_optional<T>::type>(texts.back(), at)};
  }
}

// One optional text as the texts param_from_texts reads (a view of `text`, no copy).
inline std::span<const std::string_view> texts_of(const std::optional<std::string_view>& text) {
  return text ? std::span<const std::string_view>(&*text, 1) : std::span<const std::string_view>();
}

// The names a typed handler reads under, in a 400's field: "path.id", "header.X-Token".
inline constexpr codec::PathSegment kPathRoot{nullptr, "path", 0};
inline constexpr codec::PathSegment kQueryRoot{nullptr, "query", 0};
inline constexpr codec::PathSegment kHeaderRoot{nullptr, "header", 0};
inline constexpr codec::PathSegment kCookieRoot{nullptr, "cookie", 0};

// The route has no path parameter of that name: App refuses such a route when it is added,
// so only a handler called by hand gets here.
[[noreturn]] inline void missing_path_param(std::string_view name) {
  throw std::logic_error("Path<\"" + std::string(name) + "\">: the route has no such parameter");
}

}  // namespace detail

// A path parameter of the route's pattern, as a T: `Path<"id", std::int64_t>` on
// `/items/{id}` (or `{id:int}`). Not a T: 400 naming `path.id`.
template <ParamName Name, class T>
struct Path : detail::Holder<T> {
  static_assert(detail::is_text_value_v<T>,
                "Path<name, T>: T is std::string, bool, a number or a described enum");
  static Path from_request(const Request&, Ctx& ctx) {
    const std::optional<std::string_view> text = ctx.param(Name.view());
    if (!text) detail::missing_path_param(Name.view());
    return {{detail::field_text_as<T>(*text, detail::kPathRoot.field(Name.view()))}};
  }
  static void describe(RouteDoc& doc) { doc.path_param<T>(std::string(Name.view())); }
};

// One query parameter as a T, a std::optional<T> (may be absent) or a std::vector<T> (every
// value of a repeated parameter): `QueryParam<"limit", std::optional<int>>`. Several, with
// defaults and rules, are a Query<Model>.
template <ParamName Name, class T>
struct QueryParam : detail::Holder<T> {
  static_assert(detail::is_one_text_v<T> || detail::is_text_list_v<T>,
                "QueryParam<name, T>: T is std::string, bool, a number or a described enum, "
                "or a std::optional or std::vector of one");
  static QueryParam from_request(const Request& request, Ctx&) {
    const codec::PathSegment at = detail::kQueryRoot.field(Name.view());
    std::vector<std::string> texts;
    try {
      texts = request.query_params(Name.view());
    } catch (const core::InvalidInput&) {  // a malformed escape, or not UTF-8 once decoded
      detail::field_error(at, "percent-encoded UTF-8", "a malformed escape or bytes that are not");
    }
    return {{detail::param_from_texts<T>(texts, at)}};
  }
  static void describe(RouteDoc& doc) {
    using One = typename detail::one_value<T>::type;
    if constexpr (codec::traits::is_vector<T>::value)
      doc.query<T>(std::string(Name.view()));  // an array: every value of the parameter
    else if constexpr (codec::traits::is_optional<T>::value)
      doc.query<One>(std::string(Name.view()));
    else
      doc.required_query<One>(std::string(Name.view()));
  }
};

// The query string as a described struct, as query_as<T>(request) reads it (typed.hpp):
// members by name, defaults, rules.
template <class T>
struct Query : detail::Holder<T> {
  static Query from_request(const Request& request, Ctx&) { return {{query_as<T>(request)}}; }
  static void describe(RouteDoc& doc) { doc.query<T>(); }
};

// A request header as a T or a std::optional<T>: `HeaderParam<"X-Token", std::string>`. Its name
// compares in any case; of several lines, the first.
template <ParamName Name, class T>
struct HeaderParam : detail::Holder<T> {
  static_assert(detail::is_one_text_v<T>,
                "HeaderParam<name, T>: T is std::string, bool, a number or a described enum, or a "
                "std::optional of one");
  static HeaderParam from_request(const Request& request, Ctx&) {
    const std::optional<std::string_view> text = request.header(Name.view());
    return {{detail::param_from_texts<T>(detail::texts_of(text),
                                         detail::kHeaderRoot.field(Name.view()))}};
  }
  static void describe(RouteDoc& doc) {
    using One = typename detail::one_value<T>::type;
    if constexpr (codec::traits::is_optional<T>::value)
      doc.header<One>(std::string(Name.view()));
    else
      doc.required_header<One>(std::string(Name.view()));
  }
};

// A cookie as a T or a std::optional<T>, as cookie(request, name) reads it (cookies.hpp).
template <ParamName Name, class T>
struct CookieParam : detail::Holder<T> {
  static_assert(detail::is_one_text_v<T>,
                "CookieParam<name, T>: T is std::string, bool, a number or a described enum, or a "
                "std::optional of one");
  static CookieParam from_request(const Request& request, Ctx&) {
    const std::optional<std::string_view> text = cookie(request, Name.view());
    return {{detail::param_from_texts<T>(detail::texts_of(text),
                                         detail::kCookieRoot.field(Name.view()))}};
  }
  static void describe(RouteDoc& doc) {
    using One = typename detail::one_value<T>::type;
    if constexpr (codec::traits::is_optional<T>::value)
      doc.cookie<One>(std::string(Name.view()));
    else
      doc.required_cookie<One>(std::string(Name.view()));
  }
};

// The body as a T, JSON or MsgPack by its Content-Type, as body_as<T>(request) reads it.
template <class T>
struct Body : detail::Holder<T> {
  static constexpr bool reads_whole_body = true;  // refused on a stream_body route
  static Body from_request(const Request& request, Ctx&) { return {{body_as<T>(request)}}; }
  static void describe(RouteDoc& doc) { doc.body<T>(); }
};

// The body as a form (urlencoded or multipart), as form_as<T>(request) reads it (form.hpp).
template <class T>
struct FormBody : detail::Holder<T> {
  static constexpr bool reads_whole_body = true;
  static FormBody from_request(const Request& request, Ctx&) { return {{form_as<T>(request)}}; }
  static void describe(RouteDoc& doc) { doc.form<T>(); }
};

// The app's state of type T (App::set_state): `State<Catalog> catalog; catalog->find(id)`.
template <class T>
struct State {
  T* state;
  T& operator*() const { return *state; }
  T* operator->() const { return state; }
  static State from_request(const Request&, Ctx& ctx) { return {&ctx.state<T>()}; }
};

// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), as FastAPI's
// HTTPBearer: what it proves (a session, a JWT) is the app's to check, in a dependency of its
// own that reads this one. Absent, of another scheme, or not a token: 401 not_authenticated
// with `WWW-Authenticate: Bearer`. The route's doc lists the scheme (as "bearer") and the 401.
struct BearerToken {
  std::string token;
  static BearerToken from_request(const Request& request, Ctx& ctx);
  static void describe(RouteDoc& doc);
};

namespace detail {
// The 401 of a missing API key, with `WWW-Authenticate: APIKey`.
[[noreturn]] void missing_api_key(std::string_view where, std::string_view name);
// An API key's scheme in the doc ("apiKey" in `in` under `name`) and its 401.
void describe_api_key(RouteDoc& doc, std::string_view in, std::string_view name);
}  // namespace detail

// An API key sent in a header, as FastAPI's APIKeyHeader: `ApiKeyHeader<"X-Api-Key">`. Absent
// or empty: 401 not_authenticated. Whether the key is good is the app's to check.
template <ParamName Name>
struct ApiKeyHeader {
  std::string key;
  static ApiKeyHeader from_request(const Request& request, Ctx&) {
    const std::optional<std::string_view> key = request.header(Name.view());
    if (!key || key->empty()) detail::missing_api_key("header", Name.view());
    return {std::string(*key)};
  }
  static void describe(RouteDoc& doc) { detail::describe_api_key(doc, "header", Name.view()); }
};

// An API key sent in a cookie, as FastAPI's APIKeyCookie.
template <ParamName Name>
struct ApiKeyCookie {
  std::string key;
  static ApiKeyCookie from_request(const Request& request, Ctx&) {
    const std::optional<std::string_view> key = cookie(request, Name.view());
    if (!key || key->empty()) detail::missing_api_key("cookie", Name.view());
    return {std::string(*key)};
  }
  static void describe(RouteDoc& doc) { detail::describe_api_key(doc, "cookie", Name.view()); }
};

// An answer of another status than 200: `co_return Status<201, Item>{item};`.
template <int Code, class T>
struct Status {
  static_assert(Code >= 200 && Code <= 599, "Status<code, T>: a final HTTP status, 200 to 599");
  static_assert(Code != 204 && Code != 205 && Code != 304,
                "Status<code, T>: a 204, 205 or 304 answer has no body; return void for a 204, "
                "or a Response");
  static constexpr int code = Code;
  // A constructor, not an aggregate: GCC 12 destroys an awaited value twice when it
  // initialises an aggregate in place (`co_return Status<201, Item>{co_await ...}` crashed).
  explicit Status(T answer) : value(std::move(answer)) {}
  T value;
};

namespace detail {

// What a handler returning R answers with: R, or T for an awaitable<T>.
template <class R>
struct handler_result {
  static constexpr bool coroutine = false;
  using value_type = R;
};
template <class T, class E>
struct handler_result<boost::asio::awaitable<T, E>> {
  static constexpr bool coroutine = true;
  using value_type = T;
};
template <class T>
struct is_status : std::false_type {};
template <int Code, class T>
struct is_status<Status<Code, T>> : std::true_type {};

template <class P>
inline constexpr bool is_request_param_v = std::is_same_v<P, const Request&>;
template <class P>
inline constexpr bool is_ctx_param_v = std::is_same_v<P, Ctx&>;

template <class D>
concept ReadNow = requires(const Request& request, Ctx& ctx) {
  { D::from_request(request, ctx) } -> std::convertible_to<D>;
};
template <class D>
concept ReadLater = requires(const Request& request, Ctx& ctx) {
  { D::from_request(request, ctx) } -> std::same_as<boost::asio::awaitable<D>>;
};

template <class P>
inline constexpr bool reads_later_v =
    !is_request_param_v<P> && !is_ctx_param_v<P> && ReadLater<std::remove_cvref_t<P>>;

// What a handler's argument is held as until the call: the request and the Ctx by reference,
// everything else by value.
template <class P>
using held_t = std::conditional_t<
    is_request_param_v<P>, std::reference_wrapper<const Request>,
    std::conditional_t<is_ctx_param_v<P>, std::reference_wrapper<Ctx>, std::remove_cvref_t<P>>>;

// The checks on one parameter, each with its own message.
template <class P, bool Coroutine>
constexpr void check_param() {
  using D = std::remove_cvref_t<P>;
  if constexpr (!is_request_param_v<P> && !is_ctx_param_v<P>) {
    static_assert(!std::is_same_v<D, Request> && !std::is_same_v<D, Ctx>,
                  "a typed handler takes the request as `const Request&` and the Ctx as `Ctx&`");
    static_assert(ReadNow<D> || ReadLater<D>,
                  "a typed handler's parameter is const Request&, Ctx&, Path, Query, QueryParam, "
                  "HeaderParam, CookieParam, Body, FormBody, State, or a type with "
                  "`static T from_request(const Request&, Ctx&)` (or returning awaitable<T>)");
    static_assert(!Coroutine || !std::is_reference_v<P>,
                  "a coroutine handler takes its readers by value: a reference would name a "
                  "value that is gone once the coroutine first suspends");
  }
}

template <class P>
held_t<P> read_now(const Request& request, Ctx& ctx) {
  if constexpr (is_request_param_v<P>)
    return std::cref(request);
  else if constexpr (is_ctx_param_v<P>)
    return std::ref(ctx);
  else
    return std::remove_cvref_t<P>::from_request(request, ctx);
}

template <class P>
boost::asio::awaitable<held_t<P>> read_later(const Request& request, Ctx& ctx) {
  if constexpr (reads_later_v<P>)
    co_return co_await std::remove_cvref_t<P>::from_request(request, ctx);
  else
    co_return read_now<P>(request, ctx);
}

// A handler's parameters, read in order. An input that does not fit (a DecodeError) is kept
// and the reading goes on, so that one 400 names every such input (its `errors`); any other
// failure (a 401, a 415) answers at once.
template <class... P>
struct Arguments {
  using Held = std::tuple<held_t<P>...>;
  using Slots = std::tuple<std::optional<held_t<P>>...>;
  using Wrong = std::vector<codec::DecodeError>;
  static constexpr std::size_t readers = ((!is_request_param_v<P> && !is_ctx_param_v<P>)+... + 0);

  static Held read(const Request& request, Ctx& ctx) {
    if constexpr (readers <= 1) {
      return Held{read_now<P>(request, ctx)...};  // one error at most: nothing to gather
    } else {
      Slots slots;
      Wrong wrong;
      read_each(slots, wrong, request, ctx, std::index_sequence_for<P...>{});
      return take(slots, wrong, std::index_sequence_for<P...>{});
    }
  }

  static boost::asio::awaitable<Held> read_later(const Request& request, Ctx& ctx) {
    Slots slots;
    Wrong wrong;
    co_await read_each_later(slots, wrong, request, ctx, std::index_sequence_for<P...>{});
    co_return take(slots, wrong, std::index_sequence_for<P...>{});
  }

 private:
  static void keep(Wrong& wrong, const codec::DecodeError& error) {
    if (const auto* several = dynamic_cast<const codec::DecodeErrors*>(&error))
      wrong.insert(wrong.end(), several->all().begin(), several->all().end());
    else
      wrong.push_back(error);
  }
  template <std::size_t... I>
  static void read_each(Slots& slots, Wrong& wrong, const Request& request, Ctx& ctx,
                        std::index_sequence<I...>) {
    const auto one = [&]<class Q>(std::optional<held_t<Q>>& slot) {
      try {
        slot.emplace(read_now<Q>(request, ctx));
      } catch (const codec::DecodeError& error) {
        keep(wrong, error);
      }
    };
    (one.template operator()<P>(std::get<I>(slots)), ...);
  }
  template <class Q>
  static boost::asio::awaitable<void> read_one_later(std::optional<held_t<Q>>& slot, Wrong& wrong,
                                                     const Request& request, Ctx& ctx) {
    try {
      held_t<Q> value = co_await detail::read_later<Q>(request, ctx);
      slot.emplace(std::move(value));
    } catch (const codec::DecodeError& error) {
      keep(wrong, error);
    }
  }
  template <std::size_t... I>
  static boost::asio::awaitable<void> read_each_later(Slots& slots, Wrong& wrong,
                                                      const Request& request, Ctx& ctx,
                                                      std::index_sequence<I...>) {
    (co_await read_one_later<P>(std::get<I>(slots), wrong, request, ctx), ...);
  }
  template <std::size_t... I>
  static Held take(Slots& slots, Wrong& wrong, std::index_sequence<I...>) {
    if (wrong.size() == 1) throw wrong.front();
    if (!wrong.empty()) throw codec::DecodeErrors(std::move(wrong));
    return Held{std::move(*std::get<I>(slots))...};
  }
};

// A handler's value as the answer.
template <class V>
Response answer_of(const Request& request, V&& value) {
  using T = std::remove_cvref_t<V>;
  if constexpr (std::is_same_v<T, Response>)
    return std::forward<V>(value);
  else if constexpr (is_status<T>::value)
    return respond(request, value.value, T::code);
  else
    return respond(request, value);
}

// Calls `f`, a plain function, with `args` (a tuple of held_t) and answers with what it gives.
template <class F, class Tuple>
Response call_now(const F& f, Tuple args, const Request& request) {
  if constexpr (std::is_void_v<decltype(std::apply(f, std::move(args)))>) {
    std::apply(f, std::move(args));
    return Response(204);
  } else {
    return answer_of(request, std::apply(f, std::move(args)));
  }
}

// The same for any `f`, awaiting a coroutine's answer.
template <class F, class Tuple>
boost::asio::awaitable<Response> call_and_answer(const F& f, Tuple args, const Request& request) {
  using R = decltype(std::apply(f, std::move(args)));
  if constexpr (!handler_result<R>::coroutine) {
    co_return call_now(f, std::move(args), request);
  } else if constexpr (std::is_void_v<typename handler_result<R>::value_type>) {
    co_await std::apply(f, std::move(args));
    co_return Response(204);
  } else {
    co_return answer_of(request, co_await std::apply(f, std::move(args)));
  }
}

template <class F, class R, class... P>
Handler typed_handler(F f, Signature<R, P...>) {
  constexpr bool coroutine = handler_result<R>::coroutine;
  (check_param<P, coroutine>(), ...);
  if constexpr ((reads_later_v<P> || ...)) {
    // Some parameter is read by a coroutine: each is awaited, in order.
    return
        [f = std::move(f)](const Request& request, Ctx& ctx) -> boost::asio::awaitable<Response> {
          std::tuple<held_t<P>...> args = co_await Arguments<P...>::read_later(request, ctx);
          co_return co_await call_and_answer(f, std::move(args), request);
        };
  } else if constexpr (coroutine &&
                       std::is_same_v<typename handler_result<R>::value_type, Response>) {
    // The handler's own coroutine is the route's: no frame between (the arguments are moved
    // into it before it first suspends).
    return
        [f = std::move(f)](const Request& request, Ctx& ctx) -> boost::asio::awaitable<Response> {
          return std::apply(f, Arguments<P...>::read(request, ctx));
        };
  } else if constexpr (!coroutine) {
    return answering_at_once([f = std::move(f)](const Request& request, Ctx& ctx) -> Response {
      return call_now(f, Arguments<P...>::read(request, ctx), request);
    });
  } else {
    return
        [f = std::move(f)](const Request& request, Ctx& ctx) -> boost::asio::awaitable<Response> {
          return call_and_answer(f, Arguments<P...>::read(request, ctx), request);
        };
  }
}

// What a parameter or an answer of type V says in the route's doc.
template <class P>
void describe_param(RouteDoc& doc) {
  using D = std::remove_cvref_t<P>;
  if constexpr (!is_request_param_v<P> && !is_ctx_param_v<P>)
    if constexpr (requires(RouteDoc & d) { D::describe(d); }) D::describe(doc);
}
template <class V>
void describe_answer(RouteDoc& doc) {
  if constexpr (std::is_void_v<V>)
    doc.returns_raw(204, "");
  else if constexpr (is_status<V>::value)
    doc.returns<decltype(V::value)>(V::code);
  else if constexpr (!std::is_same_v<V, Response>)
    doc.returns<V>();
}

template <class R, class... P>
std::shared_ptr<const RouteDoc> typed_doc(std::shared_ptr<const RouteDoc> given,
                                          Signature<R, P...>) {
  RouteDoc read;
  const auto add = [&read](auto describe) {
    RouteDoc reader;  // each reader's own, so that two may declare the same thing alike
    describe(reader);
    read.add_reader(reader);
  };
  (add([](RouteDoc& doc) { describe_param<P>(doc); }), ...);
  describe_answer<typename handler_result<R>::value_type>(read);
  RouteDoc merged = given ? *given : RouteDoc();
  merged.merge(read);
  return std::make_shared<const RouteDoc>(std::move(merged));
}

template <class P>
constexpr bool reads_whole_body() {
  if constexpr (requires { std::remove_cvref_t<P>::reads_whole_body; })
    return std::remove_cvref_t<P>::reads_whole_body;
  return false;
}
template <class R, class... P>
constexpr bool reads_whole_body(Signature<R, P...>) {
  return (reads_whole_body<P>() || ...);
}

template <class F>
struct TypedRoute<F, std::void_t<typename signature_of<F>::type>> {
  using Read = typename signature_of<F>::type;
  static constexpr bool reads_whole_body = detail::reads_whole_body(Read{});
  static Handler handler(F f) { return typed_handler(std::move(f), Read{}); }
  static std::shared_ptr<const RouteDoc> complete_doc(std::shared_ptr<const RouteDoc> given) {
    return typed_doc(std::move(given), Read{});
  }
};

}  // namespace detail

}  // namespace molt::web
