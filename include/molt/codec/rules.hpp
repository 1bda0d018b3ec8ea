#pragma once
// Declared limits on the members of a described struct (Pydantic's Field(ge=..,
// max_length=..)): both decoders check them, naming the field, and its JSON Schema shows them.
//
//   struct NewItem {
//     std::int64_t user_id = 0;
//     std::string title;
//     std::string status = "open";
//     double score = 0;
//     std::vector<std::string> tags;
//   };
//   BOOST_DESCRIBE_STRUCT(NewItem, (), (user_id, title, status, score, tags))
//   MOLT_RULES(NewItem,
//              rule(&NewItem::user_id, at_least(1)),
//              rule(&NewItem::title, length(1, 200)),
//              rule(&NewItem::status, one_of("open", "closed")),
//              rule(&NewItem::score, between(0, 10)),
//              rule(&NewItem::tags, max_length(20)))
//
// A body with "score": 11 is then a 400 "body.score: expected a number at most 10, got 11".
// The words, each for the members it fits (another member is a compile error):
//   at_least(x), more_than(x), at_most(x), less_than(x), between(lo, hi)   numbers
//   length(min, max), min_length(n), max_length(n)   text (in characters: code points, as
//                                                    JSON Schema and Pydantic count), arrays
//                                                    and maps (in elements)
//   one_of(a, b, ...)                                text or numbers
// A rule on a std::optional member holds for its value when there is one. Rules are checked
// after the struct is decoded, on every member (a MOLT_DEFAULTS initial value too); check_rules
// checks a value built in code. Write MOLT_RULES next to BOOST_DESCRIBE_STRUCT, in the struct's
// namespace, as MOLT_DEFAULTS.

#include <array>
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "molt/codec/decode_error.hpp"
#include "molt/codec/traits.hpp"

namespace molt::codec {

// What a value that breaks a rule is told: "expected <expected>, got <got>".
struct RuleFailure {
  std::string expected;
  std::string got;
};

namespace detail {
std::string number_text(double value);
std::string number_text(std::int64_t value);
std::string number_text(std::uint64_t value);
// `text` quoted, cut to its first few dozen bytes.
std::string quoted_excerpt(std::string_view text);
std::size_t code_points(std::string_view utf8) noexcept;

template <class N>
std::string any_number_text(N value) {
  if constexpr (std::is_floating_point_v<N>)
    return number_text(static_cast<double>(value));
  else if constexpr (std::is_signed_v<N>)
    return number_text(static_cast<std::int64_t>(value));
  else
    return number_text(static_cast<std::uint64_t>(value));
}

// a < b, exact for any two integers; through long double when either is floating.
template <class A, class B>
constexpr bool less(A a, B b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
    return std::cmp_less(a, b);
  else
    return static_cast<long double>(a) < static_cast<long double>(b);
}

template <class A, class B>
constexpr bool less_or_equal(A a, B b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
    return std::cmp_less_equal(a, b);
  else
    return static_cast<long double>(a) <= static_cast<long double>(b);
}

template <class M>
inline constexpr bool is_number_v = std::is_arithmetic_v<M> && !std::is_same_v<M, bool>;
template <class M>
inline constexpr bool is_sized_v = std::is_same_v<M, std::string> || traits::is_vector<M>::value ||
                                   traits::is_string_map<M>::value;
}  // namespace detail

namespace rules {

// A bound on a number: at_least / more_than (low), at_most / less_than (high).
template <class B>
struct Bound {
  static_assert(detail::is_number_v<B>, "a bound is a number");
  B value;
  bool low;
  bool exclusive;

  template <class M>
  std::optional<RuleFailure> check(const M& number) const {
    static_assert(detail::is_number_v<M>,
                  "at_least/at_most/more_than/less_than/between: for numbers");
    // NaN (MsgPack carries it) is in no range: every comparison with it is false.
    const bool fits =
        low ? (exclusive ? detail::less(value, number) : detail::less_or_equal(value, number))
            : (exclusive ? detail::less(number, value) : detail::less_or_equal(number, value));
    if (fits) return std::nullopt;
    std::string words = std::is_integral_v<M> ? "an integer " : "a number ";
    words +=
        low ? (exclusive ? "more than " : "at least ") : (exclusive ? "less than " : "at most ");
    return RuleFailure{words + detail::any_number_text(value), detail::any_number_text(number)};
  }
};

template <class B, class C>
struct Range {
  Bound<B> low;
  Bound<C> high;
  template <class M>
  std::optional<RuleFailure> check(const M& number) const {
    static_assert(detail::is_number_v<M>, "between: for numbers");
    if (!low.check(number) && !high.check(number)) return std::nullopt;
    return RuleFailure{std::string(std::is_integral_v<M> ? "an integer" : "a number") + " from " +
                           detail::any_number_text(low.value) + " to " +
                           detail::any_number_text(high.value),
                       detail::any_number_text(number)};
  }
};

// Characters of text, elements of an array or a map.
struct Length {
  std::size_t min = 0;
  std::optional<std::size_t> max;

