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
// A body with "score": 11 is then a 400 "body.score: expected a number from 0 to 10, got
// 11.0". The words, each for the members it fits (another member is a compile error):
//   at_least(x), more_than(x), at_most(x), less_than(x), between(lo, hi)   numbers
//   length(min, max), min_length(n), max_length(n)   text (in characters: code points, as
//                                                    JSON Schema and Pydantic count), arrays
//                                                    and maps (in elements)
//   one_of(a, b, ...)                                text, numbers, a described enum's values
//   pattern(R"(^[a-z0-9-]+$)")                       text that the regular expression matches
//                                                    (see Pattern below)
//   each(check, ...)                                 every element of an array (every value of
//                                                    a map) holds the checks: Pydantic's
//                                                    list[Annotated[str, Field(...)]]
// A rule on a std::optional member holds for its value when there is one. Rules are checked
// after the struct is decoded, on every member (a MOLT_DEFAULTS initial value too); a derived
// struct keeps its described bases' rules and adds its own. check_rules checks a value built
// in code. Write MOLT_RULES next to BOOST_DESCRIBE_STRUCT, in the struct's namespace, as
// MOLT_DEFAULTS (a template's instance through an alias: the macro takes no commas in a name).

#include <array>
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
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
std::size_t code_points(std::string_view utf8) noexcept;

// Whether the regular expression `expression` matches somewhere in `text` (RE2).
// std::invalid_argument naming it when `expression` is no regular expression.
bool pattern_found(std::string_view expression, std::string_view text);

template <class N>
std::string any_number_text(N value) {
  if constexpr (std::is_floating_point_v<N>)
    return number_text(static_cast<double>(value));
  else if constexpr (std::is_signed_v<N>)
    return number_text(static_cast<std::int64_t>(value));
  else
    return number_text(static_cast<std::uint64_t>(value));
}

template <class M>
inline constexpr bool is_number_v = std::is_arithmetic_v<M> && !std::is_same_v<M, bool>;
template <class M>
inline constexpr bool is_sized_v = std::is_same_v<M, std::string> || traits::is_vector<M>::value ||
                                   traits::is_string_map<M>::value;

// A bound as the member's own type when that is floating: a float member holding 0.1 is
// 0.1f, which a bound of 0.1 (a double) would find larger. A bound past the type's range is
// its infinity (converting it would be undefined).
template <class M, class B>
constexpr auto as_member_type(B bound) {
  if constexpr (std::is_floating_point_v<M>) {
    constexpr auto most = static_cast<long double>(std::numeric_limits<M>::max());
    if (static_cast<long double>(bound) > most) return std::numeric_limits<M>::infinity();
    if (static_cast<long double>(bound) < -most) return -std::numeric_limits<M>::infinity();
    return static_cast<M>(bound);
  } else {
    return bound;
  }
}

// a < b, a <= b and a == b, exact for any two integers; through long double when either is
// floating (every comparison with NaN is false).
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
template <class A, class B>
constexpr bool equal(A a, B b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
    return std::cmp_equal(a, b);
  else
    return static_cast<long double>(a) == static_cast<long double>(b);
}

template <class E>
std::string enumerator_text(E value) {
  const char* name = boost::describe::enum_to_string(value, nullptr);
  return name ? "\"" + std::string(name) + "\"" : std::string("?");
}
}  // namespace detail

namespace rules {

// A bound on a number: at_least / more_than (low), at_most / less_than (high).
template <class B>
struct Bound {
  static_assert(detail::is_number_v<B>, "a bound is a number");
  B value;
  bool low;
  bool exclusive;

  constexpr bool valid() const { return value == value; }  // not NaN

