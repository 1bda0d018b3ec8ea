#pragma once
// Fields a sender may leave out, keeping the value the struct's own initializer gives them:
//
//   struct Review {
//     std::string text;
//     int stars = 3;
//     std::vector<std::string> tags;
//   };
//   BOOST_DESCRIBE_STRUCT(Review, (), (text, stars, tags))
//   MOLT_DEFAULTS(Review, stars, tags)
//
// A missing `stars` decodes as 3 and a missing `tags` as empty; a missing `text` is still an
// error. C++ cannot tell `int stars = 3;` from `int stars;`, so the list is explicit, as
// Boost.Describe's is. Write it next to BOOST_DESCRIBE_STRUCT, in the struct's namespace: the
// codecs find it by argument-dependent lookup (elsewhere it does not compile). A name that is
// not a described member is a compile error where the struct is decoded. A listed
// std::optional keeps its initializer when missing and is empty only when sent as null.
// A derived struct without a list of its own uses its base's; a list of its own replaces the
// base's, so it names the base's fields again (and a struct with two listed bases needs one).

#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <string_view>

#define MOLT_DEFAULTS(Type, ...)                                                       \
  [[maybe_unused]] constexpr std::string_view molt_defaults_of(const Type*) noexcept { \
    return #__VA_ARGS__;                                                               \
  }                                                                                    \
  static_assert(::molt::codec::traits::defaults_list<Type>().data() != nullptr,        \
                "MOLT_DEFAULTS(" #Type ", ...) must be written in the namespace of " #Type);

namespace molt::codec::traits {

// The text MOLT_DEFAULTS gave for T ("stars, tags"), or empty.
template <class T>
constexpr std::string_view defaults_list() {
  if constexpr (requires { molt_defaults_of(static_cast<const T*>(nullptr)); })
    return molt_defaults_of(static_cast<const T*>(nullptr));
  else
    return {};
}

namespace detail {

constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Calls fn(name) for each comma-separated name of `list`, trimmed; stops when fn returns true.
template <class Fn>
constexpr bool any_listed_name(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    while (!name.empty() && is_space(name.front())) name.remove_prefix(1);
    while (!name.empty() && is_space(name.back())) name.remove_suffix(1);
    if (fn(name)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace detail

// Whether a missing `member` of T keeps its initializer.
template <class T>
constexpr bool keeps_default(std::string_view member) {
  return detail::any_listed_name(defaults_list<T>(),
                                 [&](std::string_view name) { return name == member; });
}

// Whether every name MOLT_DEFAULTS lists for T is one of its described members.
template <class T>
constexpr bool defaults_name_members() {
  using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                           boost::describe::mod_inherited>;
  return !detail::any_listed_name(defaults_list<T>(), [](std::string_view name) {
    bool found = false;
    boost::mp11::mp_for_each<Members>([&](auto member) { found = found || name == member.name; });
    return !found;
  });
}

}  // namespace molt::codec::traits

namespace molt::codec::detail {

// Sets out's member to what a fresh T holds: the decoder may be filling an object used before
// (a repeated key decodes again into the same one).
template <class T, class Pointer>
void restore_default(T& out, Pointer pointer) {
  static const T fresh{};
  out.*pointer = fresh.*pointer;
}

}  // namespace molt::codec::detail
