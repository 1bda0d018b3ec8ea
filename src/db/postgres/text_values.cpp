#include "text_values.hpp"

#include <charconv>
#include <limits>
#include <utility>

#include "molt/core/status.hpp"

namespace molt::db::pg {
namespace {

// Enough of a malformed cell to recognise it without copying megabytes into a message.
constexpr std::size_t kQuotedTextLimit = 64;

[[noreturn]] void malformed(std::uint32_t oid, std::string_view what, std::string_view text) {
  std::string shown(text.substr(0, kQuotedTextLimit));
  if (text.size() > kQuotedTextLimit) shown += "...";
  throw core::Error(core::StatusCode::InternalError, "PostgreSQL sent a " + std::string(what) +
                                                         " cell (type OID " + std::to_string(oid) +
                                                         ") that does not parse: '" + shown + "'");
}

bool decode_bool(std::uint32_t oid, std::string_view text) {
  if (text == "t") return true;
  if (text == "f") return false;
  malformed(oid, "bool", text);
}

std::int64_t decode_int(std::uint32_t oid, std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) malformed(oid, "integer", text);
  return value;
}

double decode_float(std::uint32_t oid, std::string_view text) {
  // float8out spells the specials out; from_chars would also take "inf" or "nan(x)", which
  // the server never sends, so they are matched here and everything else must be numeric.
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "Infinity") return std::numeric_limits<double>::infinity();
  if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  for (const char c : text) {
    const bool numeric =
        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
    if (!numeric) malformed(oid, "float", text);
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) malformed(oid, "float", text);
  return value;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea_output = hex, the server default since 9.0: `\x` then two hex digits per byte.
Bytes decode_bytea(std::uint32_t oid, std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0)
    malformed(oid, "bytea (hex format)", text);
  Bytes bytes;
  bytes.data.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int high = hex_digit(text[i]);
    const int low = hex_digit(text[i + 1]);
    if (high < 0 || low < 0) malformed(oid, "bytea (hex format)", text);
    bytes.data.push_back(static_cast<char>(high * 16 + low));
  }
  return bytes;
}

// The whitespace array_in skips around elements.
bool is_array_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool equals_null_keyword(std::string_view text) {
  if (text.size() != 4) return false;
  for (std::size_t i = 0; i < 4; ++i)
    if ((text[i] | 0x20) != "null"[i]) return false;  // ASCII case folding, like array_in
  return true;
}

// array_in's grammar for one dimension, as PostgreSQL 15 accepts it: an element is either
// quoted as a whole or unquoted; backslash escapes work in both; whitespace around elements
// is dropped. Every method returns false on input array_in would reject (or that has more
// than one dimension), and the caller gives up.
class ArrayScanner {
 public:
  explicit ArrayScanner(std::string_view literal) : text_(literal) {}

  std::optional<std::vector<std::optional<std::string>>> run() {
    skip_space();
    // A `[` here is a bounds decoration; anything else but `{` is not an array.
    if (!take('{')) return std::nullopt;
    skip_space();
    if (!take('}')) {
      do {
        skip_space();
        if (!element()) return std::nullopt;
        skip_space();
      } while (take(','));
      if (!take('}')) return std::nullopt;
    }
    skip_space();
    if (i_ != text_.size()) return std::nullopt;  // text after the closing brace
    return std::move(elements_);
  }

 private:
  bool element() {
    if (i_ >= text_.size()) return false;
    if (text_[i_] == '"') return quoted();
    return unquoted();
  }

  // `"..."` with `\\` and `\"` (any escaped byte stands for itself); never the NULL keyword.
  bool quoted() {
    std::string value;
    for (++i_; i_ < text_.size(); ++i_) {
      const char c = text_[i_];
      if (c == '"') {
        ++i_;
        elements_.emplace_back(std::move(value));
        return true;
      }
      if (c == '\\' && ++i_ >= text_.size()) return false;
      value += text_[i_];
    }
    return false;
  }