  template <class M>
  std::optional<RuleFailure> check(const M& number) const {
    static_assert(detail::is_number_v<M>,
                  "at_least/at_most/more_than/less_than/between: for numbers");
    const auto bound = detail::as_member_type<M>(value);
    const bool fits =
        low ? (exclusive ? detail::less(bound, number) : detail::less_or_equal(bound, number))
            : (exclusive ? detail::less(number, bound) : detail::less_or_equal(number, bound));
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

  constexpr bool valid() const {
    return low.valid() && high.valid() && detail::less_or_equal(low.value, high.value);
  }

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

  constexpr bool valid() const { return !max || min <= *max; }

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

  constexpr bool valid() const { return true; }

  template <class M>
  static constexpr bool fits() {
    if constexpr (std::is_same_v<V, std::string_view>)
      return std::is_same_v<M, std::string>;
    else if constexpr (std::is_enum_v<V>)
      return std::is_same_v<M, V>;
    else
      return detail::is_number_v<M>;
  }

  template <class M>
  std::optional<RuleFailure> check(const M& value) const {
    static_assert(fits<M>(),
                  "one_of: text values for a std::string member, numbers for a number, the "
                  "enum's own values for a described enum");
    for (const V& allowed : values) {
      if constexpr (detail::is_number_v<V>) {
        if (detail::equal(value, detail::as_member_type<M>(allowed))) return std::nullopt;
      } else if (value == allowed) {
        return std::nullopt;
      }
    }
    std::string words = "one of ";
    for (std::size_t i = 0; i < N; ++i) {
      if (i > 0) words += ", ";
      words += text(values[i]);
    }
    return RuleFailure{words, text(value)};
  }

 private:
  template <class X>
  static std::string text(const X& value) {
    if constexpr (std::is_convertible_v<X, std::string_view>)
      return quoted_excerpt(value);
    else if constexpr (std::is_enum_v<X>)
      return detail::enumerator_text(value);
    else
      return detail::any_number_text(value);
  }
};

// Text in which the regular expression finds a match, as JSON Schema's and Pydantic's
// `pattern`: anywhere in the text unless anchored (`^...$` for the whole text). The syntax is
// RE2's (near Pydantic's Rust regex, but `\d`, `\w`, `\s` are ASCII: `\p{Nd}`, `\p{L}` are
// Unicode's): no backreferences or lookaround. `^` and `$` are the text's ends (not a line's,
// nor before a final line break), `.` is any character but `\n`, and characters are UTF-8's,
// as length() counts them. The match takes time linear in the text whatever the expression:
// no input can make it backtrack for ever. An expression RE2 refuses is a
// std::invalid_argument naming it when a route's doc names the type (RouteDoc::body<T>() and
// the like, at startup) and at its first check.
struct Pattern {
  std::string_view expression;

  constexpr bool valid() const { return !expression.empty(); }

