#include "molt/codec/msgpack.hpp"

#include <algorithm>
#include <boost/json/value.hpp>
#include <cstring>

#include "molt/codec/utf8.hpp"

namespace molt::codec {

void pack_json_value(Packer& p, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      p.pack_nil();
      break;
    case boost::json::kind::bool_:
      value.get_bool() ? p.pack_true() : p.pack_false();
      break;
    case boost::json::kind::int64:
      p.pack_int64(value.get_int64());
      break;
    case boost::json::kind::uint64:
      p.pack_uint64(value.get_uint64());
      break;
    case boost::json::kind::double_:
      pack_float64(p, value.get_double());
      break;
    case boost::json::kind::string: {
      const auto& s = value.get_string();
      pack(p, std::string_view(s.data(), s.size()));
      break;
    }
    case boost::json::kind::array:
      p.pack_array(static_cast<std::uint32_t>(value.get_array().size()));
      for (const auto& v : value.get_array()) pack_json_value(p, v);
      break;
    case boost::json::kind::object:
      p.pack_map(static_cast<std::uint32_t>(value.get_object().size()));
      for (const auto& kv : value.get_object()) {
        pack(p, std::string_view(kv.key()));
        pack_json_value(p, kv.value());
      }
      break;
  }
}

void pack_text(Packer& packer, std::string_view text) {
  if (!is_valid_utf8(text)) [[unlikely]] {
    const std::string fixed = replace_invalid_utf8(text);
    packer.pack_str(static_cast<std::uint32_t>(fixed.size()));
    packer.pack_str_body(fixed.data(), static_cast<std::uint32_t>(fixed.size()));
    return;
  }
  packer.pack_str(static_cast<std::uint32_t>(text.size()));
  packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

void pack_float64(Packer& p, double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  char bytes[9];
  bytes[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  // The packer has no raw write; a bin body is appended verbatim, here a whole float64.
  p.pack_bin_body(bytes, sizeof bytes);
}

std::string_view msgpack_text(const MsgPackValue& v, const PathSegment& at) {
  if (!v.is_bytes()) throw DecodeError(at, "string", v.kind_name());
  if (!is_valid_utf8(v.bytes))
    throw DecodeError(at, "string",
                      v.is_text() ? "a str that is not UTF-8" : "bytes that are not UTF-8");
  return v.bytes;
}

std::string_view detail::key_text(const MsgPackValue& key, const PathSegment& at) {
  if (!key.is_bytes())
    throw DecodeError(at, "object with string keys", "a " + std::string(key.kind_name()) + " key");
  if (!is_valid_utf8(key.bytes))
    throw DecodeError(at, "object with string keys", "a key that is not UTF-8");
  return key.bytes;
}

void detail::skip_value(MsgPackReader& reader, const MsgPackReader& value_at, int depth) {
  reader = value_at;
  MsgPackValue value;
  reader.read(value);
  reader.skip_inside(value, depth);
}

void detail::FailedValues::check(Problems& problems) const {
  if (failed_.empty()) return;
  std::vector<const Failure*> in_order;
  in_order.reserve(failed_.size());
  for (const auto& [key, failure] : failed_) in_order.push_back(&failure);
  std::sort(in_order.begin(), in_order.end(),
            [](const Failure* a, const Failure* b) { return a->order < b->order; });
  for (const Failure* failure : in_order)
    problems.attempt([&] { std::rethrow_exception(failure->error); });
}

void detail::check_depth(const MsgPackReader& reader, int depth) {
  if (depth >= MsgPackReader::kMaxDepth) reader.fail("nested deeper than 64 levels");
}

void detail::json_from_msgpack(MsgPackReader& reader, const MsgPackValue& head,
                               boost::json::value& out, const PathSegment& at, int depth) {
  switch (head.kind) {
    case MsgPackKind::Missing:
    case MsgPackKind::Nil:
      out = nullptr;
      break;
    case MsgPackKind::Bool:
      out = head.boolean;
      break;
    case MsgPackKind::UInt:
      out = head.uint;
      break;
    case MsgPackKind::NegInt:
      out = head.sint;
      break;
    case MsgPackKind::Float:
      out = head.real;
      break;
    case MsgPackKind::Str:
    case MsgPackKind::Bin:
      out = boost::json::string(msgpack_text(head, at));
      break;
    case MsgPackKind::Array: {
      check_depth(reader, depth);
      boost::json::array& array = out.emplace_array();
      // Not the whole claimed count: arrays nest here, and each level could claim about every
      // byte left, so reservations made up front would add up to many times the input.
      array.reserve(std::min<std::size_t>(head.count, 1024));
      MsgPackValue element;
      for (std::uint32_t i = 0; i < head.count; ++i) {
        reader.read(element);
        json_from_msgpack(reader, element, array.emplace_back(nullptr), at.element(i), depth + 1);
      }
      break;
    }
    case MsgPackKind::Map: {
      check_depth(reader, depth);
      boost::json::object& object = out.emplace_object();
      MsgPackValue key, value;
      FailedValues failed;
      for (std::uint32_t i = 0; i < head.count; ++i) {
        reader.read(key);
        const std::string_view name = key_text(key, at);
        failed.decode(reader, name, depth + 1, [&] {
          reader.read(value);
          json_from_msgpack(reader, value, object[name], at.field(name), depth + 1);
        });
      }
      Problems problems;
      failed.check(problems);
      problems.check();
      break;
    }
    case MsgPackKind::Ext:
      throw DecodeError(at, "a JSON-compatible value", "ext");
  }
}

}  // namespace molt::codec
