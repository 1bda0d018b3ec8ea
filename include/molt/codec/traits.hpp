#pragma once
// What the typed codecs understand: bool, integers, floating point, std::string (text),
// codec::Bytes (binary), std::optional, std::vector, std::map<std::string, T>,
// boost::json::value (any JSON), described enums (as their names) and described structs (as
// maps keyed by member name). A std::optional member may be missing or null, a member
// MOLT_DEFAULTS lists may be missing (defaults.hpp); any other member is required.

#include <boost/describe.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "molt/codec/bytes.hpp"
#include "molt/codec/defaults.hpp"

namespace molt::codec::traits {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// T, or U for std::optional<U>.
template <class T>
struct without_optional {
  using type = T;
};
template <class T>
struct without_optional<std::optional<T>> {
  using type = T;
};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

template <class T>
inline constexpr bool is_integer_v =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>;

template <class T>
inline constexpr bool is_described_struct_v =
    boost::describe::has_describe_members<T>::value&& std::is_class_v<T>;

template <class T>
inline constexpr bool is_described_enum_v =
    boost::describe::has_describe_enumerators<T>::value&& std::is_enum_v<T>;

// The words a decode error uses for what a type expects.
template <class T>
constexpr std::string_view expected_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "boolean";
  else if constexpr (is_integer_v<T>)
    return "integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (std::is_same_v<T, Bytes>)
    return "bytes";
  else if constexpr (is_vector<T>::value)
    return "array";
  else if constexpr (is_string_map<T>::value || is_described_struct_v<T>)
    return "object";
  else if constexpr (is_described_enum_v<T>)
    return "one of its names (string)";
  else
    return "value";
}

// The enumerator called `name`, compared as bytes. (Boost 1.81's enum_from_string takes a
// NUL-terminated char*, which a string_view into a payload is not.)
template <class E>
bool enum_from_name(std::string_view name, E& out) {
  bool found = false;
  boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto e) {
    if (!found && name == e.name) {
      out = e.value;
      found = true;
    }
  });
  return found;
}

// "one of "open", "closed"" for a described enum, built once.
template <class D>
const std::string& enum_names_hint() {
  static const std::string text = [] {
    std::string s;
    boost::mp11::mp_for_each<boost::describe::describe_enumerators<D>>([&](auto e) {
      if (!s.empty()) s += ", ";
      s += '"';
      s += e.name;
      s += '"';
    });
    return "one of " + s;
  }();
  return text;
}

}  // namespace molt::codec::traits