  template <class M>
  std::optional<RuleFailure> check(const M& text) const {
    static_assert(std::is_same_v<M, std::string>, "pattern: for text");
    if (detail::pattern_found(expression, text)) return std::nullopt;
    return RuleFailure{"text matching " + std::string(expression), quoted_excerpt(text)};
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
constexpr Pattern pattern(std::string_view expression) {
  return {expression};
}
template <class V, class... More>
constexpr auto one_of(V first, More... more) {
  constexpr bool text = std::is_convertible_v<V, std::string_view> &&
                        (std::is_convertible_v<More, std::string_view> && ...);
  constexpr bool numbers = detail::is_number_v<V> && (detail::is_number_v<More> && ...);
  constexpr bool enumerators = traits::is_described_enum_v<V> && (std::is_same_v<V, More> && ...);
  static_assert(text || numbers || enumerators,
                "one_of: all text (string literals), all numbers, or values of one described "
                "enum");
  if constexpr (text) {
    return OneOf<std::string_view, 1 + sizeof...(More)>{
        {std::string_view(first), std::string_view(more)...}};
  } else {
    // one_of(1, 2.5) is of doubles: no value is cut to another's type.
    using Value = std::common_type_t<V, More...>;
    return OneOf<Value, 1 + sizeof...(More)>{{Value(first), Value(more)...}};
  }
}

// Checks for every element of an array, every value of a map: `each(length(1, 30))`. A
// failure names the element: "body.tags[2]: expected text of 1 to 30 characters, got ...".
template <class... Checks>
struct Each {
  std::tuple<Checks...> checks;

  constexpr bool valid() const {
    return std::apply([](const auto&... check) { return (check.valid() && ...); }, checks);
  }
};
template <class... Checks>
constexpr Each<Checks...> each(Checks... checks) {
  static_assert(sizeof...(Checks) > 0, "each(...): name at least one check");
  return {{checks...}};
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

namespace traits {
// The argument MOLT_RULES' function is found by: its own type's, which a derived type's does
// not convert to (a derived struct's rules are its bases' and its own, never only a base's).
template <class T>
struct RulesOf {};

// Whether T has a MOLT_RULES list of its own.
template <class T>
constexpr bool has_own_rules() {
  return requires {
    molt_rules_of(RulesOf<T>{});
  };
}
template <class T>
constexpr bool has_rules_marker() {
  return requires {
    molt_rules_marker(RulesOf<T>{});
  };
}
}  // namespace traits

// The marker is found exactly where the list is, without compiling the list: a list that does
// not compile is told by its own error, not as a list written in the wrong namespace.
#define MOLT_RULES(Type, ...)                                                                    \
  [[maybe_unused]] constexpr bool molt_rules_marker(::molt::codec::traits::RulesOf<Type>) {      \
    return true;                                                                                 \
  }                                                                                              \
  static_assert(::molt::codec::traits::has_rules_marker<Type>(),                                 \
                "MOLT_RULES(" #Type ", ...) must be written in the namespace of " #Type);        \
  [[maybe_unused]] constexpr auto molt_rules_of(::molt::codec::traits::RulesOf<Type>) noexcept { \
    using namespace ::molt::codec::rules;                                                        \
    return std::tuple{__VA_ARGS__};                                                              \
  }

namespace detail {

template <class T>
using RuleMembers = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;
template <class T>
using RuleBases = boost::describe::describe_bases<T, boost::describe::mod_any_access>;

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

// Every rule of T's own list names a described member and can be met (and there is one).
template <class T>
constexpr bool own_rules_are_sound() {
  if (std::tuple_size_v<decltype(molt_rules_of(traits::RulesOf<T>{}))> == 0) return false;
  return std::apply(
      [](const auto&... rule) {
        const auto sound = [](const auto& one) {
          return !member_name<T>(one.member).empty() &&
                 std::apply([](const auto&... checks) { return (checks.valid() && ...); },
                            one.checks);
        };
        return (sound(rule) && ...);
      },
      molt_rules_of(traits::RulesOf<T>{}));
}

}  // namespace detail

namespace traits {
// Whether T or one of its described bases has rules.
template <class T>
constexpr bool has_rules() {
  if constexpr (!is_described_struct_v<T>) {
    return false;
  } else {
    bool any = has_own_rules<T>();
    boost::mp11::mp_for_each<codec::detail::RuleBases<T>>(
        [&](auto base) { any = any || has_rules<typename decltype(base)::type>(); });
    return any;
  }
}
}  // namespace traits

namespace detail {

// Calls fn(rule) for each rule of T: its described bases' first, then its own.
template <class T, class Fn>
void for_each_rule(Fn&& fn) {
  boost::mp11::mp_for_each<RuleBases<T>>(
      [&](auto base) { for_each_rule<typename decltype(base)::type>(fn); });
  if constexpr (traits::has_own_rules<T>()) {
    static_assert(own_rules_are_sound<T>(),
                  "MOLT_RULES names no rule, a member that is not a described member of this "
                  "struct, or a rule no value can meet (between(10, 0), length(5, 2), a NaN "
                  "bound, an empty pattern)");
    static constexpr auto kRules = molt_rules_of(traits::RulesOf<T>{});
    std::apply([&](const auto&... rule) { (fn(rule), ...); }, kRules);
  }
}

template <class Check>
struct is_each : std::false_type {};
template <class... Checks>
struct is_each<rules::Each<Checks...>> : std::true_type {};

// Throws a DecodeError at `at` when `value` breaks `check`; an optional's check is for its
// value, each(...)'s for every element (or map value), named by its index (or key).
template <class M, class Check>
void check_at(const M& value, const Check& check, const PathSegment& at) {
  if constexpr (traits::is_optional<M>::value) {
    if (value) check_at(*value, check, at);
  } else if constexpr (is_each<Check>::value) {
    static_assert(traits::is_vector<M>::value || traits::is_string_map<M>::value,
                  "each(...): for arrays and maps");
    const auto check_element = [&](const auto& element, const PathSegment& where) {
      std::apply([&](const auto&... inner) { (check_at(element, inner, where), ...); },
                 check.checks);
    };
    if constexpr (traits::is_vector<M>::value) {
      for (std::size_t i = 0; i < value.size(); ++i) check_element(value[i], at.element(i));
    } else {
      for (const auto& [key, element] : value) check_element(element, at.field(key));
    }
  } else if (auto failure = check.check(value)) {
    throw DecodeError(at, failure->expected, failure->got);
  }
}

}  // namespace detail

// Throws a DecodeError naming the member of `value` that breaks one of T's rules, its bases'
// included (a DecodeErrors listing each when several do): "item.score: expected a number
// from 0 to 10, got 11.0" under the root `at` ("item" here; see the overload below). Nothing
// when T has none.
template <class T>
void check_rules(const T& value, const PathSegment& at);

// The same, each rule broken kept in `problems` (the first check of a rule that fails), the
// rules of the members `skip(name)` names left out: the decoders check the members that
// decoded, and gather what they break with what did not decode.
template <class T, class Skip>
void check_rules(const T& value, const PathSegment& at, detail::Problems& problems, Skip&& skip) {
  if constexpr (traits::has_rules<T>()) {
    detail::for_each_rule<T>([&](const auto& rule) {
      const std::string_view name = detail::member_name<T>(rule.member);
      if (skip(name)) return;
      problems.attempt([&] {
        std::apply(
            [&](const auto&... checks) {
              const PathSegment member = at.field(name);
              (detail::check_at(value.*rule.member, checks, member), ...);
            },
            rule.checks);
      });
    });
  }
}

template <class T>
void check_rules(const T& value, const PathSegment& at) {
  if constexpr (traits::has_rules<T>()) {
    detail::Problems problems;
    check_rules(value, at, problems, [](std::string_view) { return false; });
    problems.check();
  }
}

// The same with the value named `root` in the message: check_rules(item, "item").
template <class T>
void check_rules(const T& value, std::string_view root) {
  check_rules(value, PathSegment{nullptr, root, 0});
}

}  // namespace molt::codec
