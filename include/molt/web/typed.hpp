// Typed bodies, answers and query parameters for handlers, from described structs
// (BOOST_DESCRIBE_STRUCT): one description gives JSON and MsgPack both ways.
//
//   struct NewItem { std::string title; std::optional<double> score; };
//   BOOST_DESCRIBE_STRUCT(NewItem, (), (title, score))
//
//   app.post("/items", [](const Request& request, Ctx&) -> awaitable<Response> {
//     const auto item = molt::web::body_as<NewItem>(request);   // 400 naming the bad field
//     co_return molt::web::respond(request, Created{...}, 201);  // JSON or MsgPack by Accept
//   });
#pragma once

#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <charconv>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "molt/codec/decode_error.hpp"
#include "molt/codec/defaults.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/web/app.hpp"
#include "molt/web/message.hpp"

namespace molt::web {

inline constexpr char kJson[] = "application/json";
inline constexpr char kMsgPack[] = "application/msgpack";

// Whether the client prefers MsgPack: by the q-values of its Accept header (RFC 9110
// §12.5.1), application/msgpack (or application/x-msgpack) weighs more than application/json,
// or as much and is named first. JSON otherwise: by default, on a tie, and when the client
// accepts neither (no 406, as FastAPI does).
bool prefers_msgpack(const Request& request);

template <typename T>
Response json(const T& value, int status = 200) {
  Response response(status, {}, kJson);
  codec::write_json(response.body(), value);
  return response;
}

template <typename T>
Response msgpack(const T& value, int status = 200) {
  Response response(status, {}, kMsgPack);
  codec::write_msgpack(response.body(), value);
  return response;
}

// JSON or MsgPack, as the request's Accept header prefers.
// The answer says `Vary: Accept`, so that caches keep the two forms apart.
template <typename T>
Response respond(const Request& request, const T& value, int status = 200) {
  Response response = prefers_msgpack(request) ? msgpack(value, status) : json(value, status);
  response.add_vary("Accept");
  return response;
}

// `body` (the request's, or one collected from a streamed body) decoded by the request's
// Content-Type (JSON when absent; application/*+json is JSON too). Throws HttpError 415 for
// other types, and
// core::InvalidInput (a 400 naming the field) for a body that does not fit T.
template <typename T>
T body_as(const Request& request, std::string_view body) {
  const std::string_view type = request.header("Content-Type").value_or(std::string_view(kJson));
  const std::string_view media = trim_ows(type.substr(0, type.find(';')));  // `type ; charset`
  // application/json, or a JSON type with the +json suffix (RFC 6839: application/vnd.api+json).
  const bool json_suffix = media.size() > 17 && iequals(media.substr(0, 12), "application/") &&
                           iequals(media.substr(media.size() - 5), "+json");
  if (iequals(media, kJson) || json_suffix) return codec::decode_json<T>(body, "body");
  if (iequals(media, kMsgPack) || iequals(media, "application/x-msgpack"))
    return codec::decode_msgpack<T>(body, "body");
  throw HttpError(415, "unsupported_media_type", "send application/json or application/msgpack");
}

// The request's body, decoded as above. On a route that streams its body there is none to
// decode here: that is a programming error (std::logic_error, a 500); decode
// `co_await ctx.body().read_all()` with the overload above instead.
template <typename T>
T body_as(const Request& request) {
  if (request.body_streamed())
    throw std::logic_error(
        "body_as(request) on a route with stream_body: decode co_await ctx.body().read_all()");
  return body_as<T>(request, request.body());
}

namespace detail {
// What text_as reads.
template <typename T>
inline constexpr bool is_text_value_v = std::is_same_v<T, std::string> || std::is_arithmetic_v<T> ||
                                        codec::traits::is_described_enum_v<T>;

// What one text of a member of type M is read as: M's value, an optional's, a vector's element.
template <typename M>
struct one_value : codec::traits::without_optional<M> {};
template <typename E, typename A>
struct one_value<std::vector<E, A>> {
  using type = E;
};

// Whether query_as<T>(request) can read T: a described struct whose members are each text, a
// bool, a number, a described enum, an optional of one or a std::vector of them, and whose
// MOLT_DEFAULTS name its members.
template <typename T>
constexpr bool is_query_model() {
  if constexpr (!codec::traits::is_described_struct_v<T>) {
    return false;
  } else {
    bool readable = codec::traits::defaults_name_members<T>();
    boost::mp11::mp_for_each<boost::describe::describe_members<
        T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
      using M = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
      readable = readable && is_text_value_v<typename one_value<M>::type>;
    });
    return readable;
  }
}