  // Runs to the next `,` or `}`; trailing whitespace goes unless escaped.
  bool unquoted() {
    std::string value;
    std::size_t kept = 0;  // length of `value` without its unescaped trailing whitespace
    bool escaped = false;  // an escape protects the NULL keyword: `\NULL` is text
    for (; i_ < text_.size(); ++i_) {
      const char c = text_[i_];
      if (c == ',' || c == '}') break;
      if (c == '"' || c == '{') return false;  // a quote mid-element, or a nested array
      if (c == '\\') {
        if (++i_ >= text_.size()) return false;
        escaped = true;
        value += text_[i_];
        kept = value.size();
        continue;
      }
      value += c;
      if (!is_array_space(c)) kept = value.size();
    }
    value.resize(kept);
    if (value.empty()) return false;  // `{1,,2}`, `{1,}`: an escape would have added a byte
    if (!escaped && equals_null_keyword(value))
      elements_.emplace_back(std::nullopt);
    else
      elements_.emplace_back(std::move(value));
    return true;
  }

  void skip_space() {
    while (i_ < text_.size() && is_array_space(text_[i_])) ++i_;
  }

  bool take(char c) {
    if (i_ >= text_.size() || text_[i_] != c) return false;
    ++i_;
    return true;
  }

  std::string_view text_;
  std::size_t i_ = 0;
  std::vector<std::optional<std::string>> elements_;
};

Value decode_scalar(std::uint32_t oid, std::string_view text) {
  switch (oid) {
    case kBool:
      return decode_bool(oid, text);
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      return decode_int(oid, text);
    case kFloat4:
    case kFloat8:
      return decode_float(oid, text);
    case kBytea:
      return decode_bytea(oid, text);
    default:
      // numeric, the character types, dates and times, uuid, json, and types we do not know:
      // their text is already the most faithful form we can hand on.
      return std::string(text);
  }
}

Element to_element(Value&& value) {
  return std::visit(
      [](auto&& v) -> Element {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Array>)
          throw core::Error(core::StatusCode::InternalError, "an array inside an array element");
        else
          return Element(std::move(v));
      },
      std::move(value));
}

Array decode_array(std::uint32_t oid, std::uint32_t element_oid, std::string_view text) {
  auto parsed = parse_text_array(text);
  if (!parsed) {
    const bool shaped = !text.empty() && (text[0] == '[' || text.find("{{") != text.npos);
    if (shaped)
      throw core::SqlError(
          "an array cell (type OID " + std::to_string(oid) +
          ") has more than one dimension or explicit bounds; molt::db reads one-dimensional "
          "arrays only (cast the column to text to read it as the server prints it)");
    malformed(oid, "array", text);
  }
  Array array;
  array.elements.reserve(parsed->size());
  for (auto& element : *parsed)
    array.elements.push_back(element ? to_element(decode_scalar(element_oid, *element))
                                     : Element(nullptr));
  return array;
}

}  // namespace

Value decode_text_cell(std::uint32_t oid, const char* data, int length, bool is_null) {
  if (is_null) return nullptr;
  if (length < 0 || (data == nullptr && length > 0))
    throw core::Error(core::StatusCode::InternalError,
                      "a result cell (type OID " + std::to_string(oid) + ") has no valid length");
  const std::string_view text(data == nullptr ? "" : data, static_cast<std::size_t>(length));
  if (const auto element = array_element_oid(oid)) return decode_array(oid, *element, text);
  return decode_scalar(oid, text);
}

std::optional<std::vector<std::optional<std::string>>> parse_text_array(std::string_view literal) {
  ArrayScanner scanner(literal);
  return scanner.run();
}

std::optional<std::uint32_t> array_element_oid(std::uint32_t array_oid) noexcept {
  // A switch, not a table scan: every cell of every result asks.
  switch (array_oid) {
    case kBoolArray:
      return kBool;
    case kByteaArray:
      return kBytea;
    case kCharArray:
      return kChar;
    case kNameArray:
      return kName;
    case kInt2Array:
      return kInt2;
    case kInt4Array:
      return kInt4;
    case kTextArray:
      return kText;
    case kBpcharArray:
      return kBpchar;
    case kVarcharArray:
      return kVarchar;
    case kInt8Array:
      return kInt8;
    case kFloat4Array:
      return kFloat4;
    case kFloat8Array:
      return kFloat8;
    case kOidArray:
      return kOid;
    case kTimestampArray:
      return kTimestamp;
    case kDateArray:
      return kDate;
    case kTimeArray:
      return kTime;
    case kTimestamptzArray:
      return kTimestamptz;
    case kIntervalArray:
      return kInterval;
    case kNumericArray:
      return kNumeric;
    case kJsonArray:
      return kJson;
    case kUuidArray:
      return kUuid;
    case kJsonbArray:
      return kJsonb;
    default:
      return std::nullopt;
  }
}

}  // namespace molt::db::pg
