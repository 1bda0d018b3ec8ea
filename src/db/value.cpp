#include "molt/db/value.hpp"

#include <array>
#include <utility>

namespace molt::db {
namespace {
constexpr std::array<std::pair<ValueType, std::string_view>, 7> kNames{{
    {ValueType::Null, "null"},
    {ValueType::Bool, "bool"},
    {ValueType::Int, "int"},
    {ValueType::Float, "float"},
    {ValueType::Text, "str"},
    {ValueType::Bytes, "bytes"},
    {ValueType::Array, "array"},
}};
}  // namespace

std::string_view to_string(ValueType type) noexcept {
  for (const auto& [t, name] : kNames)
    if (t == type) return name;
  return "null";
}

std::optional<ValueType> parse_value_type(std::string_view name) noexcept {
  for (const auto& [t, n] : kNames)
    if (n == name && t != ValueType::Null && t != ValueType::Array) return t;
  return std::nullopt;
}

ValueType type_of(const Value& value) noexcept {
  return static_cast<ValueType>(value.index());  // the variant's order is ValueType's order
}

}  // namespace molt::db