// What a text was not, in the words of a 400: "an integer in range", "a number".
struct TextMismatch {
  std::string_view expected;
};

// `text` as T (std::string, bool, an integer or a floating-point type, a described enum by
// its enumerator's name), as a query parameter or a form field reads it; throws TextMismatch.
template <typename T>
T text_as(std::string_view text) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(text);
  } else if constexpr (std::is_same_v<T, bool>) {
    // The spellings FastAPI (Pydantic) takes, in any case.
    for (const std::string_view yes : {"true", "1", "yes", "on", "t", "y"})
      if (iequals(text, yes)) return true;
    for (const std::string_view no : {"false", "0", "no", "off", "f", "n"})
      if (iequals(text, no)) return false;
    throw TextMismatch{"true or false (or 1/0, yes/no, on/off)"};
  } else if constexpr (codec::traits::is_described_enum_v<T>) {
    T value{};  // an enumerator by its name, as a body names it
    if (!codec::traits::enum_from_name(text, value))
      throw TextMismatch{codec::traits::enum_names_hint<T>()};
    return value;
  } else {
    static_assert(std::is_arithmetic_v<T>,
                  "a query parameter or form field is a string, bool, number or described enum");
    // A leading '+' is a sign, as Pydantic reads "+7" (from_chars takes only '-').
    std::string_view digits = text;
    if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-' && digits[1] != '+')
      digits.remove_prefix(1);
    T value{};
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
      throw TextMismatch{std::is_integral_v<T> ? "an integer in range" : "a number"};
    // from_chars reads "nan" and "inf", which would slip past every range check after.
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(value)) throw TextMismatch{"a finite number"};
    return value;
  }
}

// Throws codec::DecodeError: a 400 naming the field ("query.limit: expected ..., got ...").
[[noreturn]] void field_error(const codec::PathSegment& at, std::string_view expected,
                              std::string_view got);

// One field's text as T (a text, bool, number or described enum member).
template <class T>
T field_text_as(std::string_view text, const codec::PathSegment& at) {
  try {
    return text_as<T>(text);
  } catch (const TextMismatch& mismatch) {
    field_error(at, mismatch.expected, codec::quoted_excerpt(text));
  }
}

// A struct's member, described by `member`, from the texts its name was given (`texts`, in
// order), as query parameters and form fields are read: a std::vector takes each, any other
// member the last. None (or, with `blank_is_absent`, an empty last one, as a form's empty
// input): a MOLT_DEFAULTS member keeps its initial value, a std::optional is empty, anything
// else is a 400 "nothing (the field is required)".
template <class S, class D, class Texts>
void text_member(S& out, D member, const Texts& texts, const codec::PathSegment& at,
                 bool blank_is_absent) {
  using M = std::remove_cvref_t<decltype(out.*member.pointer)>;
  auto& target = out.*member.pointer;
  constexpr bool keeps_default = codec::traits::keeps_default<S>(D::name);
  if constexpr (codec::traits::is_vector<M>::value) {
    target.clear();
    std::size_t i = 0;  // the input's own place, blanks counted, for the message
    for (const std::string_view text : texts) {
      if (!blank_is_absent || !text.empty())
        target.push_back(field_text_as<typename M::value_type>(text, at.element(i)));
      ++i;
    }
    if constexpr (keeps_default)
      if (target.empty()) codec::detail::restore_default(out, member.pointer);
  } else if (texts.empty() || (blank_is_absent && std::string_view(texts.back()).empty())) {
    if constexpr (keeps_default)
      codec::detail::restore_default(out, member.pointer);
    else if constexpr (codec::traits::is_optional<M>::value)
      target.reset();
    else
      field_error(at, "a value", "nothing (the field is required)");
  } else {
    target = field_text_as<typename codec::traits::without_optional<M>::type>(texts.back(), at);
  }
}
}  // namespace detail

