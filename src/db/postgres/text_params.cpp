#include "text_params.hpp"

#include <charconv>
#include <cmath>
#include <type_traits>

#include "molt/core/status.hpp"

namespace molt::db::pg {
namespace {

std::uint32_t oid_of(ValueType type) {
  switch (type) {
    case ValueType::Bool:
      return kBool;
    case ValueType::Int:
      return kInt8;
    case ValueType::Float:
      return kFloat8;
    case ValueType::Text:
      return kText;
    case ValueType::Bytes:
      return kBytea;
    case ValueType::Null:
    case ValueType::Array:
      break;
  }
  return kUnspecified;
}

std::string float_text(double value) {
  // float8in's spellings; to_chars would write "nan" and "inf".
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];  // the longest shortest form, "-2.2250738585072014e-308", is 24 chars
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  (void)ec;  // cannot fail: the buffer is large enough for every double
  return std::string(buffer, end);
}

}  // namespace

EncodedParam encode_param(const Param& param) {
  return std::visit(
      [&](const auto& value) -> EncodedParam {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          return {oid_of(param.null_type), std::nullopt, false};
        } else if constexpr (std::is_same_v<T, bool>) {
          return {kBool, value ? "t" : "f", false};
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return {kInt8, std::to_string(value), false};
        } else if constexpr (std::is_same_v<T, double>) {
          return {kFloat8, float_text(value), false};
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (value.find('\0') != std::string::npos)
            throw core::SqlError(
                "a text parameter contains a NUL byte, which PostgreSQL text cannot hold; "
                "send it as bytes");
          return {kText, value, false};
        } else if constexpr (std::is_same_v<T, Bytes>) {
          return {kBytea, value.data, true};
        } else {
          static_assert(std::is_same_v<T, Array>);
          throw core::SqlError("array parameters are not supported (arrays come out only)");
        }
      },
      param.value);
}

}  // namespace molt::db::pg
