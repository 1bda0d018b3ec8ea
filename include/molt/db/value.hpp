#pragma once
// Values that go into a statement (parameters) and come out of it (cells). Parameters are
// only ever bound, never spliced into SQL text.

#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "molt/core/status.hpp"

namespace molt::db {

// Raw bytes (SQLite BLOB, PostgreSQL bytea), kept apart from text.
struct Bytes {
  std::string data;
  bool operator==(const Bytes&) const = default;
};

// An element of an array cell: the scalar kinds of Value.
using Element = std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, Bytes>;

// A one-dimensional array (PostgreSQL `int8[]`, `text[]`, ...), its elements in order; a
// null element is nullptr. Arrays come out of queries; they are not parameters.
struct Array {
  std::vector<Element> elements;
  bool operator==(const Array&) const = default;
};

using Value = std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, Bytes, Array>;

enum class ValueType { Null, Bool, Int, Float, Text, Bytes, Array };
std::string_view to_string(ValueType type) noexcept;
// bool int float str bytes: the types a parameter (or a typed null) can have.
std::optional<ValueType> parse_value_type(std::string_view name) noexcept;
ValueType type_of(const Value& value) noexcept;

// A bound parameter. A null carries the type it stands for (PostgreSQL needs it to plan).
// Built from anything a Value holds, and from the types callers have at hand besides: any
// integer type (an unsigned one past int64's range is refused) and std::string_view.
struct Param {
  Value value;
  ValueType null_type = ValueType::Null;

  Param() = default;
  template <class T>
  requires std::is_constructible_v<Value, T&&> Param(T&& v)
      : value(std::forward<T>(v)) {}  // NOLINT: implicit, as a Value's own
  template <std::unsigned_integral U>
  requires(!std::is_same_v<U, bool> && !std::is_constructible_v<Value, U>) Param(U v)
      : value(checked_int64(v)) {}  // std::size_t, std::uint64_t
  Param(std::string_view text) : value(std::string(text)) {}
  Param(char) = delete;  // 'a' would bind 97: pass std::string(1, c) or an integer
  // An optional: its value, or a null of the type that T stands for.
  template <class T>
  requires std::is_constructible_v<Param, const T&> Param(const std::optional<T>& v)
      : Param(v ? Param(*v) : null(type_standing_for<T>())) {}

  static Param null(ValueType type) {
    Param p;
    p.null_type = type;
    return p;
  }

 private:
  template <class T>
  static constexpr ValueType type_standing_for() {
    if constexpr (std::is_same_v<T, bool>)
      return ValueType::Bool;
    else if constexpr (std::is_integral_v<T>)
      return ValueType::Int;
    else if constexpr (std::is_floating_point_v<T>)
      return ValueType::Float;
    else if constexpr (std::is_same_v<T, Bytes>)
      return ValueType::Bytes;
    else if constexpr (std::is_convertible_v<const T&, std::string_view>)
      return ValueType::Text;
    else
      static_assert(sizeof(T) == 0,
                    "a std::optional parameter holds a bool, number, text or Bytes");
  }
  // In U's own width: a 128-bit value (gnu++20's unsigned __int128) is checked, not cut.
  template <class U>
  static std::int64_t checked_int64(U v) {
    if (v > static_cast<U>(std::numeric_limits<std::int64_t>::max()))
      throw core::SqlError(
          "an unsigned parameter is past the 64-bit signed integers a database "
          "stores");
    return static_cast<std::int64_t>(v);
  }
};

// Positional (`?` in SQLite, `$1` in PostgreSQL) or named (`:name` on both).
struct Params {
  std::vector<Param> values;
  std::vector<std::string> names;  // empty: positional; else one name per value

  bool named() const noexcept { return !names.empty(); }
  static Params positional(std::vector<Param> values) { return {std::move(values), {}}; }
  // Each value beside its name: Params::named({{"user", {std::int64_t{7}}}, {"q", {text}}}).
  static Params named(std::vector<std::pair<std::string, Param>> pairs) {
    Params out;
    for (auto& [name, value] : pairs) {
      out.names.push_back(std::move(name));
      out.values.push_back(std::move(value));
    }
    return out;
  }
};

}  // namespace molt::db