// A query parameter as T (std::string, bool, an integer or a floating-point type); nullopt
// when absent. Throws HttpError 400 naming the parameter when it does not parse.
template <typename T>
std::optional<T> query_as(const Request& request, std::string_view name) {
  std::optional<std::string> text = request.query_param(name);
  if (!text) return std::nullopt;
  try {
    return detail::text_as<T>(*text);
  } catch (const detail::TextMismatch& mismatch) {
    throw HttpError(
        400, "invalid_input",
        "query parameter '" + std::string(name) + "' must be " + std::string(mismatch.expected));
  }
}

// The same with a value for an absent parameter: `query_as(request, "limit", 50)`, or
// `query_as<std::string>(request, "sort", "id")`. A present one that does not parse is
// still a 400.
template <typename T>
T query_as(const Request& request, std::string_view name, T absent) {
  std::optional<T> value = query_as<T>(request, name);
  return value ? std::move(*value) : std::move(absent);
}

// A literal for an absent parameter reads it as text: `query_as(request, "sort", "id")`.
inline std::string query_as(const Request& request, std::string_view name, const char* absent) {
  return query_as<std::string>(request, name, std::string(absent));
}

// A query parameter that must be there: `query_required<std::int64_t>(request, "user_id")`.
// Absent, a 400 "query parameter 'user_id' is required"; one that does not parse, as query_as.
template <typename T>
T query_required(const Request& request, std::string_view name) {
  std::optional<T> value = query_as<T>(request, name);
  if (!value)
    throw HttpError(400, "invalid_input",
                    "query parameter '" + std::string(name) + "' is required");
  return std::move(*value);
}

// The query string as T, a described struct, as FastAPI's query parameter models:
//
//   struct ItemFilter { std::int64_t user_id; std::optional<std::string> status;
//                       std::vector<std::string> tag; int limit = 50; };
//   BOOST_DESCRIBE_STRUCT(ItemFilter, (), (user_id, status, tag, limit))
//   MOLT_DEFAULTS(ItemFilter, tag, limit)
//   MOLT_RULES(ItemFilter, rule(&ItemFilter::limit, between(1, 500)))
//
//   const auto filter = molt::web::query_as<ItemFilter>(request);  // ?user_id=7&tag=a&tag=b
//
// Each member reads the parameter of its name as query_as reads one (an empty value is the
// empty text, and no number); a std::vector takes every value of a repeated parameter; a
// MOLT_DEFAULTS or std::optional member may be absent; MOLT_RULES hold; other parameters are
// ignored. A 400 names the parameter: "query.limit: expected an integer in range, got \"x\"".
template <class T>
requires codec::traits::is_described_struct_v<T> T query_as(const Request& request) {
  static_assert(detail::is_query_model<T>(),
                "query_as<T>: each member is text, a bool, a number, a described enum, an "
                "optional of one, or a std::vector of them; MOLT_DEFAULTS names members");
  T out{};
  const codec::PathSegment root{nullptr, "query", 0};
  boost::mp11::mp_for_each<boost::describe::describe_members<
      T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
    const codec::PathSegment at = root.field(member.name);
    std::vector<std::string> texts;
    try {
      texts = request.query_params(member.name);
    } catch (const core::InvalidInput&) {  // a malformed escape, or not UTF-8 once decoded
      detail::field_error(at, "percent-encoded UTF-8", "a malformed escape or bytes that are not");
    }
    detail::text_member(out, member, texts, at, false);
  });
  codec::check_rules(out, root);
  return out;
}

}  // namespace molt::web
