#include "molt/codec/json.hpp"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "molt/codec/utf8.hpp"

namespace molt::codec {

namespace {
// Bytes that cannot be copied as they are: control characters, '"' and '\\' (escaped), and
// bytes from 0x80 (a UTF-8 sequence, copied once it is known to be well-formed).
constexpr std::array<bool, 256> make_escape_table() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  for (int c = 0x80; c < 0x100; ++c) table[c] = true;
  table['"'] = table['\\'] = true;
  return table;
}
constexpr auto kNeedsEscape = make_escape_table();

// The first byte of `text` that cannot be copied as it is (text.size() when none). Eight
// bytes at a time: a lane is flagged when it is below 0x20, equals '"' or '\\', or is 0x80
// or above.
std::size_t first_to_escape(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    const std::uint64_t quote = word ^ (kOnes * '"');
    const std::uint64_t backslash = word ^ (kOnes * '\\');
    const std::uint64_t flagged =
        ((((word - kOnes * 0x20) | (quote - kOnes) | (backslash - kOnes)) & ~word) | word) & kHighs;
    if (flagged) break;
  }
  while (i < text.size() && !kNeedsEscape[bytes[i]]) ++i;
  return i;
}

char* put(char* at, char a, char b) {
  at[0] = a;
  at[1] = b;
  return at + 2;
}

}  // namespace

char* write_json_string(char* at, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  *at++ = '"';
  const std::size_t run = first_to_escape(text);
  if (run > 0) std::memcpy(at, text.data(), run);  // an empty view may have no data at all
  at += run;
  for (std::size_t i = run; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!kNeedsEscape[c]) {
      *at++ = static_cast<char>(c);
      continue;
    }
    if (c >= 0x80) {
      // Whatever it is given, the string stays valid JSON: an ill-formed sequence becomes
      // U+FFFD (3 bytes for each byte dropped, within the room of 6 a byte).
      const std::size_t n = detail::utf8_sequence_length(text, i);
      if (n == 0) {
        std::memcpy(at, "\xef\xbf\xbd", 3);
        at += 3;
      } else {
        std::memcpy(at, text.data() + i, n);
        at += n;
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        at = put(at, '\\', '"');
        break;
      case '\\':
        at = put(at, '\\', '\\');
        break;
      case '\n':
        at = put(at, '\\', 'n');
        break;
      case '\r':
        at = put(at, '\\', 'r');
        break;
      case '\t':
        at = put(at, '\\', 't');
        break;
      case '\b':
        at = put(at, '\\', 'b');
        break;
      case '\f':
        at = put(at, '\\', 'f');
        break;
      default:
        at = put(put(put(at, '\\', 'u'), '0', '0'), kHex[c >> 4], kHex[c & 15]);
    }
  }
  *at++ = '"';
  return at;
}

void write_json_string(std::string& out, std::string_view text) {
  // Short strings, the common case, go through the stack: one append.
  constexpr std::size_t kShort = 48;
  if (text.size() <= kShort) {
    char quoted[json_string_room(kShort)];
    out.append(quoted, write_json_string(quoted, text));
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + json_string_room(text.size()));
  char* end = write_json_string(out.data() + at, text);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void write_json_value(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      break;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      break;
    case boost::json::kind::int64:
      append_integer(out, value.get_int64());
      break;
    case boost::json::kind::uint64:
      append_integer(out, value.get_uint64());
      break;
    case boost::json::kind::double_:
      append_json_double(out, value.get_double());
      break;
    case boost::json::kind::string: {
      const auto& s = value.get_string();
      write_json_string(out, std::string_view(s.data(), s.size()));
      break;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& v : value.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json_value(out, v);
      }
      out += ']';
      break;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : value.get_object()) {
        if (!first) out += ',';
        first = false;
        write_json_string(out, kv.key());
        out += ':';
        write_json_value(out, kv.value());
      }
      out += '}';
      break;
    }
  }
}

std::string_view json_kind(const boost::json::value& value) noexcept {
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
      return "integer";
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "value";
}

namespace {

namespace json = boost::json;

// Builds the tree as boost::json::parser does, except numbers with a fraction or an exponent:
// Boost 1.81 reads those with a fast method that is off by one unit in the last place for
// some inputs (0.9385958677423489 became ...488), so a value sent by Python would not come
// back the same. Their text is read again with std::from_chars, which rounds correctly.
class PreciseHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  explicit PreciseHandler(json::storage_ptr storage) { stack.reset(std::move(storage)); }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    stack.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    stack.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    stack.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    stack.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    stack.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    stack.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number_.clear();
    stack.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number_.clear();
    stack.push_uint64(u);
    return true;
  }
  bool on_double(double fast, json::string_view s, json::error_code&) {
    std::string_view text(s.data(), s.size());
    if (!number_.empty()) text = number_.append(s.data(), s.size());
    double exact = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), exact);
    // Out of range (1e400): Boost's answer (infinity or zero) stands.
    stack.push_double(ec == std::errc{} && end == text.data() + text.size() ? exact : fast);
    number_.clear();
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    stack.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    stack.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

  json::value_stack stack;

 private:
  std::string number_;  // a number's text given in parts (input split across writes)
};

}  // namespace

boost::json::value parse_json(std::string_view text, boost::json::storage_ptr storage) {
  boost::json::parse_options options;
  options.max_depth = 64;
  boost::json::basic_parser<PreciseHandler> parser(options, std::move(storage));
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(/*more=*/false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (ec) {
    throw core::InvalidInput("invalid JSON at offset " + std::to_string(used) + ": " +
                             ec.message());
  }
  return parser.handler().stack.release();
}

boost::json::storage_ptr document_storage(std::size_t text_bytes) {
  // The first block as large as the text: a big document then grows in few steps, and the
  // block's untouched pages cost no memory.
  return boost::json::make_shared_resource<boost::json::monotonic_resource>(
      std::max<std::size_t>(1024, text_bytes));
}

}  // namespace molt::codec