  template <class M>
  std::optional<RuleFailure> check(const M& sized) const {
    static_assert(detail::is_sized_v<M>, "length/min_length/max_length: for text, arrays and maps");
    constexpr bool text = std::is_same_v<M, std::string>;
    std::size_t n;
    if constexpr (text)
      n = detail::code_points(sized);
    else
      n = sized.size();
    if (n >= min && (!max || n <= *max)) return std::nullopt;
    const std::string unit =
        text ? " characters" : (traits::is_vector<M>::value ? " elements" : " entries");
    std::string words =
        text ? "text of " : (traits::is_vector<M>::value ? "an array of " : "an object of ");
    if (!max)
      words += "at least " + std::to_string(min);
    else if (min == 0)
      words += "at most " + std::to_string(*max);
    else if (min == *max)
      words += std::to_string(min);
    else
      words += std::to_string(min) + " to " + std::to_string(*max);
    return RuleFailure{words + unit, std::to_string(n) + unit};
  }
};

template <class V, std::size_t N>
struct OneOf {
  std::array<V, N> values;

  template <class M>
  std::optional<RuleFailure> check(const M& value) const {
    for (const V& allowed : values)
      if (value == allowed) return std::nullopt;
    std::string words = "one of ";
    for (std::size_t i = 0; i < N; ++i) {
      if (i > 0) words += ", ";
      if constexpr (std::is_same_v<M, std::string>)
        words += detail::quoted_excerpt(values[i]);
      else
        words += detail::any_number_text(values[i]);
    }
    if constexpr (std::is_same_v<M, std::string>)
      return RuleFailure{words, detail::quoted_excerpt(value)};
    else
      return RuleFailure{words, detail::any_number_text(value)};
  }
};

template <class B>
constexpr Bound<B> at_least(B value) {
  return {value, true, false};
}
template <class B>
constexpr Bound<B> more_than(B value) {
  return {value, true, true};
}
template <class B>
constexpr Bound<B> at_most(B value) {
  return {value, false, false};
}
template <class B>
constexpr Bound<B> less_than(B value) {
  return {value, false, true};
}
template <class B, class C>
constexpr Range<B, C> between(B low, C high) {
  return {{low, true, false}, {high, false, false}};
}
constexpr Length length(std::size_t min, std::size_t max) {
  return {min, max};
}
constexpr Length min_length(std::size_t min) {
  return {min, std::nullopt};
}
constexpr Length max_length(std::size_t max) {
  return {0, max};
}
template <class V, class... More>
constexpr auto one_of(V first, More... more) {
  using Value = std::conditional_t<std::is_convertible_v<V, std::string_view>, std::string_view, V>;
  return OneOf<Value, 1 + sizeof...(More)>{{Value(first), Value(more)...}};
}

// The checks of one member.
template <class S, class M, class... Checks>
struct MemberRule {
  M S::*member;
  std::tuple<Checks...> checks;
};
template <class S, class M, class... Checks>
constexpr MemberRule<S, M, Checks...> rule(M S::*member, Checks... checks) {
  static_assert(sizeof...(Checks) > 0, "rule(&T::member, ...): name at least one check");
  return {member, {checks...}};
}

}  // namespace rules

#define MOLT_RULES(Type, ...)                                           \
  [[maybe_unused]] constexpr auto molt_rules_of(const Type*) noexcept { \
    using namespace ::molt::codec::rules;                               \
    return std::tuple{__VA_ARGS__};                                     \
  }                                                                     \
  static_assert(::molt::codec::traits::has_rules<Type>(),               \
                "MOLT_RULES(" #Type ", ...) must be written in the namespace of " #Type);

namespace traits {
template <class T>
constexpr bool has_rules() {
  return requires {
    molt_rules_of(static_cast<const T*>(nullptr));
  };
}
}  // namespace traits

namespace detail {

template <class T>
using RuleMembers = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;

// The described name of the member `pointer` points to ("" when it is not described).
template <class T, class P>
constexpr std::string_view member_name(P pointer) {
  std::string_view name;
  boost::mp11::mp_for_each<RuleMembers<T>>([&](auto member) {
    if constexpr (std::is_same_v<std::remove_cv_t<decltype(member.pointer)>, P>)
      if (member.pointer == pointer) name = member.name;
  });
  return name;
}

// Every rule of T names a described member.
template <class T>
constexpr bool rules_name_members() {
  return std::apply(
      [](const auto&... rule) { return (!member_name<T>(rule.member).empty() && ...); },
      molt_rules_of(static_cast<const T*>(nullptr)));
}

template <class M, class Check>
std::optional<RuleFailure> check_value(const M& value, const Check& check) {
  if constexpr (traits::is_optional<M>::value)
    return value ? check_value(*value, check) : std::nullopt;
  else
    return check.check(value);
}

}  // namespace detail

// Throws a DecodeError naming the first member of `value` that breaks one of T's rules
// ("body.score: expected a number at most 10, got 11"); nothing when T has none.
template <class T>
void check_rules(const T& value, const PathSegment& at) {
  if constexpr (traits::has_rules<T>()) {
    static_assert(detail::rules_name_members<T>(),
                  "MOLT_RULES names a member that is not a described member of this struct");
    static constexpr auto kRules = molt_rules_of(static_cast<const T*>(nullptr));
    std::apply(
        [&](const auto&... rule) {
          const auto check_member = [&](const auto& one) {
            std::apply(
                [&](const auto&... checks) {
                  const auto check_one = [&](const auto& check) {
                    if (auto failure = detail::check_value(value.*one.member, check))
                      throw DecodeError(at.field(detail::member_name<T>(one.member)),
                                        failure->expected, failure->got);
                  };
                  (check_one(checks), ...);
                },
                one.checks);
          };
          (check_member(rule), ...);
        },
        kRules);
  }
}

}  // namespace molt::codec
